"""`midi`: MIDI files (read and written with mido) as grid tokens, monophonic or polyphonic.

Encodings (see docs/tokenizers.md):
- melody: the highest sounding note at each grid step; "n60_d4" = pitch 60 for 4 steps,
  "r_d2" = 2 steps of rest.
- poly: per grid step its sounding pitches in ascending order, "p60" if struck at this step,
  "h60" if held from the step before, then "<STEP>".
A tune ends with "<END>".
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import mido

from seqgen.errors import ConfigError, CorpusError
from seqgen.plugins.hookspecs import hookimpl
from seqgen.plugins.tokenizer import Option, Tokenizer

END = "<END>"
STEP = "<STEP>"
DRUM_CHANNEL = 9  # channel 10 counted from 1
MAX_STEPS = 1_000_000  # longer tunes are almost surely garbage time values
MELODY_RE = re.compile(r"(?:n(\d+)|r)_d(\d+)")
POLY_RE = re.compile(r"([ph])(\d+)")
# mido reports malformed files with these bare exceptions.
MIDO_ERRORS = (OSError, EOFError, ValueError, KeyError, IndexError, TypeError)


@dataclass(frozen=True, order=True)
class Note:
    """A note on the grid: sounding for steps [start, end)."""

    start: int
    end: int
    pitch: int


class MidiTokenizer(Tokenizer):
    """MIDI type 0/1 files -> melody or polyphonic grid tokens; writes playable `.mid` files."""

    name = "midi"
    output = "midi"
    suffixes = (".mid", ".midi")
    options = {
        "encoding": Option(str, "melody", "melody (one voice) or poly (all notes)", choices=("melody", "poly")),
        "steps_per_quarter": Option(int, 4, "grid steps per quarter note", min=1, max=96),
        "max_quarters": Option(int, 8, "longest melody note/rest token, in quarters; longer ones are split", min=1),
        "track": Option(int, None, "only notes of this track (index in the file, from 0)", min=0),
        "channel": Option(int, None, "only notes of this channel (1-16)", min=1, max=16),
        "include_drums": Option(bool, False, "keep drum channel 10"),
    }
    write_options = {
        "tempo": Option(float, 120.0, "tempo in beats (quarters) per minute", min=4, max=1000),
        "program": Option(int, 0, "General MIDI program (instrument), 0-127", min=0, max=127),
        "velocity": Option(int, 80, "note-on velocity, 1-127", min=1, max=127),
        "ticks_per_beat": Option(int, 480, "MIDI ticks per quarter note", min=1, max=32767),
    }

    @property
    def separator(self) -> str:
        return END

    @property
    def specials(self) -> list[str]:
        return [END, STEP] if self.config["encoding"] == "poly" else [END]

    # -- reading ---------------------------------------------------------------------------

    def read_file(self, path: Path) -> list[str]:
        """A MIDI file -> its tokens (without <END>). CorpusError naming the file if unusable."""
        notes = self._grid_notes(_load(path), path)
        if max(n.end for n in notes) > MAX_STEPS:
            raise CorpusError(f"{path}: longer than {MAX_STEPS} grid steps")
        return self._melody_tokens(notes) if self.config["encoding"] == "melody" else _poly_tokens(notes)

    def read_prime(self, path: str | Path) -> list[str]:
        return self.read_file(Path(path))

    def parse_prime(self, text: str) -> list[str]:
        return text.split()

    def _grid_notes(self, mid: mido.MidiFile, path: Path) -> list[Note]:
        """The file's notes (selected tracks/channels) quantised to the grid, sorted."""
        tpb, spq = mid.ticks_per_beat, self.config["steps_per_quarter"]
        track_sel, channel_sel = self.config["track"], self.config["channel"]
        keep_drums = self.config["include_drums"] or channel_sel == DRUM_CHANNEL + 1
        if track_sel is not None and track_sel >= len(mid.tracks):
            raise CorpusError(f"{path}: no track {track_sel} (the file has {len(mid.tracks)})")
        spans = []  # (start tick, end tick, pitch)
        for index, track in enumerate(mid.tracks):
            if track_sel is not None and index != track_sel:
                continue
            tick, sounding = 0, {}  # (channel, pitch) -> start tick
            for msg in track:
                tick += msg.time
                if msg.type not in ("note_on", "note_off"):
                    continue
                if channel_sel is not None and msg.channel != channel_sel - 1:
                    continue
                if msg.channel == DRUM_CHANNEL and not keep_drums:
                    continue
                key = (msg.channel, msg.note)
                if key in sounding:  # a note-off, or a re-strike that ends the sounding note
                    spans.append((sounding.pop(key), tick, msg.note))
                if msg.type == "note_on" and msg.velocity > 0:
                    sounding[key] = tick
            spans += [(start, tick, pitch) for (_, pitch), start in sounding.items()]  # never released
        if not spans:
            where = "".join(
                [
                    f" in track {track_sel}" if track_sel is not None else "",
                    f" on channel {channel_sel}" if channel_sel is not None else "",
                    "" if keep_drums else " (drum channel 10 excluded)",
                ]
            )
            raise CorpusError(f"{path}: no notes{where}")

        def step(tick):  # nearest grid step, halves rounded up
            return (2 * tick * spq + tpb) // (2 * tpb)

        # Notes shorter than a step still last one step; identical notes merge.
        return sorted({Note(step(s), max(step(e), step(s) + 1), p) for s, e, p in spans})

    def _melody_tokens(self, notes: list[Note]) -> list[str]:
        """Skyline: at each step the highest sounding note (the later-struck one on ties)."""
        top: list[Note | None] = [None] * max(n.end for n in notes)
        for note in notes:
            for s in range(note.start, note.end):
                if top[s] is None or (note.pitch, note.start) > (top[s].pitch, top[s].start):
                    top[s] = note
        tokens, s, cap = [], 0, self.config["max_quarters"] * self.config["steps_per_quarter"]
        while s < len(top):
            e = s + 1
            while e < len(top) and top[e] is top[s]:
                e += 1
            head = "r" if top[s] is None else f"n{top[s].pitch}"
            for start in range(s, e, cap):
                tokens.append(f"{head}_d{min(cap, e - start)}")
            s = e
        return tokens

    # -- writing ---------------------------------------------------------------------------

    def render(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def write_tokens(self, tokens, path, *, tempo, program, velocity, ticks_per_beat) -> None:
        """Tokens (up to the first <END>) -> a type 0 `.mid` file at `path`.

        Malformed input is repaired: tokens that do not belong to the encoding are skipped
        (with a warning), held notes that were never struck start where they appear, notes
        still sounding at the end are released there.
        """
        spq = self.config["steps_per_quarter"]
        if ticks_per_beat < spq:
            raise ConfigError(f"ticks_per_beat ({ticks_per_beat}) must be at least steps_per_quarter ({spq})")
        if END in tokens:
            tokens = tokens[: tokens.index(END)]
        parse = _melody_notes if self.config["encoding"] == "melody" else _poly_notes
        notes, skipped = parse(tokens)
        if skipped:
            encoding = self.config["encoding"]
            warnings.warn(f"{path}: skipped {skipped} token(s) that are not {encoding} notes", stacklevel=3)

        def tick(step):
            return (2 * step * ticks_per_beat + spq) // (2 * spq)

        # note-offs sort before note-ons at the same tick, so a re-struck pitch sounds again
        events = sorted([(tick(n.start), 1, n.pitch) for n in notes] + [(tick(n.end), 0, n.pitch) for n in notes])
        track = mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=round(mido.bpm2tempo(tempo)), time=0),
                mido.Message("program_change", program=program, channel=0, time=0),
            ]
        )
        now = 0
        for t, on, pitch in events:
            kind, vel = ("note_on", velocity) if on else ("note_off", 0)
            track.append(mido.Message(kind, note=pitch, velocity=vel, channel=0, time=t - now))
            now = t
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
        mid.tracks.append(track)
        mid.save(path)


def _load(path: Path) -> mido.MidiFile:
    """Parse a MIDI file; CorpusError naming it if it is not a usable MIDI file."""
    try:
        mid = mido.MidiFile(path)
    except EOFError:
        raise CorpusError(f"{path}: not a valid MIDI file (truncated)") from None
    except MIDO_ERRORS as e:
        raise CorpusError(f"{path}: not a valid MIDI file ({type(e).__name__}: {e})") from None
    if mid.type == 2:
        raise CorpusError(f"{path}: MIDI type 2 (independent sequences) is not supported")
    if mid.ticks_per_beat <= 0:
        raise CorpusError(f"{path}: SMPTE time division is not supported (only ticks per beat)")
    return mid


def _poly_tokens(notes: list[Note]) -> list[str]:
    """Per step: "p<pitch>" (struck here) / "h<pitch>" (held) ascending, then <STEP>."""
    cells: list[dict[int, str]] = [{} for _ in range(max(n.end for n in notes))]
    for note in notes:
        cells[note.start][note.pitch] = "p"  # a strike wins over another note's hold
        for s in range(note.start + 1, note.end):
            cells[s].setdefault(note.pitch, "h")
    tokens = []
    for cell in cells:
        tokens += [f"{cell[p]}{p}" for p in sorted(cell)]
        tokens.append(STEP)
    return tokens


def _melody_notes(tokens: list[str]) -> tuple[list[Note], int]:
    """Melody tokens -> (notes, number of tokens skipped as malformed)."""
    notes, t, skipped = [], 0, 0
    for tok in tokens:
        m = MELODY_RE.fullmatch(tok)
        if not m or int(m[2]) == 0 or (m[1] is not None and int(m[1]) > 127):
            skipped += 1
            continue
        if m[1] is not None:
            notes.append(Note(t, t + int(m[2]), int(m[1])))
        t += int(m[2])
    return notes, skipped


def _poly_notes(tokens: list[str]) -> tuple[list[Note], int]:
    """Poly tokens -> (notes, number of tokens skipped as malformed). Tokens after the last
    <STEP> count as one more step."""
    notes, skipped, t = [], 0, 0
    sounding: dict[int, int] = {}  # pitch -> start step
    cell: dict[int, str] = {}

    def close_step():
        for pitch in [p for p in sounding if p not in cell or cell[p] == "p"]:
            notes.append(Note(sounding.pop(pitch), t, pitch))
        for pitch in cell:
            sounding.setdefault(pitch, t)  # a held pitch that was not sounding starts here

    for tok in tokens:
        m = POLY_RE.fullmatch(tok)
        if tok == STEP:
            close_step()
            t, cell = t + 1, {}
        elif m and int(m[2]) <= 127:
            pitch = int(m[2])
            cell[pitch] = "p" if "p" in (m[1], cell.get(pitch)) else "h"
        else:
            skipped += 1
    if cell:
        close_step()
        t += 1
    notes += [Note(start, t, pitch) for pitch, start in sounding.items()]
    return sorted(notes), skipped


@hookimpl
def register_tokenizers(register):
    register(MidiTokenizer)
