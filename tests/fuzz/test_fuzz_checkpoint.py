"""Seeded mutation fuzzing of the checkpoint loader (bounded: a few hundred cases, ~10 s).
The long run is benchmarks/fuzz_checkpoints.py."""

import collections
import importlib.util
import random
import tracemalloc
from pathlib import Path

import pytest

from seqgen.errors import CheckpointError
from seqgen.storage import checkpoint, shipped

_spec = importlib.util.spec_from_file_location("checkpoint_cases", Path(__file__).with_name("checkpoint_cases.py"))
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)

MEMORY_BOUND = 64 << 20  # bytes traced during one load; the largest base checkpoint is 0.9 MB


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Real checkpoints: two shipped ones and a small training checkpoint (optimiser slots, state)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent))
    try:
        from test_checkpoint import train_checkpoint
    finally:
        sys.path.pop(0)
    trained = tmp_path_factory.mktemp("fuzz") / "trained.npz"
    train_checkpoint(trained, "lstm", 2, "adam")
    return [cases.Base.of(p) for p in (shipped.path("dinos"), trained, shipped.path("chorale"))]


def test_every_base_loads(bases):
    for b in bases:
        checkpoint.load(b.name)


def test_mutated_checkpoints_raise_only_checkpoint_error_within_bounded_memory(bases, tmp_path, monkeypatch):
    monkeypatch.setattr(cases, "BOMB_MB", (100,))  # compressed once: ~1 s
    rng = random.Random(20261126)
    outcomes = collections.Counter()
    path = tmp_path / "case.npz"
    tracemalloc.start()
    try:
        for i in range(300):
            base = bases[0] if i % 6 < 3 else bases[1] if i % 6 < 5 else bases[2]
            kind, data = cases.mutate(rng, base, exclude=("zip_bomb",) if i % 40 else ())
            path.write_bytes(data)
            tracemalloc.reset_peak()
            try:
                checkpoint.load(path)
                outcomes["loaded"] += 1
            except CheckpointError as e:
                text = str(e)
                assert text.startswith(f"{path}: ") and "\n" not in text, (kind, text)
                outcomes["refused"] += 1
            peak = tracemalloc.get_traced_memory()[1]
            assert peak < MEMORY_BOUND, (i, kind, peak)
    finally:
        tracemalloc.stop()
    # bit flips in zip fields nobody reads (timestamps, "version made by") may leave a good file
    assert outcomes["refused"] >= 0.85 * sum(outcomes.values()), outcomes


@pytest.mark.parametrize("command", [("info", "{}"), ("sample", "--model", "{}", "--length", "5")])
def test_mutated_checkpoints_through_the_cli_are_one_line_without_traceback(bases, tmp_path, cli_run, command):
    rng = random.Random(len(command))
    path = tmp_path / "case.npz"
    refused = 0
    for i in range(25):
        kind, data = cases.mutate(rng, bases[i % 2], exclude=("zip_bomb",))
        path.write_bytes(data)
        r = cli_run(*[a.format(path) for a in command])
        assert r.exception is None or isinstance(r.exception, SystemExit), (kind, r.output, r.exception)
        if r.exit_code != 0:
            refused += 1
            assert r.exit_code == 1 and "Traceback" not in r.output, (kind, r.output)
            assert len(r.output.strip().splitlines()) == 1 and str(path) in r.output, (kind, r.output)
    assert refused >= 20
