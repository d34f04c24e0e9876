"""Pictures: loss curves from `seqgen train --log` files, piano rolls of MIDI files.

Reading (``read_log``, ``read_notes``) is separate from drawing (``draw_runs``,
``draw_piano_rolls`` -> a matplotlib Figure) and saving (``plot_runs``, ``plot_piano_rolls``,
``plot``: written atomically). matplotlib is imported only when drawing, and only its Agg canvas
is used: no pyplot, no display, no change to the process's matplotlib backend.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqgen.errors import ConfigError, CorpusError

LOG_SUFFIXES = (".jsonl", ".json")
MIDI_SUFFIXES = (".mid", ".midi")
IMAGE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
LOSS_UNIT = "nats/token"
ROLL_STEPS_PER_BEAT = 96  # note times are read on a grid this fine: 1/96 quarter note
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
BLACK_KEYS = {1, 3, 6, 8, 10}
NOTE_COLOUR = "#d62728"
DPI = 100


# -- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One training run's evaluations, shape (N,) each; ``valid_loss`` is NaN where not logged."""

    name: str
    step: np.ndarray
    elapsed: np.ndarray  # seconds
    train_loss: np.ndarray  # mean training loss since the previous evaluation, nats/token
    valid_loss: np.ndarray


def _number(record, key, where, optional=False):
    value = record.get(key)
    if value is None and optional:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problem = f"no {key!r}" if key not in record else f"{key!r} is not a number ({value!r})"
        raise CorpusError(f"{where}: {problem}; is this a `seqgen train --log` file?")
    return float(value)


def _records(path: Path):
    """(where, record) for each evaluation in a JSON-lines log (or a .json array of records)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise CorpusError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}, line {e.lineno}: not JSON ({e.msg})") from None
        for i, record in enumerate(records, 1):
            yield f"{path}, record {i}", record
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}, line {lineno}: not JSON ({e.msg})") from None
        yield f"{path}, line {lineno}", record


def read_log(path, name=None) -> list[Run]:
    """A `seqgen train --log` file -> its runs, usually one. A step that does not go forward
    starts another run (a fresh training appended to the same log), named "NAME #2", ...
    CorpusError naming the file and line for an empty file or a line that is not an evaluation."""
    path = Path(path)
    name = name or path.name
    segments: list[list[tuple[float, float, float, float]]] = []
    for where, record in _records(path):
        if not isinstance(record, dict):
            raise CorpusError(f"{where}: not a JSON object; is this a `seqgen train --log` file?")
        row = (_number(record, "step", where), _number(record, "elapsed", where),
               _number(record, "train_loss", where), _number(record, "valid_loss", where, optional=True))
        if not segments or row[0] <= segments[-1][-1][0]:
            segments.append([])
        segments[-1].append(row)
    if not segments:
        raise CorpusError(f"{path}: empty log (no evaluations)")
    runs = []
    for i, rows in enumerate(segments, 1):
        step, elapsed, train, valid = (np.array(column) for column in zip(*rows))
        runs.append(Run(name if i == 1 else f"{name} #{i}", step, elapsed, train, valid))
    return runs


@dataclass(frozen=True)
class Notes:
    """A MIDI file's notes in beats (quarter notes), shape (N,) each: sounding [start, end)."""

    name: str
    start: np.ndarray
    end: np.ndarray
    pitch: np.ndarray


def read_notes(path, name=None) -> Notes:
    """A MIDI file's notes (drum channel 10 left out), read by the midi tokenizer's parser on a
    1/96-beat grid. CorpusError naming the file if it is not valid MIDI or has no notes."""
    from seqgen.plugins.host import get_tokenizer

    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such file")
    reader = get_tokenizer("midi")(steps_per_quarter=ROLL_STEPS_PER_BEAT, max_steps=10**8)
    start, end, pitch = reader.read_notes(path).T
    return Notes(name or path.name, start / ROLL_STEPS_PER_BEAT, end / ROLL_STEPS_PER_BEAT, pitch)


def note_name(pitch: int) -> str:
    """MIDI pitch -> scientific pitch name: 60 -> "C4", 61 -> "C#4"."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


# -- drawing ---------------------------------------------------------------------------------

def _figure(width, height, dpi):
    """A Figure on the Agg canvas (no pyplot: no display, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _time_scale(seconds):
    """(divisor, unit) that keeps the time axis readable."""
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    if seconds >= 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def draw_runs(runs: list[Run], x="both", dpi=DPI, title=None):
    """Validation loss (solid) and training loss (dashed, mean since the previous evaluation)
    against steps, training time or both (two panels); one colour per run. 6.4 x 4.2 in per
    panel."""
    if x not in ("both", "step", "time"):
        raise ConfigError(f"x must be 'both', 'step' or 'time', not {x!r}")
    panels = ["step", "time"] if x == "both" else [x]
    fig = _figure(6.4 * len(panels), 4.2, dpi)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    divisor, unit = _time_scale(max(float(np.nanmax(r.elapsed)) for r in runs))
    for ax, panel in zip(axes, panels):
        for i, run in enumerate(runs):
            colour = f"C{i % 10}"
            xs = run.step if panel == "step" else run.elapsed / divisor
            has_valid = not np.all(np.isnan(run.valid_loss))
            if has_valid:
                keep = ~np.isnan(run.valid_loss)
                ax.plot(xs[keep], run.valid_loss[keep], color=colour, marker="o", markersize=3,
                        label=f"{run.name}: validation")
            ax.plot(xs, run.train_loss, color=colour, linestyle="--", alpha=0.8,
                    label=f"{run.name}: train loss")
        ax.set_xlabel("step" if panel == "step" else f"training time ({unit})")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"loss ({LOSS_UNIT})")
    axes[-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def _pitch_ticks(low, high):
    """Tick pitches for a range: every natural note if it fits, else the Cs (and Gs)."""
    if high - low <= 24:
        return [p for p in range(low, high + 1) if p % 12 not in BLACK_KEYS]
    if high - low <= 48:
        return [p for p in range(low, high + 1) if p % 12 in (0, 7)]
    return [p for p in range(low, high + 1) if p % 12 == 0]


def draw_piano_rolls(rolls: list[Notes], dpi=DPI, title=None):
    """One piano roll per file, side by side (5 x 4.5 in each): time in beats across, MIDI pitch
    up with note names, black-key rows shaded."""
    from matplotlib.collections import PolyCollection

    fig = _figure(5.0 * len(rolls), 4.5, dpi)
    axes = fig.subplots(1, len(rolls), sharey=True, squeeze=False)[0]
    low = int(min(r.pitch.min() for r in rolls)) - 2
    high = int(max(r.pitch.max() for r in rolls)) + 2
    for ax, roll in zip(axes, rolls):
        for p in range(low, high + 1):
            if p % 12 in BLACK_KEYS:
                ax.axhspan(p - 0.5, p + 0.5, color="0.92", linewidth=0, zorder=0)
        y0, y1 = roll.pitch - 0.4, roll.pitch + 0.4
        boxes = np.stack([np.stack([roll.start, y0], 1), np.stack([roll.end, y0], 1),
                          np.stack([roll.end, y1], 1), np.stack([roll.start, y1], 1)], axis=1)
        ax.add_collection(PolyCollection(boxes, facecolors=NOTE_COLOUR, edgecolors="0.15", linewidths=0.4,
                                         zorder=2))
        ax.set_xlim(0, max(float(roll.end.max()), 1.0))
        ax.set_ylim(low - 0.5, high + 0.5)
        ax.set_xlabel("time (beats)")
        ax.set_title(f"{roll.name} ({len(roll.pitch)} notes)", fontsize="medium")
        ax.grid(True, axis="x", alpha=0.3)
    ticks = _pitch_ticks(low, high)
    axes[0].set_yticks(ticks, [note_name(p) for p in ticks])
    axes[0].set_ylabel("pitch")
    if title:
        fig.suptitle(title)
    return fig


# -- saving ----------------------------------------------------------------------------------

def check_output(output) -> str:
    """The image format for ``output`` (by suffix); ConfigError if unsupported or its folder
    does not exist."""
    output = Path(output)
    fmt = IMAGE_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{output}: unsupported image type {output.suffix or '(no suffix)'!r}; "
                          f"use {', '.join(IMAGE_FORMATS)}")
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: folder {output.parent} does not exist")
    return fmt


def save(fig, output):
    """Write ``fig`` to ``output`` atomically: the old file or the whole new one, never half."""
    from seqgen.storage.atomic import write_atomically

    fmt = check_output(output)
    write_atomically(output, lambda tmp: fig.savefig(tmp, format=fmt, dpi=fig.dpi))


def _names(paths):
    """Legend names: file names, or whole paths where file names clash."""
    names = [Path(p).name for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths)]


def plot_runs(log_paths, output, x="both", dpi=DPI, title=None):
    """Loss curves of one or more `seqgen train --log` files -> ``output``; returns the Figure."""
    check_output(output)
    runs = [run for path, name in zip(log_paths, _names(log_paths)) for run in read_log(path, name)]
    fig = draw_runs(runs, x=x, dpi=dpi, title=title)
    save(fig, output)
    return fig


def plot_piano_rolls(midi_paths, output, dpi=DPI, title=None):
    """Piano rolls of one or more MIDI files, side by side -> ``output``; returns the Figure."""
    check_output(output)
    rolls = [read_notes(path, name) for path, name in zip(midi_paths, _names(midi_paths))]
    fig = draw_piano_rolls(rolls, dpi=dpi, title=title)
    save(fig, output)
    return fig


def input_kind(paths) -> str:
    """"log" or "midi" by the files' suffixes; ConfigError for none, an unknown or a mixed kind."""
    if not paths:
        raise ConfigError("nothing to plot: give training logs (.jsonl) or MIDI files (.mid)")
    kinds = {}
    for p in paths:
        suffix = Path(p).suffix.lower()
        kind = "log" if suffix in LOG_SUFFIXES else "midi" if suffix in MIDI_SUFFIXES else None
        if kind is None:
            raise ConfigError(f"{p}: cannot tell what to plot from the suffix {suffix or '(none)'!r}; "
                              f"use training logs ({', '.join(LOG_SUFFIXES)}) or MIDI files "
                              f"({', '.join(MIDI_SUFFIXES)})")
        kinds.setdefault(kind, p)
    if len(kinds) > 1:
        raise ConfigError(f"cannot mix training logs and MIDI files in one picture ({kinds['log']}, "
                          f"{kinds['midi']}); plot them separately")
    return next(iter(kinds))


def plot(paths, output, x="both", dpi=DPI, title=None):
    """Loss curves or piano rolls of ``paths``, chosen by their suffixes -> ``output``."""
    if input_kind(paths) == "log":
        return plot_runs(paths, output, x=x, dpi=dpi, title=title)
    if x != "both":
        raise ConfigError(f"x={x!r} (the loss curves' axis) applies to training logs, not MIDI files")
    return plot_piano_rolls(paths, output, dpi=dpi, title=title)
