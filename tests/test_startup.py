"""What `seqgen sample` loads and compiles, so that it starts fast (timings live in
benchmarks/bench_startup.py; nothing here is timed)."""

import json
import os
import subprocess
import sys

import pytest

# run `seqgen sample` in a fresh interpreter with an empty numba cache, then report what it loaded,
# which functions numba compiled on their own, and which it pasted into the sampler kernel (numba
# names an inlined function's variables <function>_v<site>_<name>, one <site> per call site)
PROBE = r"""
import json, re, sys
from numba.core import event
compiled = []

class Compiled(event.Listener):
    def on_start(self, ev):
        fn = ev.data["dispatcher"].py_func
        compiled.append(f"{fn.__module__}.{fn.__qualname__}")

    def on_end(self, ev):
        pass

event.register("numba:compile", Compiled())
from seqgen.cli import cli
cli.main(["sample", "-n", "1", "--seed", "1", "--length", "5"], standalone_mode=False)
from seqgen.kernels import sample
kernel = sample._KERNELS[(1, False, False)]
typemap = next(iter(kernel.overloads.values())).type_annotation.typemap
sites = {}
for name in typemap:
    m = re.match(r"(\w+?)_v(\d+)_", name)
    if m:
        sites.setdefault(m.group(1), set()).add(m.group(2))
print(json.dumps({
    "modules": sorted(sys.modules),
    "kernels": sorted(sample._KERNELS),
    "compiled": sorted(set(compiled)),
    "inlined": {name: len(s) for name, s in sites.items()},
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
def test_sample_compiles_one_kernel_with_only_the_models_cell_and_no_top_k_sort(probe):
    # the default model is an LSTM, sampled without top-k/top-p: one kernel variant, into which
    # numba pastes that cell's gates and not the other cells' nor the sort
    assert probe["kernels"] == [[1, False, False]]
    assert "lstm_gates" in probe["inlined"]
    assert not {"rnn_gates", "gru_gates", "_draw_truncated", "_sort_descending"} & set(probe["inlined"])


@pytest.mark.slow
def test_sample_compiles_nothing_but_the_kernel_and_its_activation(probe):
    # every helper of the kernel is inlined (compiling it on its own, then again inside the kernel,
    # doubled the cold start) except the float32 tanh; no training kernel (lstm_forward, matmul,
    # embed), and no numba library function (np.empty, min, max) is compiled on its own
    seqgen = [name for name in probe["compiled"] if name.startswith("seqgen.")]
    assert "seqgen.kernels.sample._build.<locals>.sample_steps" in seqgen
    assert [name for name in seqgen if not name.startswith(("seqgen.kernels.sample._build.<locals>.sample_steps",
                                                            "seqgen.kernels.activations."))] == []
    assert [name for name in probe["compiled"] if not name.startswith("seqgen.")] == []


@pytest.mark.slow
def test_the_kernel_has_one_copy_of_rows_dot(probe):
    # rows_dot (the four-row, k-by-four unrolled products) is the costliest code for LLVM: the
    # kernel's products go through one call site, not one per product
    assert probe["inlined"].get("rows_dot") == 1
