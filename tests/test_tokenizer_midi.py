"""The `midi` tokenizer. Every MIDI file is built here with mido (or by hand, byte by byte)."""

import json
import struct
import warnings

import mido
import numpy as np
import pytest
from conftest import build_midi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqgen.errors import ConfigError, CorpusError
from seqgen.plugins.host import get_tokenizer

Midi = get_tokenizer("midi")
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
