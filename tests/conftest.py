"""Shared fixtures: MIDI files (written by the midi plugin's one writer), and a CLI runner."""

import os

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


def pytest_configure(config):
    """The suite sees only seqgen's own plugins, whatever else is installed: the process-wide
    plugin manager (and every `seqgen` subprocess, which inherits the environment) loads the
    built-in ones only (SEQGEN_PLUGINS=builtin, docs/plugins.md). Set here, before collection,
    because test modules look tokenizers up at import. Tests of third-party plugins build their
    own manager or set SEQGEN_PLUGINS=all themselves."""
    from seqgen.plugins.host import PLUGINS_ENV

    os.environ[PLUGINS_ENV] = "builtin"


def call_unblocked(fn, *args, fifo=None, seconds=10):
    """fn(*args) in a thread -> its result, or the exception it raised. Fails the test if the
    call is still blocked after `seconds` (reading a FIFO waits for a writer): then a writer
    is opened and closed on `fifo` so that the thread ends."""
    import os
    import threading

    outcome = {}

    def run():
        try:
            outcome["result"] = fn(*args)
        except BaseException as e:  # noqa: B036 - handed to the test
            outcome["result"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if fifo is not None:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(seconds)
        pytest.fail(f"{getattr(fn, '__name__', fn)} blocked for {seconds} s")
    return outcome["result"]
