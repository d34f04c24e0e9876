"""What `seqgen sample` loads and compiles, so that it starts fast (timings live in
benchmarks/bench_startup.py; nothing here is timed)."""

import json
import os
import subprocess
import sys

import pytest

# run `seqgen sample` in a fresh interpreter with an empty numba cache, then report what it loaded
PROBE = r"""
import json, sys
from seqgen.cli import cli
cli.main(["sample", "-n", "1", "--seed", "1", "--length", "5"], standalone_mode=False)
from seqgen.kernels import gru, lstm, rnn, sample
print(json.dumps({
    "modules": sorted(sys.modules),
    "kernels": sorted(sample._KERNELS),
    "compiled": {name: len(fn.signatures) for name, fn in [
        ("rnn_gates", rnn.rnn_gates), ("lstm_gates", lstm.lstm_gates), ("gru_gates", gru.gru_gates),
        ("sort", sample._sort_descending)]},
}))
"""

NOT_FOR_SAMPLING = ("scipy.linalg", "matplotlib", "fastapi", "uvicorn", "starlette", "ray", "optuna", "torch",
                    "prometheus_client", "threadpoolctl", "httpx", "seqgen.service", "seqgen.sweep", "seqgen.training",
                    "seqgen.plots")


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path_factory.mktemp("numba-cache"))}
    env.pop("NUMBA_DISABLE_JIT", None)
    r = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_sample_imports_nothing_it_does_not_use(probe):
    loaded = [m for m in probe["modules"] if m.startswith(tuple(p + "." for p in NOT_FOR_SAMPLING))
              or m in NOT_FOR_SAMPLING]
    assert loaded == []
    assert "numba" in probe["modules"] and "seqgen.kernels.sample" in probe["modules"]  # the probe did sample


@pytest.mark.slow
def test_sample_compiles_only_the_models_cell_and_no_top_k_sort(probe):
    # the default model is an LSTM, sampled without top-k/top-p: one kernel variant, one cell's gates
    assert probe["kernels"] == [[1, False, False]]
    assert probe["compiled"] == {"rnn_gates": 0, "lstm_gates": 1, "gru_gates": 0, "sort": 0}
