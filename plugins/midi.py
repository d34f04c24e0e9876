"""`midi`: MIDI files as grid tokens, monophonic or polyphonic; read by a bounded reader of
its own, written with mido.

Encodings (see docs/tokenizers.md):
- melody: the highest sounding note at each grid step; "n60_d4" = pitch 60 for 4 steps,
  "r_d2" = 2 steps of rest.
- poly: per grid step its sounding pitches in ascending order, "p60" if struck at this step,
  "h60" if held from the step before, then "<STEP>".
A tune ends with "<END>".

Reading never trusts the file: the reader checks every length against the bytes there are,
pairs notes in ticks, cuts notes held too long and refuses tunes too long *before* anything is
laid out on the grid, and lays the grid out in time and memory proportional to the tokens it
returns (not to the grid's length).
"""

from __future__ import annotations

import heapq
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import mido
import numpy as np

from seqgen.errors import ConfigError, CorpusError
from seqgen.plugins.hookspecs import hookimpl
from seqgen.plugins.tokenizer import Option, TokenClasses, Tokenizer, open_regular

END = "<END>"
STEP = "<STEP>"
DRUM_CHANNEL = 9  # channel 10 counted from 1
MELODY_RE = re.compile(r"(?:n(\d+)|r)_d(\d+)")
POLY_RE = re.compile(r"([ph])(\d+)")
# poly token codes: 0-127 "p<pitch>", 128-255 "h<pitch>", 256 "<STEP>"
# above this many pitch tokens per step on average, poly is laid out on a dense grid
DENSE_POLY = 16
POLY_TABLE = np.array([f"p{i}" for i in range(128)] + [f"h{i}" for i in range(128)] + [STEP], dtype=object)


class Note(NamedTuple):
    """A note on the grid: sounding for steps [start, end). (A tuple: fast to sort.)"""

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
        "max_steps": Option(
            int, 100_000, "refuse a file whose notes last beyond this many grid steps", min=1, max=10**9
        ),
        "max_note_quarters": Option(
            int, 64, "cut notes held longer than this many quarters (with a warning)", min=1
        ),
        "transpose": Option(
            str, "none", "train also on copies of each training piece shifted by these semitones: none, all "
            "(-5..6: all 12 keys) or LOW..HIGH; copies with a note outside pitch_range are dropped"
        ),
        "pitch_range": Option(
            str, None, "LOW..HIGH: the MIDI pitches transposed copies must stay within "
            "(default: the lowest to the highest pitch of the training pieces)"
        ),
    }
    write_options = {
        "tempo": Option(float, 120.0, "tempo in beats (quarters) per minute", min=4, max=1000),
        "program": Option(int, 0, "General MIDI program (instrument), 0-127", min=0, max=127),
        "velocity": Option(int, 80, "note-on velocity, 1-127", min=1, max=127),
        "ticks_per_beat": Option(int, 480, "MIDI ticks per quarter note", min=1, max=32767),
    }

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._shifts = _shift_range(self.config["transpose"])
        self._pitch_range = _pitch_range(self.config["pitch_range"])

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
        if self.config["encoding"] == "melody":
            return _melody_tokens(notes, self.config["max_quarters"] * self.config["steps_per_quarter"])
        return _poly_tokens(notes)

    def read_prime(self, path: str | Path) -> list[str]:
        return self.read_file(Path(path))

    def prime_write_options(self, path: str | Path) -> dict:
        """{"tempo": bpm} of the primer's first set_tempo (earliest in time), kept within the
        `tempo` write option's range; {} if it sets none (MIDI's default is 120 bpm)."""
        tempo = _load(Path(path)).tempo
        if not tempo:
            return {}
        spec = self.write_options["tempo"]
        return {"tempo": min(max(60_000_000 / tempo, spec.min), spec.max)}

    def parse_prime(self, text: str) -> list[str]:
        return text.split()

    def read_notes(self, path: str | Path) -> np.ndarray:
        """A MIDI file's notes on this tokenizer's grid, through the same bounded reader as
        training: rows (start step, end step, pitch), sorted. CorpusError naming the file."""
        path = Path(path)
        return self._grid_notes(_load(path), path)

    def _grid_notes(self, smf: Smf, path: Path) -> np.ndarray:
        """The file's notes (selected tracks/channels) quantised to the grid: distinct rows
        (start step, end step, pitch), sorted, every one at most max_note_quarters long;
        CorpusError if they reach beyond max_steps. Decided from ticks: nothing is laid out
        on the grid here."""
        tpb, spq = smf.ticks_per_beat, self.config["steps_per_quarter"]
        track_sel, channel_sel = self.config["track"], self.config["channel"]
        keep_drums = self.config["include_drums"] or channel_sel == DRUM_CHANNEL + 1
        if track_sel is not None and track_sel >= len(smf.tracks):
            raise CorpusError(f"{path}: no track {track_sel} (the file has {len(smf.tracks)})")
        tracks = smf.tracks if track_sel is None else [smf.tracks[track_sel]]
        spans = np.concatenate([np.empty((0, 4), np.int64), *tracks])
        channel = spans[:, 2]
        keep = (channel != DRUM_CHANNEL) | keep_drums
        if channel_sel is not None:
            keep &= channel == channel_sel - 1
        spans = spans[keep]
        if not len(spans):
            where = "".join(
                [
                    f" in track {track_sel}" if track_sel is not None else "",
                    f" on channel {channel_sel}" if channel_sel is not None else "",
                    "" if keep_drums else " (drum channel 10 excluded)",
                ]
            )
            raise CorpusError(f"{path}: no notes{where}")
        # Clamped at 2**50 ticks (over 3e10 steps, beyond any max_steps) so that 2 * tick * spq
        # cannot overflow int64.
        ticks = np.minimum(spans[:, :2], 1 << 50)
        start, end = ((2 * ticks * spq + tpb) // (2 * tpb)).T  # nearest grid step, halves rounded up
        end = np.maximum(end, start + 1)  # notes shorter than a step still last one step
        longest = self.config["max_note_quarters"] * spq
        cut = int(np.count_nonzero(end - start > longest))
        end = np.minimum(end, start + longest)
        extent = int(end.max())
        if extent > self.config["max_steps"]:
            raise CorpusError(
                f"{path}: notes reach grid step {extent}, beyond max_steps {self.config['max_steps']}"
                " (garbage time values, or raise -O max_steps)"
            )
        if cut:
            quarters = self.config["max_note_quarters"]
            warnings.warn(f"{path}: {cut} note(s) held over {quarters} quarters cut to {quarters} "
                          "(max_note_quarters)", stacklevel=4)
        return np.unique(np.stack([start, end, spans[:, 3]], axis=1), axis=0)  # identical notes merge

    # -- sampling rules --------------------------------------------------------------------

    def token_classes(self) -> TokenClasses:
        """Each vocabulary token's pitch ("n60_d4", "p60", "h60": 60; rests and specials: -1)
        and, for poly, the tokens that close a step (<STEP>, <END>)."""
        poly = self.config["encoding"] == "poly"
        pattern = POLY_RE if poly else MELODY_RE
        pitch = np.full(len(self.vocab), -1, np.int16)
        for i, tok in enumerate(self.vocab):
            m = pattern.fullmatch(tok)
            number = m and (m[2] if poly else m[1])
            if number and int(number) <= 127:
                pitch[i] = int(number)
        step_end = np.array([tok in (STEP, END) for tok in self.vocab], dtype=bool) if poly else None
        return TokenClasses(pitch, step_end)

    # -- augmentation ----------------------------------------------------------------------

    @property
    def augments(self) -> bool:
        return self._shifts != (0, 0)

    def augment(self, documents):
        """Training pieces -> each piece, then its copies shifted by every semitone of
        `transpose` in ascending order, except copies with a note outside the pitch range
        (`pitch_range`, or the lowest to the highest pitch of these pieces): the data grows up
        to 12-fold for `all`. Durations, rests and steps are unchanged. Every allowed key is
        used, so nothing is drawn at random."""
        documents = list(documents)
        if not self.augments:
            return documents
        melody = self.config["encoding"] == "melody"
        pieces = [_Transposable(doc, melody) for doc in documents]
        low, high = self._pitch_range or _extent(pieces)
        out = []
        for doc, piece in zip(documents, pieces):
            out.append(doc)
            if piece.low is not None:
                out += [piece.shifted(s) for s in range(self._shifts[0], self._shifts[1] + 1)
                        if s and low <= piece.low + s and piece.high + s <= high]
        return out

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

        track = [(n.pitch, tick(n.start), tick(n.end), 0) for n in notes]
        write_midi(path, [track], ticks_per_beat=ticks_per_beat, type=0, tempo=round(mido.bpm2tempo(tempo)),
                   program=program, velocity=velocity)


def write_midi(path, tracks, *, ticks_per_beat=480, type=1, tempo=None, names=(), program=None, velocity=80):
    """Write a Standard MIDI File: the one writer of the tokenizer, corpora/make_chorales.py
    and the tests.

    tracks: per track a list of (pitch, start tick, end tick, channel 0-15) notes. Each track is
    its name (from `names`, if given), then in the first track only a set_tempo (`tempo`, in
    microseconds per quarter) and a program change on channel 0 (`program`), then the notes as
    note_on (`velocity`) / note_off (velocity 0) in time order (note-offs before note-ons at
    the same tick, so a re-struck pitch sounds again), then end_of_track.
    """
    mid = mido.MidiFile(type=type, ticks_per_beat=ticks_per_beat)
    for i, notes in enumerate(tracks):
        track = mido.MidiTrack()
        if i < len(names):
            track.append(mido.MetaMessage("track_name", name=names[i], time=0))
        if i == 0 and tempo is not None:
            track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
        if i == 0 and program is not None:
            track.append(mido.Message("program_change", program=program, channel=0, time=0))
        events = sorted([(s, 1, p, c) for p, s, _, c in notes] + [(e, 0, p, c) for p, _, e, c in notes])
        now = 0
        for tick, on, pitch, channel in events:
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, note=pitch, velocity=velocity if on else 0, channel=channel,
                                      time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(track)
    mid.save(path)
    return path


# -- the reader -------------------------------------------------------------------------------


@dataclass
class Smf:
    """A Standard MIDI File as the tokenizer needs it. tracks: per track its notes, an int64
    array of shape (n, 4): start tick, end tick, channel 0-15, pitch; tempo: the first set_tempo (microseconds per
    quarter, earliest in time), or None."""

    type: int
    ticks_per_beat: int
    tracks: list[np.ndarray]
    tempo: int | None


# data bytes after the status bytes of system common and real-time messages (F4, F5, F9, FD: none)
_SYSTEM_WIDTH = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0}


class _Malformed(Exception):
    """The bytes are not a usable MIDI file (the message says why)."""


def _load(path: Path) -> Smf:
    """Read and parse a MIDI file; CorpusError naming it if it is not a usable MIDI file."""
    try:
        with open_regular(path) as f:
            data = f.read()
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        smf = parse_smf(data)
    except _Malformed as e:
        raise CorpusError(f"{path}: not a valid MIDI file ({e})") from None
    if smf.type == 2:
        raise CorpusError(f"{path}: MIDI type 2 (independent sequences) is not supported")
    if smf.ticks_per_beat & 0x8000:
        raise CorpusError(f"{path}: SMPTE time division is not supported (only ticks per beat)")
    if smf.ticks_per_beat == 0:
        raise CorpusError(f"{path}: not a valid MIDI file (0 ticks per beat)")
    return smf


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big")


def parse_smf(data: bytes) -> Smf:
    """The bytes of a Standard MIDI File -> Smf; _Malformed if they are not one.

    Every length is checked against the bytes there are; chunks of unknown kinds are skipped
    (as the standard asks); running status, sysex and meta events are understood. Time and
    memory are linear in the size of the file."""
    if len(data) < 14:
        raise _Malformed("truncated" if data[:4] == b"MThd"[: len(data)] else "MThd not found: not a MIDI file")
    if data[:4] != b"MThd":
        raise _Malformed("MThd not found: not a MIDI file")
    size = _u32(data, 4)
    if size < 6:
        raise _Malformed(f"header chunk of {size} bytes, fewer than 6")
    fmt, ntracks, division = (int.from_bytes(data[i : i + 2], "big") for i in (8, 10, 12))
    if fmt > 2:
        raise _Malformed(f"unknown format {fmt}")
    tracks: list = []
    tempos: list[tuple[int, int, int]] = []  # (tick, track, tempo)
    pos = 8 + size
    while len(tracks) < ntracks:
        if pos + 8 > len(data):
            raise _Malformed(f"truncated: {len(tracks)} of the {ntracks} MTrk track chunks it announces")
        kind, size, pos = data[pos : pos + 4], _u32(data, pos + 4), pos + 8
        if pos + size > len(data):
            raise _Malformed(f"truncated: a chunk of {size} bytes with {len(data) - pos} left")
        if kind == b"MTrk":
            tracks.append(_track(data, pos, pos + size, len(tracks), tempos))
        pos += size
    return Smf(fmt, division, tracks, min(tempos)[2] if tempos else None)


def _track(data: bytes, pos: int, end: int, index: int, tempos: list) -> np.ndarray:
    """One MTrk chunk's body, data[pos:end] -> its notes, shape (n, 4): start tick, end tick,
    channel, pitch.
    A note struck again while sounding ends there; notes never released end with the track.
    Appends (tick, index, tempo) of its set_tempo events to `tempos`."""
    notes, sounding = [], {}  # (channel, pitch) -> start tick
    tick, running = 0, 0
    where = f"track {index}"
    while pos < end:
        byte = data[pos]
        pos += 1
        delta = byte & 0x7F
        for _ in range(3):  # a delta-time has at most 4 bytes
            if not byte & 0x80:
                break
            if pos >= end:
                raise _Malformed(f"{where}: delta-time cut off by the end of the chunk")
            byte = data[pos]
            pos += 1
            delta = (delta << 7) | (byte & 0x7F)
        else:
            if byte & 0x80:
                raise _Malformed(f"{where}: delta-time longer than 4 bytes")
        tick += delta
        if pos >= end:
            raise _Malformed(f"{where}: event cut off by the end of the chunk")
        status = data[pos]
        if status & 0x80:
            pos += 1
        elif running:
            status = running
        else:
            raise _Malformed(f"{where}: running status without a status byte")
        if status == 0xFF or status in (0xF0, 0xF7):  # meta / sysex: a length, then data
            if status == 0xFF:
                if pos >= end:
                    raise _Malformed(f"{where}: meta event cut off by the end of the chunk")
                meta = data[pos]
                pos += 1
            length, pos = _varlen(data, pos, end, where)
            if pos + length > end:
                raise _Malformed(f"{where}: event of {length} bytes runs past the end of the chunk")
            if status == 0xFF and meta == 0x2F:  # end of track
                break
            if status == 0xFF and meta == 0x51 and length == 3:
                tempos.append((tick, index, int.from_bytes(data[pos : pos + 3], "big")))
            pos += length
            continue
        if status >= 0xF0:  # system common / real-time: no place in a file, but harmless
            if status not in _SYSTEM_WIDTH:
                raise _Malformed(f"{where}: undefined status byte 0x{status:02x}")
            pos += _SYSTEM_WIDTH[status]
            if pos > end:
                raise _Malformed(f"{where}: event cut off by the end of the chunk")
            continue
        running = status
        kind = status & 0xF0
        width = 1 if kind in (0xC0, 0xD0) else 2
        if pos + width > end:
            raise _Malformed(f"{where}: event cut off by the end of the chunk")
        if data[pos] & 0x80 or (width == 2 and data[pos + 1] & 0x80):
            raise _Malformed(f"{where}: data byte above 127")
        if kind == 0x90 or kind == 0x80:
            key = (status & 0x0F, data[pos])
            if key in sounding:  # a note-off, or a re-strike that ends the sounding note
                notes += (sounding.pop(key), tick, *key)
            if kind == 0x90 and data[pos + 1]:
                sounding[key] = tick
        pos += width
    for key, start in sounding.items():  # never released
        notes += (start, tick, *key)
    # ticks stay below 2**63: at most 2**28 per event, and fewer than 2**35 events
    return np.array(notes, dtype=np.int64).reshape(-1, 4)


def _varlen(data: bytes, pos: int, end: int, where: str) -> tuple[int, int]:
    """A variable-length quantity (at most 4 bytes) at data[pos] -> (value, position after)."""
    value = 0
    for _ in range(4):
        if pos >= end:
            raise _Malformed(f"{where}: length cut off by the end of the chunk")
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
    raise _Malformed(f"{where}: length longer than 4 bytes")


# -- the grid ---------------------------------------------------------------------------------


def _melody_tokens(notes: np.ndarray, cap: int) -> list[str]:
    """Skyline of sorted, distinct (start, end, pitch) rows: at each step the highest sounding
    note (the later-struck one on ties), as runs of at most `cap` steps. A sweep over the
    notes' starts and ends: time O(n log n) in the number of notes, whatever the grid's length."""
    notes = notes.tolist()
    bounds = sorted({0, *(n[0] for n in notes), *(n[1] for n in notes)})
    heap: list[tuple[int, int, int, int]] = []  # (-pitch, -start, end, index): the top note first
    runs: list[list[int]] = []  # [note index or -1 for a rest, steps]
    i, count = 0, len(notes)
    for t, following in zip(bounds, bounds[1:]):
        while i < count and notes[i][0] <= t:
            start, end, pitch = notes[i]
            heapq.heappush(heap, (-pitch, -start, end, i))
            i += 1
        while heap and heap[0][2] <= t:  # ended notes leave when they reach the top
            heapq.heappop(heap)
        top = heap[0][3] if heap else -1
        if runs and runs[-1][0] == top:
            runs[-1][1] += following - t
        else:
            runs.append([top, following - t])
    tokens = []
    for top, steps in runs:
        head = "r" if top < 0 else f"n{notes[top][2]}"
        tokens += [f"{head}_d{cap}"] * (steps // cap)
        if steps % cap:
            tokens.append(f"{head}_d{steps % cap}")
    return tokens


def _poly_tokens(notes: np.ndarray) -> list[str]:
    """Sorted, distinct (start, end, pitch) rows -> per step "p<pitch>" (struck here) /
    "h<pitch>" (held) ascending, then <STEP>. Overlapping notes of a pitch merge first, so
    every array built is at most a few bytes per token returned."""
    start, end, pitch = notes[np.lexsort((notes[:, 0], notes[:, 2]))].T  # by pitch, then start
    extent = int(end.max())
    # Notes of one pitch that overlap or touch merge into one interval: the running maximum of
    # the ends (offset by pitch, so that it restarts with each pitch) says how far it reaches.
    reach = np.maximum.accumulate(pitch * (extent + 1) + end) - pitch * (extent + 1)
    new = np.ones(len(start), dtype=bool)
    new[1:] = (pitch[1:] != pitch[:-1]) | (start[1:] > reach[:-1])
    heads = np.flatnonzero(new)
    group = np.cumsum(new) - 1  # each note's interval
    first, lengths = start[heads], reach[np.append(heads[1:] - 1, len(start) - 1)] - start[heads]
    total = int(lengths.sum())  # pitch tokens
    if total >= DENSE_POLY * extent:
        # Dense: a (step, pitch) grid costs no more memory than the flat arrays would, and
        # reading it row by row needs no sort. Cells hold code + 1; 0 = silent.
        grid = np.zeros((extent, 129), dtype=np.int16)
        grid[:, 128] = 257  # <STEP> closes every row
        for f, n, p in zip(first.tolist(), lengths.tolist(), pitch[heads].tolist()):
            grid[f : f + n, p] = p + 129  # "h<pitch>"...
        grid[start, pitch] = pitch + 1  # ...but "p<pitch>" where a note starts
        out = grid[grid > 0] - 1
        return POLY_TABLE[out].tolist()
    offsets = np.cumsum(lengths) - lengths  # where each interval's steps begin in the flat arrays
    steps = np.repeat(first - offsets, lengths) + np.arange(offsets[-1] + lengths[-1])
    codes = np.repeat((pitch[heads] + 128).astype(np.int16), lengths)  # "h<pitch>"...
    codes[offsets[group] + start - first[group]] = pitch  # ...but "p<pitch>" where a note starts
    # step-major; the stable sort keeps pitches ascending within a step
    codes = codes[np.argsort(steps, kind="stable")]
    out = np.full(len(codes) + extent, 256, dtype=np.int16)  # <STEP> after each step's pitches
    is_pitch = np.ones(len(out), dtype=bool)
    is_pitch[np.cumsum(np.bincount(steps, minlength=extent) + 1) - 1] = False
    out[is_pitch] = codes
    return POLY_TABLE[out].tolist()


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


# -- transposition ----------------------------------------------------------------------------

ALL_KEYS = (-5, 6)  # `transpose all`: every key once, the original's tritone above it
RANGE_RE = re.compile(r"\s*([+-]?\d+)\s*\.\.\s*([+-]?\d+)\s*")


def _shift_range(text: str) -> tuple[int, int]:
    """The `transpose` option -> (lowest, highest) shift in semitones; (0, 0) for none."""
    if text == "none":
        return (0, 0)
    if text == "all":
        return ALL_KEYS
    m = RANGE_RE.fullmatch(text)
    if m and -12 <= int(m[1]) <= 0 <= int(m[2]) <= 12:
        return int(m[1]), int(m[2])
    raise ConfigError(f"option 'transpose' must be none, all (= -5..6) or LOW..HIGH semitones with "
                      f"-12 <= LOW <= 0 <= HIGH <= 12, e.g. -3..3; got {text!r}")


def _pitch_range(text: str | None) -> tuple[int, int] | None:
    """The `pitch_range` option -> (lowest, highest) MIDI pitch, or None (from the corpus)."""
    if text is None:
        return None
    m = RANGE_RE.fullmatch(text)
    if m and 0 <= int(m[1]) <= int(m[2]) <= 127:
        return int(m[1]), int(m[2])
    raise ConfigError(f"option 'pitch_range' must be LOW..HIGH MIDI pitches with 0 <= LOW <= HIGH <= 127, "
                      f"e.g. 36..81; got {text!r}")


class _Transposable:
    """A piece's tokens as codes into its distinct tokens, whose pitches are parsed once, so a
    shifted copy is one table lookup per token (in numpy), not a parse per token."""

    def __init__(self, tokens: list[str], melody: bool):
        index: dict[str, int] = {}
        self.codes = np.fromiter((index.setdefault(t, len(index)) for t in tokens), np.int64, len(tokens))
        self.parts = []  # per distinct token: (head, pitch, tail), or the token if it has no pitch
        for tok in index:
            if melody:  # "n<pitch>_d<steps>"; rests have none
                m = MELODY_RE.fullmatch(tok)
                self.parts.append(("n", int(m[1]), f"_d{m[2]}") if m and m[1] is not None else tok)
            else:  # "p<pitch>", "h<pitch>"; <STEP> has none
                m = POLY_RE.fullmatch(tok)
                self.parts.append((m[1], int(m[2]), "") if m else tok)
        pitches = [p[1] for p in self.parts if isinstance(p, tuple)]
        self.low, self.high = (min(pitches), max(pitches)) if pitches else (None, None)

    def shifted(self, shift: int) -> list[str]:
        table = np.array([p if isinstance(p, str) else f"{p[0]}{p[1] + shift}{p[2]}" for p in self.parts],
                         dtype=object)
        return table[self.codes].tolist()


def _extent(pieces: list[_Transposable]) -> tuple[int, int]:
    """The lowest and the highest pitch of the pieces: the instrument's range, as the corpus has it."""
    lows = [p.low for p in pieces if p.low is not None]
    return (min(lows), max(p.high for p in pieces if p.high is not None)) if lows else (0, 127)


@hookimpl
def register_tokenizers(register):
    register(MidiTokenizer)
