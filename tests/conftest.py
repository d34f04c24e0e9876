"""Shared fixtures: MIDI files built with mido, and a CLI runner."""

import os

import mido
import pytest
from click.testing import CliRunner


def build_midi(path, tracks, ticks_per_beat=480, type=1, tempo=500000):
    """Write a MIDI file. tracks: lists of (pitch, start tick, end tick, channel 0-15) notes;
    the first track also gets a set_tempo. Note-offs are note_on with velocity 0."""
    mid = mido.MidiFile(type=type, ticks_per_beat=ticks_per_beat)
    for i, notes in enumerate(tracks):
        events = [(s, 1, p, c) for p, s, e, c in notes] + [(e, 0, p, c) for p, s, e, c in notes]
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)] if i == 0 else [])
        now = 0
        for tick, on, pitch, channel in sorted(events):
            track.append(mido.Message("note_on", note=pitch, velocity=64 * on, channel=channel, time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(path)
    return path


@pytest.fixture
def write_midi():
    return build_midi


@pytest.fixture
def cli_run():
    """Run the seqgen CLI in-process: cli_run(*args) -> click Result."""
    from seqgen.cli import cli

    runner = CliRunner()
    return lambda *args: runner.invoke(cli, [str(a) for a in args])


def pytest_configure(config):
    """The suite sees only seqgen's own plugins, whatever else is installed: the process-wide
    plugin manager (and every `seqgen` subprocess, which inherits the environment) loads the
    built-in ones only (SEQGEN_PLUGINS=builtin, docs/plugins.md). Set here, before collection,
    because test modules look tokenizers up at import. Tests of third-party plugins build their
    own manager or set SEQGEN_PLUGINS=all themselves."""
    from seqgen.plugins.host import PLUGINS_ENV

    os.environ[PLUGINS_ENV] = "builtin"
