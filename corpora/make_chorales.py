"""Turn the JSB Chorales data set (Jsb16thSeparated.json: four SATB pitches per 16th-note step,
-1 for silence) into .mid files, keeping its train/valid/test split:

    python corpora/make_chorales.py ../shared/corpora/jsb-chorales/Jsb16thSeparated.json corpora/jsb-chorales

writes ``melody/{train,valid,test}/NNN.mid`` (the soprano line) and ``satb/{split}/NNN.mid``
(all four voices, one track each). The data set does not tell held notes from repeated ones;
consecutive equal pitches in a voice become one held note. 4 steps per quarter, 100 bpm.
"""

import json
import sys
from pathlib import Path

import mido

TICKS_PER_BEAT = 480
TICKS_PER_STEP = TICKS_PER_BEAT // 4
VOICES = ("soprano", "alto", "tenor", "bass")


def voice_notes(steps, voice):
    """[(pitch, start step, end step)] of one voice; equal consecutive pitches are held."""
    notes, current, start = [], -1, 0
    for t, chord in enumerate(list(steps) + [[-1] * 4]):
        pitch = int(chord[voice])
        if pitch != current:
            if current >= 0:
                notes.append((current, start, t))
            current, start = pitch, t
    return notes


def track(notes, name, channel, tempo=None):
    events = sorted([(s * TICKS_PER_STEP, 1, p) for p, s, _ in notes]
                    + [(e * TICKS_PER_STEP, 0, p) for p, _, e in notes])
    msgs = [mido.MetaMessage("track_name", name=name, time=0)]
    if tempo:
        msgs.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0))
    now = 0
    for tick, on, pitch in events:  # note-offs sort before note-ons at the same tick
        kind = "note_on" if on else "note_off"
        msgs.append(mido.Message(kind, note=pitch, velocity=80 if on else 0, channel=channel, time=tick - now))
        now = tick
    msgs.append(mido.MetaMessage("end_of_track", time=0))
    return mido.MidiTrack(msgs)


def write(path, voices, steps):
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    for i, v in enumerate(voices):
        mid.tracks.append(track(voice_notes(steps, v), VOICES[v], channel=i, tempo=100 if i == 0 else None))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)


def main(source, target):
    data = json.loads(Path(source).read_text())
    for split in ("train", "valid", "test"):
        for i, steps in enumerate(data[split]):
            write(Path(target) / "melody" / split / f"{i:03d}.mid", [0], steps)
            write(Path(target) / "satb" / split / f"{i:03d}.mid", [0, 1, 2, 3], steps)


if __name__ == "__main__":
    main(*sys.argv[1:3])
