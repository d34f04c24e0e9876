"""Shared fixtures: MIDI files (written by the midi plugin's one writer), and a CLI runner."""

import pytest
from click.testing import CliRunner

from seqgen_plugins import midi


def build_midi(path, tracks, ticks_per_beat=480, type=1, tempo=500000):
    """Write a MIDI file. tracks: lists of (pitch, start tick, end tick, channel 0-15) notes;
    the first track also gets a set_tempo (microseconds per quarter). Note-ons have velocity
    64; releases are note_off messages (tests that need velocity-0 note-ons build them by hand)."""
    return midi.write_midi(path, tracks, ticks_per_beat=ticks_per_beat, type=type, tempo=tempo, velocity=64)


@pytest.fixture
def write_midi():
    return build_midi


@pytest.fixture
def cli_run():
    """Run the seqgen CLI in-process: cli_run(*args) -> click Result."""
    from seqgen.cli import cli

    runner = CliRunner()
    return lambda *args: runner.invoke(cli, [str(a) for a in args])
