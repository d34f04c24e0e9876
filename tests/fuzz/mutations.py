"""Seeded mutations of valid MIDI files, for the fuzz tests and benchmarks/fuzz_inputs.py.

Byte-level (bit flips, random bytes, truncation, garbage, insertions and deletions, corrupt chunk
lengths and header fields) and structural, through mido on a valid seed (huge delta-times,
unreleased notes, many stuck notes, meta events mido itself rejects such as a key signature of
20 sharps). `mutate(seed_bytes, rng)` applies one to three of them.
"""

import io
import random
import struct
from pathlib import Path

import mido

CORPUS = Path(__file__).resolve().parents[2] / "corpora" / "jsb-chorales"


def seed_files(count=None, rng=None):
    """Chorale files (melody and satb) to mutate: all of them, or `count` drawn with `rng`."""
    files = sorted(CORPUS.rglob("*.mid"))
    if count is not None:
        files = (rng or random.Random(0)).sample(files, min(count, len(files)))
    return files


def chunks(raw):
    """Offsets of the chunk headers of a valid file (MThd first)."""
    offsets, pos = [], 0
    while pos + 8 <= len(raw):
        offsets.append(pos)
        pos += 8 + struct.unpack(">I", raw[pos + 4 : pos + 8])[0]
    return offsets


def flip_bits(raw, rng):
    raw = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    return bytes(raw)


def set_bytes(raw, rng):
    raw = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        raw[rng.randrange(len(raw))] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    return bytes(raw)


def truncate(raw, rng):
    return raw[: rng.randrange(len(raw))]


def garbage(raw, rng):
    junk = rng.randbytes(rng.randint(0, 2000))
    return rng.choice([junk, b"MThd" + junk, raw[:14] + b"MTrk" + junk, raw + junk])


def insert_delete(raw, rng):
    at = rng.randrange(len(raw))
    if rng.random() < 0.5:
        return raw[:at] + rng.randbytes(rng.randint(1, 16)) + raw[at:]
    return raw[:at] + raw[at + rng.randint(1, 16) :]


def chunk_length(raw, rng):
    """A chunk's length field set to 0, off by a little, random, or 0xFFFFFFFF."""
    offsets = chunks(raw)
    if not offsets:  # shorter than a chunk header (after another mutation): make one up
        return raw[:4] + struct.pack(">I", rng.getrandbits(32))
    at = rng.choice(offsets)
    size = struct.unpack(">I", raw[at + 4 : at + 8])[0]
    new = rng.choice([0, 1, 5, max(0, size + rng.randint(-16, 16)), rng.getrandbits(32), 0xFFFFFFFF])
    return raw[: at + 4] + struct.pack(">I", new) + raw[at + 8 :]


def header_field(raw, rng):
    """Format, number of tracks or division set to an edge or a random value."""
    at = rng.choice([8, 10, 12])
    value = rng.choice([0, 1, 2, 3, 0x7FFF, 0x8000, 0xE728, 0xFFFF, rng.getrandbits(16)])
    return raw[:at] + struct.pack(">H", value) + raw[at + 2 :]


def _edit(raw, change):
    mid = mido.MidiFile(file=io.BytesIO(raw))
    change(mid)
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()


def huge_delta(raw, rng):
    """A few messages moved 2**20 to 2**28 - 1 ticks later (the largest delta-time a file holds)."""

    def change(mid):
        track = rng.choice(mid.tracks)
        for _ in range(rng.randint(1, 3)):
            msg = track[rng.randrange(len(track))]
            track[track.index(msg)] = msg.copy(time=rng.choice([rng.randint(1 << 20, (1 << 28) - 1), (1 << 28) - 1]))

    return _edit(raw, change)


def unreleased(raw, rng):
    """Some or all note-offs dropped, the end of the track perhaps far away."""

    def change(mid):
        keep = rng.random()
        for i, track in enumerate(mid.tracks):
            msgs, carry = [], 0
            for msg in track:
                off = msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0)
                if off and rng.random() > keep:
                    carry += msg.time
                    continue
                msgs.append(msg.copy(time=msg.time + carry))
                carry = 0
            if msgs and msgs[-1].type == "end_of_track" and rng.random() < 0.5:
                msgs[-1] = msgs[-1].copy(time=rng.randint(1, (1 << 28) - 1))
            mid.tracks[i] = mido.MidiTrack(msgs)

    return _edit(raw, change)


def stuck_notes(raw, rng):
    """Up to 128 note-ons never released at the start of a track, the end of it far away."""

    def change(mid):
        track = rng.choice(mid.tracks)
        stuck = [mido.Message("note_on", note=p, velocity=90, channel=rng.randrange(16), time=0)
                 for p in rng.sample(range(128), rng.randint(1, 128))]
        track[:0] = stuck
        track.append(mido.MetaMessage("end_of_track", time=0))  # mido keeps only the last one
        track[-1] = track[-1].copy(time=rng.randint(1, (1 << 28) - 1))

    return _edit(raw, change)


def bad_meta(raw, rng):
    """A meta event with data mido cannot decode: a key signature of 20 sharps, an empty tempo,
    a time signature with a zero denominator, a set_tempo of 0 or 1 microseconds."""
    data = rng.choice([(0x59, bytes([20, 0])), (0x59, bytes([0x80, 5])), (0x51, b""), (0x51, b"\x00\x00\x00"),
                       (0x51, b"\x00\x00\x01"), (0x58, bytes([4, 0x7F, 24, 8])), (0x59, b"")])
    event = b"\x00\xff" + bytes([data[0], len(data[1])]) + data[1]
    at = rng.choice(chunks(raw)[1:])  # a track chunk: the event goes first in it
    size = struct.unpack(">I", raw[at + 4 : at + 8])[0]
    return raw[: at + 4] + struct.pack(">I", size + len(event)) + event + raw[at + 8 :]


BYTE_MUTATIONS = [flip_bits, set_bytes, truncate, garbage, insert_delete, chunk_length, header_field]
STRUCTURAL = [huge_delta, unreleased, stuck_notes, bad_meta]


def mutate(raw, rng):
    """-> (mutated bytes, names of the mutations). Structural ones first (they need a valid
    file), then byte-level ones."""
    names = []
    if rng.random() < 0.5:
        ops = rng.sample(STRUCTURAL, rng.randint(1, 2))
        for op in sorted(ops, key=lambda op: op is bad_meta):  # after it mido cannot read the file
            raw = op(raw, rng)
            names.append(op.__name__)
    if not names or rng.random() < 0.3:
        for op in rng.sample(BYTE_MUTATIONS, rng.randint(1, 2)):
            if raw:
                raw = op(raw, rng)
                names.append(op.__name__)
    return raw, names
