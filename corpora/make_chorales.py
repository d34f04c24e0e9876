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

from seqgen_plugins.midi import write_midi

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


def write(path, voices, steps):
    """One voice per track (channel i), named, 100 bpm; notes at velocity 80."""
    tracks = [
        [(p, s * TICKS_PER_STEP, e * TICKS_PER_STEP, i) for p, s, e in voice_notes(steps, v)]
        for i, v in enumerate(voices)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_midi(path, tracks, ticks_per_beat=TICKS_PER_BEAT, type=1, tempo=mido.bpm2tempo(100),
               names=[VOICES[v] for v in voices], velocity=80)


def main(source, target):
    data = json.loads(Path(source).read_text())
    for split in ("train", "valid", "test"):
        for i, steps in enumerate(data[split]):
            write(Path(target) / "melody" / split / f"{i:03d}.mid", [0], steps)
            write(Path(target) / "satb" / split / f"{i:03d}.mid", [0, 1, 2, 3], steps)


if __name__ == "__main__":
    main(*sys.argv[1:3])
