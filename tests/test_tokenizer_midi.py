"""The `midi` tokenizer. Every MIDI file is built here with mido (or by hand, byte by byte)."""

import importlib.util
import json
import os
import re
import struct
import tracemalloc
import warnings
from pathlib import Path
from unittest import mock

import mido
import numpy as np
import pytest
from conftest import build_midi, call_unblocked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqgen.errors import ConfigError, CorpusError
from seqgen.plugins.host import get_tokenizer

Midi = get_tokenizer("midi")
CORPUS = Path(__file__).resolve().parents[1] / "corpora" / "jsb-chorales"
Q = 480  # ticks per beat of most fixtures; a grid step (spq=4) is 120 ticks
S = Q // 4


def notes_in(path):
    """{(start step, end step, pitch)} of a file at 4 steps per quarter, read independently."""
    mid = mido.MidiFile(path)
    per_step = mid.ticks_per_beat / 4
    found, on = set(), {}
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                on[msg.note] = tick
            elif msg.type in ("note_on", "note_off") and msg.note in on:
                found.add((round(on[msg.note] / per_step), round(tick / per_step), msg.note))
                del on[msg.note]
    assert not on, "a note was never released"
    return found


def read_one(path, **options):
    return Midi(**options).read(path)[0]


def test_melody_tokens_with_rests(tmp_path):
    path = build_midi(tmp_path / "m.mid", [[(60, 0, Q, 0), (62, 2 * Q, 2 * Q + S, 0)]])
    assert read_one(path) == ["n60_d4", "r_d4", "n62_d1", "<END>"]


def test_melody_takes_the_highest_sounding_note(tmp_path):
    # a long low note under two short high ones: the low one resurfaces when they stop
    path = build_midi(tmp_path / "m.mid", [[(48, 0, 4 * Q, 0)], [(72, 0, Q, 1), (71, 2 * Q, 3 * Q, 1)]])
    assert read_one(path) == ["n72_d4", "n48_d4", "n71_d4", "n48_d4", "<END>"]


def test_melody_from_a_named_track_or_channel(tmp_path):
    path = build_midi(tmp_path / "m.mid", [[], [(72, 0, Q, 0)], [(60, 0, Q, 3), (64, Q, 2 * Q, 4)]])
    assert read_one(path, track=2) == ["n60_d4", "n64_d4", "<END>"]
    assert read_one(path, channel=5) == ["r_d4", "n64_d4", "<END>"]
    with pytest.raises(CorpusError, match=r"m.mid: no notes in track 0"):
        read_one(path, track=0)
    with pytest.raises(CorpusError, match=r"m.mid: no track 7 \(the file has 3\)"):
        read_one(path, track=7)


def test_long_notes_and_rests_are_split(tmp_path):
    path = build_midi(tmp_path / "m.mid", [[(60, 0, 5 * Q, 0), (62, 8 * Q, 9 * Q, 0)]])
    assert read_one(path, max_quarters=2) == ["n60_d8", "n60_d8", "n60_d4", "r_d8", "r_d4", "n62_d4", "<END>"]


def test_drum_channel_is_excluded_by_default(tmp_path):
    path = build_midi(tmp_path / "m.mid", [[(60, 0, Q, 0), (36, 0, Q, 9), (38, Q, 2 * Q, 9)]])
    assert read_one(path) == ["n60_d4", "<END>"]
    assert read_one(path, include_drums=True) == ["n60_d4", "n38_d4", "<END>"]
    assert read_one(path, channel=10) == ["n36_d4", "n38_d4", "<END>"]
    drums = build_midi(tmp_path / "d.mid", [[(36, 0, Q, 9)]])
    with pytest.raises(CorpusError, match=r"d.mid: no notes \(drum channel 10 excluded\)"):
        read_one(drums)


def test_note_off_messages_and_velocity_zero_are_both_releases(tmp_path):
    track = mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=90, time=0),
        mido.Message("note_off", note=60, velocity=40, time=Q),
        mido.Message("note_on", note=62, velocity=90, time=0),
        mido.Message("note_on", note=62, velocity=0, time=Q),
    ])
    mid = mido.MidiFile(type=0, ticks_per_beat=Q)
    mid.tracks.append(track)
    mid.save(tmp_path / "m.mid")
    assert read_one(tmp_path / "m.mid") == ["n60_d4", "n62_d4", "<END>"]


def test_running_status(tmp_path):
    """A type 0 file written by hand in which the note events after the first use running
    status (no repeated 0x90 status byte)."""
    events = bytes([0x00, 0x90, 60, 100,  # note on
                    0x60, 60, 0,          # +96 ticks, running status: note 60 velocity 0
                    0x00, 64, 100,
                    0x81, 0x40, 64, 0,    # +192 ticks
                    0x00, 0xFF, 0x2F, 0x00])
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + b"MTrk" + struct.pack(">I", len(events)) + events
    (tmp_path / "rs.mid").write_bytes(data)
    assert read_one(tmp_path / "rs.mid") == ["n60_d4", "n64_d8", "<END>"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tpb=st.sampled_from([24, 96, 120, 384, 480, 960, 1001]), tempo=st.integers(200_000, 2_000_000),
       type_=st.sampled_from([0, 1]))
def test_any_ticks_per_beat_tempo_and_type_give_the_same_tokens(tmp_path, tpb, tempo, type_):
    scale = tpb / Q
    notes = [(60, 0, Q, 0), (67, Q, 3 * Q, 0), (64, 3 * Q, 3 * Q + S, 1)]
    tracks = [[(p, round(s * scale), round(e * scale), c) for p, s, e, c in notes]]
    path = build_midi(tmp_path / "m.mid", tracks if type_ == 0 else [[], *tracks], tpb, type_, tempo)
    assert read_one(path) == ["n60_d4", "n67_d8", "n64_d1", "<END>"]


def test_quantisation_to_the_grid(tmp_path):
    # onsets 10 ticks early/late, a 30-tick grace note (still one step)
    path = build_midi(tmp_path / "m.mid", [[(60, 10, Q - 10, 0), (62, Q - 10, Q + 20, 0), (64, 2 * Q, 2 * Q + 30, 0)]])
    assert read_one(path, steps_per_quarter=4) == ["n60_d4", "n62_d1", "r_d3", "n64_d1", "<END>"]
    assert read_one(path, steps_per_quarter=1) == ["n60_d1", "n62_d1", "n64_d1", "<END>"]


def test_poly_lists_sounding_notes_ascending_then_step(tmp_path):
    tracks = [[(64, 0, 2 * S, 0), (60, 0, 3 * S, 0)], [(67, S, 2 * S, 1), (64, 2 * S, 3 * S, 2)]]
    path = build_midi(tmp_path / "p.mid", tracks)
    assert read_one(path, encoding="poly") == [
        "p60", "p64", "<STEP>",
        "h60", "h64", "p67", "<STEP>",
        "h60", "p64", "<STEP>",  # 64 struck again
        "<END>",
    ]


def test_poly_vocab_has_specials_first(tmp_path):
    path = build_midi(tmp_path / "p.mid", [[(64, 0, 2 * S, 0), (60, 0, S, 0)]])
    tok = Midi(encoding="poly")
    tok.fit(tok.read(path))
    assert tok.vocab == ["<END>", "<STEP>", "h64", "p60", "p64"]


def voice():
    """A monophonic line on the 4-steps-per-quarter grid: sorted (start, end, pitch) notes,
    often adjacent and often repeating a pitch (re-strikes)."""
    note = st.tuples(st.integers(0, 3), st.integers(1, 9), st.integers(60, 63))  # gap, length, pitch

    def lay_out(items):
        t, notes = 0, []
        for gap, length, pitch in items:
            notes.append((t + gap, t + gap + length, pitch))
            t += gap + length
        return notes

    return st.lists(note, min_size=1, max_size=10).map(lay_out)


def same_pitch_overlap(notes):
    return any(a[2] == b[2] and a[0] < b[1] and b[0] < a[1] for i, a in enumerate(notes) for b in notes[i + 1:])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), encoding=st.sampled_from(["melody", "poly"]), tpb=st.sampled_from([96, 480, 1000]))
def test_read_write_read_keeps_the_notes(tmp_path, data, encoding, tpb):
    voices = data.draw(st.lists(voice(), min_size=1, max_size=1 if encoding == "melody" else 3))
    step = tpb / 4
    tracks = [[(p, round(s * step), round(e * step), i) for s, e, p in v] for i, v in enumerate(voices)]
    src = build_midi(tmp_path / "src.mid", tracks, tpb)
    tok = Midi(encoding=encoding)
    docs = tok.read(src)
    tok.fit(docs)
    out = tmp_path / "out.mid"
    tok.write(tok.encode(docs[0]), out, ticks_per_beat=tpb)
    assert tok.read(out) == docs
    notes = {n for v in voices for n in v}
    if not same_pitch_overlap(sorted(notes)):  # overlapping unisons merge on the grid
        assert notes_in(out) == notes


def test_poly_overlapping_unison_is_struck_again(tmp_path):
    path = build_midi(tmp_path / "u.mid", [[(60, 0, 4 * S, 0)], [(60, 2 * S, 3 * S, 1)]])
    tokens = read_one(path, encoding="poly")
    assert tokens == ["p60", "<STEP>", "h60", "<STEP>", "p60", "<STEP>", "h60", "<STEP>", "<END>"]
    Midi(encoding="poly").write(tokens, tmp_path / "o.mid")
    assert notes_in(tmp_path / "o.mid") == {(0, 2, 60), (2, 4, 60)}


def test_melody_write_is_the_skyline(tmp_path):
    tok = Midi()
    tok.write(["n60_d4", "r_d2", "n72_d2", "<END>", "n50_d4"], tmp_path / "o.mid")
    assert notes_in(tmp_path / "o.mid") == {(0, 4, 60), (6, 8, 72)}


def test_write_options_produce_a_playable_file(tmp_path):
    tok = Midi()
    tok.write(["n60_d4", "n62_d2"], tmp_path / "o.mid", tempo=90, program=40, velocity=100, ticks_per_beat=96)
    mid = mido.MidiFile(tmp_path / "o.mid")
    assert mid.ticks_per_beat == 96 and len(mid.tracks) == 1
    msgs = list(mid.tracks[0])
    assert [m.tempo for m in msgs if m.type == "set_tempo"] == [mido.bpm2tempo(90)]
    assert [m.program for m in msgs if m.type == "program_change"] == [40]
    assert {m.velocity for m in msgs if m.type == "note_on"} == {100}
    assert msgs[-1].type == "end_of_track"
    assert abs(mid.length - 6 * 60 / 90 / 4) < 1e-6


@pytest.mark.parametrize("options, match", [
    ({"program": 128}, "program"), ({"velocity": 0}, "velocity"), ({"tempo": "fast"}, "tempo"),
    ({"ticks_per_beat": 2}, "at least steps_per_quarter"), ({"volume": 3}, r"valid: program, tempo"),
])
def test_bad_write_options(tmp_path, options, match):
    with pytest.raises(ConfigError, match=match):
        Midi().write(["n60_d4"], tmp_path / "o.mid", **options)


def test_malformed_melody_is_repaired(tmp_path):
    with pytest.warns(UserWarning, match="skipped 5 token"):
        Midi().write(["<STEP>", "n60_d4", "n200_d2", "n61_d0", "garbage", "p64", "r_d1", "n62_d1"], tmp_path / "o.mid")
    assert notes_in(tmp_path / "o.mid") == {(0, 4, 60), (5, 6, 62)}


def test_malformed_poly_is_repaired(tmp_path):
    tokens = ["h60", "p64", "p64", "<STEP>",  # 60 held without being struck: starts here
              "h60", "n62_d4", "<STEP>",      # stray melody token
              "<STEP>",
              "p67", "h67"]                   # no final <STEP>, never released
    with pytest.warns(UserWarning, match="skipped 1 token"):
        Midi(encoding="poly").write(tokens, tmp_path / "o.mid")
    assert notes_in(tmp_path / "o.mid") == {(0, 2, 60), (0, 1, 64), (3, 4, 67)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(st.sampled_from(
    ["<END>", "<STEP>", "<UNK>", "p60", "h60", "p61", "h61", "n60_d3", "r_d2", "n127_d1", "p0", "x", ""])),
    encoding=st.sampled_from(["melody", "poly"]))
def test_any_sampled_sequence_writes_a_valid_file(tmp_path, tokens, encoding):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Midi(encoding=encoding).write(tokens, tmp_path / "o.mid")
    notes_in(tmp_path / "o.mid")  # parses, and every note is released


def test_ids_and_tokens_and_dict_round_trip(tmp_path):
    path = build_midi(tmp_path / "m.mid", [[(60, 0, Q, 0), (64, Q, 2 * Q, 0)]])
    tok = Midi(encoding="poly", steps_per_quarter=2)
    tok.fit(tok.read(path))
    again = Midi.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.vocab == tok.vocab and again.config == tok.config
    ids = tok.encode(tok.read(path)[0])
    assert ids.dtype == np.int32
    assert again.decode(ids) == tok.read(path)[0]


def test_prime_from_file_and_text(tmp_path):
    path = build_midi(tmp_path / "m.mid", [[(60, 0, Q, 0)]])
    tok = Midi()
    assert tok.read_prime(path) == ["n60_d4"]
    assert tok.parse_prime(" n60_d4  r_d2\n") == ["n60_d4", "r_d2"]
    assert tok.render(["n60_d4", "r_d2"]) == "n60_d4 r_d2"


def valid_bytes(tmp_path):
    return build_midi(tmp_path / "ok.mid", [[(60, 0, Q, 0), (62, Q, 2 * Q, 0)]]).read_bytes()


@pytest.mark.parametrize("make, problem", [
    (lambda ok: ok[:30], "truncated"),
    (lambda ok: ok[:10], "truncated"),
    (lambda ok: b"", "truncated"),
    (lambda ok: b"this is not a midi file at all", "MThd not found"),
    (lambda ok: ok[:14] + b"MTrx" + ok[18:], "0 of the 1 MTrk"),
])
def test_corrupt_files_are_a_one_line_corpus_error(tmp_path, make, problem):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(make(valid_bytes(tmp_path)))
    with pytest.raises(CorpusError, match=rf"^{bad}: not a valid MIDI file \(.*{problem}") as info:
        Midi().read(bad)
    assert "\n" not in str(info.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_never_crash(tmp_path, data):
    ok = valid_bytes(tmp_path)
    raw = bytearray(ok[: data.draw(st.integers(0, len(ok)))])
    for _ in range(data.draw(st.integers(0, 4))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    (tmp_path / "f.mid").write_bytes(bytes(raw))
    try:
        Midi(encoding=data.draw(st.sampled_from(["melody", "poly"]))).read(tmp_path / "f.mid")
    except CorpusError as e:
        assert str(e).startswith(str(tmp_path / "f.mid"))


def test_file_with_no_notes(tmp_path):
    path = build_midi(tmp_path / "empty.mid", [[], []])
    with pytest.raises(CorpusError, match=r"empty.mid: no notes"):
        Midi().read(path)


def test_type_2_is_rejected(tmp_path):
    path = build_midi(tmp_path / "t2.mid", [[(60, 0, Q, 0)]], type=2)
    with pytest.raises(CorpusError, match="t2.mid: MIDI type 2"):
        Midi().read(path)


def test_directory_skips_bad_files_and_counts_them(tmp_path):
    build_midi(tmp_path / "a.mid", [[(60, 0, Q, 0)]])
    (tmp_path / "b.mid").write_bytes(b"MThd\x00")
    build_midi(tmp_path / "c.MIDI", [[(36, 0, Q, 9)]])
    (tmp_path / "notes.txt").write_text("not a candidate")
    with pytest.warns(UserWarning) as record:
        docs = Midi().read(tmp_path)
    assert docs == [["n60_d4", "<END>"]]
    messages = [str(w.message) for w in record]
    assert any("b.mid: not a valid MIDI file" in m for m in messages)
    assert any("c.MIDI: no notes" in m for m in messages)
    assert any("skipped 2 of 3 files" in m for m in messages)


def test_directory_with_no_usable_midi_fails(tmp_path):
    (tmp_path / "b.mid").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(CorpusError, match=r"no usable files \(1 skipped\)"):
        Midi().read(tmp_path)
    (tmp_path / "b.mid").unlink()
    with pytest.raises(CorpusError, match=r"no \.mid or \.midi files"):
        Midi().read(tmp_path)


def test_bad_options():
    with pytest.raises(ConfigError, match="encoding"):
        Midi(encoding="chords")
    with pytest.raises(ConfigError, match="channel"):
        Midi(channel=17)


# -- hostile files: bounds, the reader, special files -------------------------------------------


def vlq(n):
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def on(pitch, delta=0):
    return vlq(delta) + bytes([0x90, pitch, 100])


def off(pitch, delta=0):
    return vlq(delta) + bytes([0x80, pitch, 0])


def eot(delta=0):
    return vlq(delta) + b"\xff\x2f\x00"


def smf(*bodies, fmt=1, tpb=Q):
    """The bytes of a MIDI file with these track bodies (raw event bytes)."""
    data = b"MThd" + struct.pack(">IHHH", 6, fmt, len(bodies), tpb)
    return data + b"".join(b"MTrk" + struct.pack(">I", len(body)) + body for body in bodies)


def test_meta_events_mido_cannot_decode_do_not_matter(tmp_path):
    """A key signature of 20 sharps made mido raise KeySignatureError (a traceback); only notes
    matter to the tokenizer, so the file reads."""
    path = tmp_path / "key.mid"
    path.write_bytes(smf(b"\x00\xff\x59\x02\x14\x00" + on(60) + off(60, Q) + eot()))
    with pytest.raises(mido.midifiles.meta.KeySignatureError):
        mido.MidiFile(path)
    assert read_one(path) == ["n60_d4", "<END>"]
    assert read_one(path, encoding="poly") == ["p60", "<STEP>", "h60", "<STEP>", "h60", "<STEP>", "h60", "<STEP>",
                                               "<END>"]


@pytest.mark.parametrize("make, problem", [
    (lambda: smf(on(60) + off(60, Q) + eot())[:-3], "truncated: a chunk of 13 bytes with 10 left"),
    (lambda: smf(on(60) + off(60, Q))[:18] + struct.pack(">I", 3) + (on(60) + off(60, Q)), "event cut off"),
    (lambda: smf(on(60) + b"\x00\xff\x01\x7f" + b"abc" + off(60, Q)), "event of 127 bytes runs past the end"),
    (lambda: smf(on(60) + vlq(0) + b"\x90\x80\x00"), "data byte above 127"),
    (lambda: smf(b"\x80\x80\x80\x80\x00" + b"\x90\x3c\x64"), "delta-time longer than 4 bytes"),
    (lambda: smf(b"\x00\x3c\x64"), "running status without a status byte"),
    (lambda: smf(on(60) + b"\x00\xf4"), "undefined status byte 0xf4"),
    (lambda: smf(on(60), on(62))[:26].replace(b"MTrk", b"MTrx"), "0 of the 2 MTrk"),  # MTrx skipped
    (lambda: b"MThd" + struct.pack(">IHHH", 6, 7, 1, Q), "unknown format 7"),
    (lambda: b"MThd" + struct.pack(">IHH", 4, 0, 1) + b"MTrk\0\0\0\0", "header chunk of 4 bytes"),
])
def test_corrupt_lengths_and_bytes_are_one_line(tmp_path, make, problem):
    path = tmp_path / "bad.mid"
    path.write_bytes(make())
    with pytest.raises(CorpusError, match=rf"^{path}: not a valid MIDI file \(.*{re.escape(problem)}") as info:
        Midi().read(path)
    assert "\n" not in str(info.value)


def test_unknown_chunks_and_system_messages_are_skipped(tmp_path):
    path = tmp_path / "x.mid"
    body = on(60) + b"\x00\xf2\x01\x02" + b"\x00\xf0\x03\x43\x12\xf7" + off(60, Q) + eot()
    data = smf(body)
    path.write_bytes(data[:14] + b"XFIH" + struct.pack(">I", 3) + b"abc" + data[14:])
    assert read_one(path) == ["n60_d4", "<END>"]


def test_a_huge_delta_time_is_refused_before_the_grid(tmp_path):
    """A note 2**28 - 1 ticks away (the largest delta-time, 2.2 million grid steps): refused
    from its tick, nothing laid out (the old reader built the grid, up to gigabytes)."""
    path = tmp_path / "far.mid"
    path.write_bytes(smf(on(60) + off(60, Q) + on(62, (1 << 28) - 1) + off(62, Q) + eot()))
    for encoding in ("melody", "poly"):
        tracemalloc.start()
        try:
            with pytest.raises(CorpusError, match=rf"^{path}: notes reach grid step 2236970, beyond max_steps 100000"):
                Midi(encoding=encoding).read(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20


def test_max_steps_is_an_option(tmp_path):
    path = tmp_path / "long.mid"
    path.write_bytes(smf(on(60) + off(60, Q) + on(62, 30_000 * Q) + off(62, Q) + eot()))  # ends at step 120008
    with pytest.raises(CorpusError, match="beyond max_steps 100000"):
        read_one(path)
    tokens = read_one(path, max_steps=120_008)
    assert tokens[0] == "n60_d4" and tokens[-2:] == ["n62_d4", "<END>"]
    assert tokens[1:-2] == ["r_d32"] * 3750  # 120000 steps of rest, in tokens of 8 quarters
    with pytest.raises(CorpusError, match="beyond max_steps 120007"):
        read_one(path, max_steps=120_007)
    with pytest.raises(ConfigError, match="max_steps"):
        Midi(max_steps=0)


def test_notes_held_too_long_are_cut_with_a_warning(tmp_path):
    """64 notes never released, the end of the track 2,000 quarters away: each is cut to
    max_note_quarters (64 quarters = 256 steps) with one warning, not held to the end."""
    path = tmp_path / "stuck.mid"
    path.write_bytes(smf(b"".join(on(30 + i) for i in range(64)) + eot(2000 * Q)))
    with pytest.warns(UserWarning, match=rf"{path}: 64 note\(s\) held over 64 quarters cut to 64"):
        tokens = read_one(path, encoding="poly")
    assert len(tokens) == 64 * 256 + 256 + 1
    assert tokens[:65] == [f"p{30 + i}" for i in range(64)] + ["<STEP>"]
    with pytest.warns(UserWarning, match="3 note"):
        short = build_midi(tmp_path / "s.mid", [[(60, 0, 5 * Q, 0), (62, 0, 3 * Q, 0), (64, 0, 9 * Q, 0)]])
        assert read_one(short, max_note_quarters=2) == ["n64_d8", "<END>"]
    assert read_one(short, max_note_quarters=9) == ["n64_d32", "n64_d4", "<END>"]  # not cut: no warning


def test_memory_follows_the_tokens_not_the_grid(tmp_path):
    """Two notes 900,000 steps apart: the melody is 28,000 rest tokens, the old per-step grid
    held 900,000 entries. Poly: 900,000 <STEP> tokens, about 8 bytes each in the list."""
    path = tmp_path / "sparse.mid"
    path.write_bytes(smf(on(60) + off(60, S) + on(62, 900_000 * S) + off(62, S) + eot()))
    for encoding, most in (("melody", 1 << 20), ("poly", 64 * 900_000)):
        tracemalloc.start()
        try:
            tokens = read_one(path, encoding=encoding, max_steps=10**6)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(tokens) == (28_128 if encoding == "melody" else 900_005) and peak < most, peak


def skyline_per_step(notes, cap):
    """The definition, step by step (the tokenizer's first implementation): the oracle."""
    top = [None] * max(n[1] for n in notes)
    for note in notes:
        for s in range(note[0], note[1]):
            if top[s] is None or (note[2], note[0]) > (top[s][2], top[s][0]):
                top[s] = note
    tokens, s = [], 0
    while s < len(top):
        e = s + 1
        while e < len(top) and top[e] is top[s]:
            e += 1
        head = "r" if top[s] is None else f"n{top[s][2]}"
        tokens += [f"{head}_d{min(cap, e - start)}" for start in range(s, e, cap)]
        s = e
    return tokens


def poly_per_step(notes):
    cells = [{} for _ in range(max(n[1] for n in notes))]
    for start, end, pitch in notes:
        cells[start][pitch] = "p"
        for s in range(start + 1, end):
            cells[s].setdefault(pitch, "h")
    return [tok for cell in cells for tok in [f"{cell[p]}{p}" for p in sorted(cell)] + ["<STEP>"]]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(notes=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 12), st.integers(58, 64)), min_size=1, max_size=25),
       cap=st.integers(1, 9))
def test_sweeps_match_the_step_by_step_definition(notes, cap):
    from seqgen_plugins import midi

    rows = sorted({(s, s + length, p) for s, length, p in notes})
    grid = np.array(rows, dtype=np.int64)
    assert midi._melody_tokens(grid, cap) == skyline_per_step([tuple(r) for r in rows], cap)
    for dense in (0, 10**9):  # poly laid out on a dense grid, and flat
        with mock.patch.object(midi, "DENSE_POLY", dense):
            assert midi._poly_tokens(grid) == poly_per_step(rows)


def test_every_chorale_reads_with_the_default_bounds():
    files = sorted((CORPUS).rglob("*.mid"))
    assert len(files) == 764
    for encoding in ("melody", "poly"):
        tok = Midi(encoding=encoding)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no file skipped, no note cut
            docs = tok.read(CORPUS)
        assert len(docs) == 764


def test_make_chorales_writes_the_shipped_files_byte_for_byte(tmp_path):
    """make_chorales.py (through the shared writer) reproduces corpora/jsb-chorales: the SATB
    steps are recovered from the shipped four-track files and written again."""
    spec = importlib.util.spec_from_file_location("make_chorales", CORPUS.parent / "make_chorales.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for split, name in (("train", "000.mid"), ("valid", "017.mid"), ("test", "076.mid")):
        satb = CORPUS / "satb" / split / name
        mid = mido.MidiFile(satb)
        steps = [[-1] * 4 for _ in range(640)]
        for v, track in enumerate(mid.tracks):
            tick, sounding = 0, {}
            for msg in track:
                tick += msg.time
                if msg.type == "note_on":
                    sounding[msg.note] = tick
                elif msg.type == "note_off":
                    for s in range(sounding.pop(msg.note) // make.TICKS_PER_STEP, tick // make.TICKS_PER_STEP):
                        steps[s][v] = msg.note
        steps = steps[: max(i for i, chord in enumerate(steps) if chord != [-1] * 4) + 1]
        make.write(tmp_path / "satb.mid", [0, 1, 2, 3], steps)
        make.write(tmp_path / "melody.mid", [0], steps)
        assert (tmp_path / "satb.mid").read_bytes() == satb.read_bytes()
        assert (tmp_path / "melody.mid").read_bytes() == (CORPUS / "melody" / split / name).read_bytes()


def test_prime_write_options_carry_the_primer_tempo(tmp_path):
    path = build_midi(tmp_path / "p.mid", [[(60, 0, Q, 0)]], tempo=mido.bpm2tempo(100))
    tok = Midi()
    options = tok.prime_write_options(path)
    assert options == {"tempo": 100.0}
    tok.write(tok.read_prime(path), tmp_path / "out.mid", **options)
    assert [m.tempo for m in mido.MidiFile(tmp_path / "out.mid").tracks[0] if m.type == "set_tempo"] == [600000]
    assert get_tokenizer("chars")().prime_write_options(path) == {}  # the base class: none


def test_prime_tempo_is_the_earliest_and_kept_in_range(tmp_path):
    def tempo(us, delta=0):
        return vlq(delta) + b"\xff\x51\x03" + us.to_bytes(3, "big")

    note = on(60) + off(60, Q) + eot()
    (tmp_path / "a.mid").write_bytes(smf(tempo(400_000, Q) + eot(), tempo(750_000) + note))
    assert Midi().prime_write_options(tmp_path / "a.mid") == {"tempo": 80.0}  # at tick 0, in track 1: first
    (tmp_path / "b.mid").write_bytes(smf(tempo(1) + note))
    assert Midi().prime_write_options(tmp_path / "b.mid") == {"tempo": 1000.0}  # 60 million bpm: the maximum
    (tmp_path / "c.mid").write_bytes(smf(tempo(0) + note))
    assert Midi().prime_write_options(tmp_path / "c.mid") == {}  # 0 us per quarter: no tempo
    (tmp_path / "d.mid").write_bytes(smf(note))
    assert Midi().prime_write_options(tmp_path / "d.mid") == {}
    (tmp_path / "e.mid").write_bytes(b"junk")
    with pytest.raises(CorpusError, match="e.mid: not a valid MIDI file"):
        Midi().prime_write_options(tmp_path / "e.mid")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_before_it_is_read(tmp_path):
    """A FIFO as corpus or primer: refused at once (reading it waited for a writer forever)."""
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    for call in (Midi().read_prime, Midi().read_file, Midi().prime_write_options):
        error = call_unblocked(call, fifo, fifo=fifo)
        assert isinstance(error, CorpusError) and str(error) == f"{fifo}: a FIFO (named pipe), not a regular file"
    error = call_unblocked(Midi().read, fifo, fifo=fifo)
    assert isinstance(error, CorpusError) and "FIFO" in str(error)


@pytest.mark.parametrize("target, kind", [("/dev/zero", "a character device"), (".", "a directory")])
def test_devices_and_directories_are_refused_as_primers(tmp_path, target, kind):
    path = tmp_path if target == "." else target
    for tok in (Midi(), get_tokenizer("chars")()):
        error = call_unblocked(tok.read_prime, path)  # /dev/zero: read until memory ran out
        assert isinstance(error, CorpusError) and str(error) == f"{path}: {kind}, not a regular file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_directory_with_bad_files_reads_the_good_ones(tmp_path):
    """One good file, one mido could not read (key signature), one too long, one corrupt, a
    FIFO: the two readable ones are documents, each other one a warning naming it."""
    build_midi(tmp_path / "a.mid", [[(60, 0, Q, 0)]])
    (tmp_path / "b.mid").write_bytes(smf(b"\x00\xff\x59\x02\x14\x00" + on(62) + off(62, Q) + eot()))
    (tmp_path / "c.mid").write_bytes(smf(on(60) + off(60, Q) + on(62, (1 << 28) - 1) + off(62, Q) + eot()))
    (tmp_path / "d.mid").write_bytes(smf(on(60) + off(60, Q) + eot())[:-2])
    os.mkfifo(tmp_path / "e.mid")
    with pytest.warns(UserWarning) as record:
        docs = call_unblocked(Midi().read, tmp_path, fifo=tmp_path / "e.mid")
    assert docs == [["n60_d4", "<END>"], ["n62_d4", "<END>"]]
    messages = [str(w.message) for w in record]
    assert any(m.startswith(f"skipping {tmp_path / 'e.mid'}: a FIFO") for m in messages), messages
    assert any(m.startswith(f"skipping {tmp_path / 'c.mid'}: notes reach grid step") for m in messages), messages
    assert any(m.startswith(f"skipping {tmp_path / 'd.mid'}: not a valid MIDI file (truncated") for m in messages)
    assert f"{tmp_path}: skipped 2 of 4 files" in messages
