"""Speed of seqgen's engine against PyTorch: training, single-stream and 64-stream sampling.

Run from the repository root::

    python benchmarks/bench_engine.py                  # full run: rnn/lstm/gru x 128/256/512 x 1,2 layers
    python benchmarks/bench_engine.py --quick          # small, fast run
    python benchmarks/bench_engine.py --cells lstm --hidden 256 --layers 2 --markdown --json out.json
    python benchmarks/bench_engine.py --profile        # also: where seqgen's time goes (simple timers)
    python benchmarks/bench_engine.py --roofline       # also: GFLOP/s of both, against the machine's peak

What is measured, per (cell, hidden H, layers L), batch B=32, window T=64, vocab V=65, float32:

1. training tokens/s (B·T tokens per step): forward + backward + clip by global norm 5 + Adam
   step, on random token windows, carrying the recurrent state from window to window as
   truncated BPTT does (PyTorch: the hidden state is detached between windows);
2. single-stream sampling tokens/s: ``seqgen.generation.sampler.generate(n=1)`` against the PyTorch loop a
   user writes: per token, under ``torch.no_grad()``, one step of the RNN module with the hidden
   state carried, Linear, softmax, ``torch.multinomial``, the sampled token fed back;
3. 64-stream sampling tokens/s (n=64 streams advancing together; tokens counted over all streams).

The PyTorch model (only when torch is importable; it is never a dependency) is
``nn.Embedding(V, E)`` + ``nn.RNN(nonlinearity="tanh")`` / ``nn.LSTM`` / ``nn.GRU`` with
``num_layers=L`` + ``nn.Linear(H, V)``, ``F.cross_entropy``, ``loss.backward()``,
``clip_grad_norm_(5)``, ``torch.optim.Adam``. seqgen's first layer takes one-hot input (its
input projection is a row gather from Wax.T, G·H wide), so the closest PyTorch model uses a small
embedding: E = V by default (``--embed-dim``), which gives nearly the same parameter count and
adds only a V-wide input product on the PyTorch side.

Fairness:

* same process, same data, same shapes and dtype (float32) for both systems;
* the two systems alternate config by config and, inside each config, figure by figure and pass
  by pass (the order flips every pass), so a slow patch of the shared machine hits both;
* warm-up before timing (numba compiles on first call; PyTorch allocators and oneDNN warm up);
  each pass times enough work to last ``--pass-time`` seconds (counts calibrated once per
  system, then fixed), and the reported figure is the median over ``--passes`` passes;
* both use the machine's 2 threads: seqgen trains on its own workers (the batch in two row
  blocks, seqgen.threads; OpenBLAS single-threaded inside them) and samples through OpenBLAS's
  pool (numba's np.dot binds SciPy's OpenBLAS; its size is shown in the header via
  threadpoolctl), PyTorch through its own OpenMP pool (``torch.get_num_threads()`` in the
  header). Neither is pinned or restricted.

The header prints the versions, the BLAS libraries and their architecture (threadpoolctl, if
installed) and the OPENBLAS_* environment: ``OPENBLAS_CORETYPE=Haswell`` caps OpenBLAS at AVX2 on
a CPU with AVX-512 (which PyTorch's kernels use), so run it both ways, e.g. also with
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_engine.py``.
"""

# The profile's timing lambdas are called at once, inside the loop that binds their variables.
# ruff: noqa: B023

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
from machine import cpu_model, matmul_gflops

from seqgen import Model
from seqgen.generation.sampler import generate
from seqgen.training.clip import clip_by_norm
from seqgen.training.optim import Optimizer

try:  # optional: PyTorch is only the yardstick
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

try:  # optional: shows which BLAS and how many threads
    import threadpoolctl
except ImportError:  # pragma: no cover
    threadpoolctl = None

B, T, V = 32, 64, 65
FIGURES = ("train", "sample1", "sample64")
LABELS = {"train": "training", "sample1": "sampling n=1", "sample64": "sampling n=64"}
# the targets seqgen is judged on: minimum seqgen/PyTorch ratio, by figure and hidden size
TARGETS = {
    "train": lambda H: 1.5 if H <= 256 else 1.1,
    "sample1": lambda H: 20.0 if H <= 256 else 10.0,
    "sample64": lambda H: 1.5,
}


# --------------------------------------------------------------------------- the two systems
class SeqgenSystem:
    name = "seqgen"

    def __init__(self, cell, H, L, windows):
        self.model = Model.create(cell, vocab_size=V, hidden_size=H, num_layers=L, seed=0, dtype="float32")
        self.opt = Optimizer("adam", self.model.params, lr=2e-3)
        self.windows = [(w[:-1].astype(np.int32), w[1:].astype(np.int32)) for w in windows]
        self.state = None
        self.k = 0
        self.seed = 0

    def train(self, steps):
        m, opt = self.model, self.opt
        for _ in range(steps):
            x, y = self.windows[self.k % len(self.windows)]
            self.k += 1
            loss, grads, self.state = m.loss_and_grads(x, y, self.state)
            clip_by_norm(grads, 5.0)
            opt.step(m.params, grads)
        return loss

    def sample(self, n, length):
        self.seed += 1
        return generate(self.model, n=n, length=length, prime=[0], seed=self.seed).samples


class TorchSystem:
    name = "torch"

    def __init__(self, cell, H, L, windows, embed_dim):
        torch.manual_seed(0)
        rnn_cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        self.embed = torch.nn.Embedding(V, embed_dim)
        self.rnn = rnn_cls(embed_dim, H, num_layers=L, **kwargs)  # time-major (T, B, .) like seqgen
        self.head = torch.nn.Linear(H, V)
        self.params = [*self.embed.parameters(), *self.rnn.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=2e-3)
        self.windows = [(torch.from_numpy(w[:-1]).long(), torch.from_numpy(w[1:]).long()) for w in windows]
        self.hidden = None
        self.k = 0

    def _detach(self, h):
        if h is None:
            return None
        return tuple(x.detach() for x in h) if isinstance(h, tuple) else h.detach()

    def train(self, steps):
        for _ in range(steps):
            x, y = self.windows[self.k % len(self.windows)]
            self.k += 1
            self.opt.zero_grad(set_to_none=True)
            out, hidden = self.rnn(self.embed(x), self._detach(self.hidden))
            loss = F.cross_entropy(self.head(out).reshape(-1, V), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 5.0)
            self.opt.step()
            self.hidden = hidden
        return loss

    def sample(self, n, length):
        with torch.no_grad():
            x = torch.zeros((1, n), dtype=torch.long)
            hidden = None
            tokens = []
            for _ in range(length):
                out, hidden = self.rnn(self.embed(x), hidden)
                probs = torch.softmax(self.head(out[0]), dim=-1)
                x = torch.multinomial(probs, 1).T  # (1, n): the next input
                tokens.append(x)
            return torch.cat(tokens).T


# --------------------------------------------------------------------------- timing
def run_figure(system, figure, count):
    """Time one pass; returns tokens/s. count: training steps, or tokens per stream."""
    t0 = time.perf_counter()
    if figure == "train":
        system.train(count)
        tokens = count * B * T
    else:
        n = 1 if figure == "sample1" else 64
        system.sample(n, count)
        tokens = count * n
    return tokens / (time.perf_counter() - t0)


def calibrate(system, figure, pass_time):
    """Count per pass so that one pass lasts about pass_time seconds (after warm-up)."""
    if figure == "train":
        system.train(2)  # warm-up (numba compile on the first call)
        t0 = time.perf_counter()
        system.train(2)
        per = (time.perf_counter() - t0) / 2
        return max(1, round(pass_time / per))
    n = 1 if figure == "sample1" else 64
    probe = 200 if n == 1 else 50
    system.sample(n, 20)  # warm-up
    t0 = time.perf_counter()
    system.sample(n, probe)
    per = (time.perf_counter() - t0) / probe
    return max(probe, min(200_000, round(pass_time / per)))


def bench_config(cell, H, L, args):
    rng = np.random.default_rng(1234)
    windows = [rng.integers(0, V, size=(T + 1, B)) for _ in range(8)]
    systems = [SeqgenSystem(cell, H, L, windows)]
    if torch is not None and not args.no_torch:
        systems.append(TorchSystem(cell, H, L, windows, args.embed_dim or V))
    counts = {(s.name, f): calibrate(s, f, args.pass_time) for f in FIGURES for s in systems}
    rates = {key: [] for key in counts}
    for p in range(args.passes):
        for f in FIGURES:
            for s in (systems if p % 2 == 0 else systems[::-1]):
                rates[(s.name, f)].append(run_figure(s, f, counts[(s.name, f)]))
    row = {"cell": cell, "hidden": H, "layers": L}
    for f in FIGURES:
        for s in systems:
            r = rates[(s.name, f)]
            row[f"{f}_{s.name}"] = statistics.median(r)
            row[f"{f}_{s.name}_all"] = r
            row[f"{f}_{s.name}_count"] = counts[(s.name, f)]
        if len(systems) == 2:
            row[f"{f}_ratio"] = row[f"{f}_seqgen"] / row[f"{f}_torch"]
    return row


# --------------------------------------------------------------------------- header


def _git_revision():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "seqgen"], cwd=root, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return f"{rev}{' + uncommitted changes in seqgen/' if dirty else ''}" if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def header():
    import numba
    import scipy

    from seqgen.kernels.linalg import matmul

    a = np.ones((8, 8), dtype=np.float32)
    matmul(a, a, np.empty_like(a))  # load numba's BLAS so threadpoolctl can see it
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine": f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__ if torch is not None else "not installed",
        "seqgen": _git_revision(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
        "OPENBLAS/OMP/MKL_NUM_THREADS": "/".join(os.environ.get(k, "-") for k in (
            "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")),
    }
    if torch is not None:
        info["torch threads"] = torch.get_num_threads()
        info["torch CPU capability"] = torch.backends.cpu.get_cpu_capability()
    if threadpoolctl is not None:
        info["thread pools"] = [
            f"{d['internal_api']} {d.get('version') or ''} arch={d.get('architecture', '-')} "
            f"threads={d['num_threads']} ({os.path.basename(d['filepath'])})"
            for d in threadpoolctl.threadpool_info()]
    else:
        info["thread pools"] = ["(threadpoolctl not installed)"]
    return info


def print_header(info, args):
    print("# seqgen engine benchmark")
    for key, value in info.items():
        if isinstance(value, list):
            print(f"{key}:")
            for v in value:
                print(f"    {v}")
        else:
            print(f"{key}: {value}")
    print(f"B={B} T={T} V={V} float32; passes={args.passes}, ~{args.pass_time}s per timed pass, "
          f"median reported; PyTorch embedding dim E={args.embed_dim or V}")
    print()


# --------------------------------------------------------------------------- output
def _fmt_rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def _fmt_ratio(row, f):
    ratio = row.get(f"{f}_ratio")
    if ratio is None:
        return "-"
    miss = "" if ratio >= TARGETS[f](row["hidden"]) else " !"
    return f"{ratio:.2f}x{miss}"


def table_rows(rows, with_torch):
    head = ["cell", "H", "L"]
    for f in FIGURES:
        head += [f"{LABELS[f]} seqgen"] + ([f"{LABELS[f]} torch", "ratio"] if with_torch else [])
    body = []
    for r in rows:
        line = [r["cell"], str(r["hidden"]), str(r["layers"])]
        for f in FIGURES:
            line.append(_fmt_rate(r[f"{f}_seqgen"]))
            if with_torch:
                line += [_fmt_rate(r[f"{f}_torch"]), _fmt_ratio(r, f)]
        body.append(line)
    return head, body


def print_table(rows, with_torch, markdown):
    head, body = table_rows(rows, with_torch)
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|")
        for line in body:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(head)]
        print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        for line in body:
            print("  ".join(c.rjust(w) for c, w in zip(line, widths)))
    print()
    print("tokens/s, median over passes; ratio = seqgen / PyTorch; '!' = below target "
          "(training 1.5x at H<=256, 1.1x at 512; n=1 sampling 20x / 10x; n=64 sampling 1.5x)"
          if with_torch else "tokens/s, median over passes (PyTorch not available)")


# --------------------------------------------------------------------------- roofline (optional)
def flops_per_token(cell, H, L, figure, system, embed_dim=V):
    """Floating-point operations (2 per multiply-add) of the matrix products per token.

    Forward: every layer's recurrent product (G·H x H) and input product (G·H x H, or for the
    first layer E x G·H on PyTorch's side; seqgen's one-hot input is a row gather), and the output
    layer (V x H). Training adds the backward pass: the gradient of each product's input and of
    its weights, twice the forward (the first layer's input gradient too on PyTorch's side, for
    its embedding). Elementwise work, the softmax and the optimiser are not counted."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    macs = L * G * H * H + (L - 1) * G * H * H + V * H
    if system == "torch":
        macs += embed_dim * G * H
    return 2 * macs * (3 if figure == "train" else 1)


def print_roofline(rows, with_torch, embed_dim):
    rates = matmul_gflops(torch)
    peak = max(rates.values())
    print("## arithmetic: GFLOP/s in the matrix products (seqgen / PyTorch), against this machine's float32 "
          "matrix product (1024 x 1024): " + ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items())
          + f"; peak = the fastest, {peak:.0f} GFLOP/s")
    print("'target needs': seqgen's GFLOP/s at the target ratio (target x PyTorch tokens/s x seqgen's FLOP per "
          "token), as a share of that peak; over 100% means faster than this machine's large square matrix "
          "product, which an RNN step (small products and elementwise work between them) cannot be")
    head = "| cell | H | L |" + "".join(
        f" {LABELS[f]} GFLOP/s seqgen | torch | target needs |" for f in FIGURES)
    print(head)
    print("|---|---|---|" + "---:|---:|---:|" * len(FIGURES))
    for r in rows:
        cells = [r["cell"], str(r["hidden"]), str(r["layers"])]
        for f in FIGURES:
            ours = flops_per_token(r["cell"], r["hidden"], r["layers"], f, "seqgen")
            cells.append(f"{r[f'{f}_seqgen'] * ours / 1e9:.0f}")
            if with_torch:
                theirs = flops_per_token(r["cell"], r["hidden"], r["layers"], f, "torch", embed_dim)
                need = TARGETS[f](r["hidden"]) * r[f"{f}_torch"] * ours / 1e9
                cells += [f"{r[f'{f}_torch'] * theirs / 1e9:.0f}", f"{need / peak:.0%}"]
            else:
                cells += ["-", "-"]
        print("| " + " | ".join(cells) + " |")
    print()
    return rates


# --------------------------------------------------------------------------- profile (optional)
def profile_config(cell, H, L, reps=20):
    """Where seqgen's training and sampling time goes, with simple timers around its pieces.

    The recurrence kernels interleave one small GEMM per step with the elementwise gate math;
    to split them, the same T per-step products (and the same T gate calls) are timed alone."""
    import numba

    from seqgen.engine.cells import CELLS
    from seqgen.generation.sampler import Batch, Params, Weights, primed_state, stream_generators
    from seqgen.kernels import gru as kgru
    from seqgen.kernels import lstm as klstm
    from seqgen.kernels import rnn as krnn
    from seqgen.kernels.loss import embed, softmax_xent
    from seqgen.kernels.sample import rows_dot, sampler_kernel, workspace

    @numba.njit
    def dots_fwd(A, WaaT, za):  # the forward recurrence's per-step products only
        for t in range(A.shape[0] - 1):
            np.dot(A[t], WaaT, za)

    @numba.njit
    def dots_bwd(dZ, Waa, da):  # the backward recurrence's per-step products only
        for t in range(dZ.shape[0] - 1, -1, -1):
            np.dot(dZ[t], Waa, da)

    @numba.njit
    def gates_rnn(Z, za, A):
        for t in range(Z.shape[0]):
            krnn.rnn_gates(Z[t], za, A[t + 1])

    @numba.njit
    def gates_lstm(Z, za, C, TanhC, A):
        for t in range(Z.shape[0]):
            klstm.lstm_gates(Z[t], za, C[t], C[t + 1], TanhC[t], A[t + 1])

    @numba.njit
    def gates_gru(Z, za, bn, A, HN):
        for t in range(Z.shape[0]):
            kgru.gru_gates(Z[t], za, bn, A[t], HN[t], A[t + 1])

    code = CELLS[cell].code

    @numba.njit
    def advance_only(ids, WaxT0, WxT, WaaT, ba, bn, state, z, za, x, scratch, WyaT, logits, K):
        c_next = np.empty_like(scratch)
        for _ in range(K):  # the sampler kernel's step without the choice of tokens
            for l in range(state.shape[0]):
                if l == 0:
                    embed(ids, WaxT0, ba[0], z)
                else:
                    rows_dot(x, WxT[l - 1], z)
                    z += ba[l]
                rows_dot(state[l, 0], WaaT[l], za)
                if code == 0:
                    krnn.rnn_gates(z, za, x)
                elif code == 1:
                    klstm.lstm_gates(z, za, state[l, 1], c_next, scratch, x)
                    state[l, 1] = c_next
                else:
                    kgru.gru_gates(z, za, bn[l], state[l, 0], scratch, x)
                state[l, 0] = x
            rows_dot(x, WyaT, logits)

    @numba.njit
    def sample_dots_only(L, N, WxT, WaaT, WyaT, z, za, x, logits, K):
        for _ in range(K):
            for l in range(L):
                if l > 0:
                    rows_dot(x, WxT[l - 1], z)
                rows_dot(x, WaaT[l], za)
            rows_dot(x, WyaT, logits)

    def timeit(fn, reps=reps):
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)  # best of: the least disturbed run on a shared machine

    rng = np.random.default_rng(0)
    m = Model.create(cell, vocab_size=V, hidden_size=H, num_layers=L, seed=0, dtype="float32")
    opt = Optimizer("adam", m.params, lr=2e-3)
    x = rng.integers(0, V, (T, B)).astype(np.int32)
    y = rng.integers(0, V, (T, B)).astype(np.int32)
    state = m.initial_state(B)
    G = m.config.gates
    out = {}

    # whole step and its parts (model internals: this is a profile, not an API user)
    def step():
        loss, grads, _ = m.loss_and_grads(x, y, state)
        clip_by_norm(grads, 5.0)
        opt.step(m.params, grads)

    out["step"] = timeit(step)
    inputs, targets, st = m._check_window(x, y, state)
    out["forward"] = timeit(lambda: m._forward(inputs, st, None))
    caches, logits, _ = m._forward(inputs, st, None)
    lg = logits.copy()
    out["softmax_xent"] = timeit(lambda: softmax_xent(lg.copy(), targets.reshape(-1))) - timeit(lambda: lg.copy())
    softmax_xent(logits, targets.reshape(-1))
    out["backward"] = timeit(lambda: m._backward(inputs, caches, logits.copy(), None))
    grads = m._backward(inputs, caches, logits.copy(), None)[0]
    out["clip"] = timeit(lambda: clip_by_norm({k: g.copy() for k, g in grads.items()}, 5.0)) - timeit(
        lambda: {k: g.copy() for k, g in grads.items()})
    out["adam"] = timeit(lambda: opt.step(m.params, grads))

    # recurrence kernels: whole kernel, its per-step GEMMs alone, its gate calls alone
    kern = {"rnn": krnn, "lstm": klstm, "gru": kgru}[cell]
    fwd_rec = fwd_dots = fwd_gates = bwd_rec = bwd_dots = 0.0
    p = m.params
    for li in range(L):
        Zf, Af, cell_cache = caches[li][1][0]  # (X, runs): the forward direction's (Z, A, cache)
        Z0 = Zf.copy()  # holds gate activations after forward; speed is value-independent
        A = Af.copy()
        WaaT = p[f"l{li}.Waa"].T
        za = np.empty((B, G * H), np.float32)
        if cell == "rnn":
            fwd_rec += timeit(lambda: kern.rnn_forward(Z0.copy(), A, WaaT, za))
            fwd_gates += timeit(lambda: gates_rnn(Z0.copy(), za, A))
        elif cell == "lstm":
            C, TanhC = (c.copy() for c in cell_cache)
            fwd_rec += timeit(lambda: kern.lstm_forward(Z0.copy(), A, C, TanhC, WaaT, za))
            fwd_gates += timeit(lambda: gates_lstm(Z0.copy(), za, C, TanhC, A))
        else:
            HN = cell_cache[0].copy()
            bn = p[f"l{li}.bn"]
            fwd_rec += timeit(lambda: kern.gru_forward(Z0.copy(), A, HN, WaaT, bn, za))
            fwd_gates += timeit(lambda: gates_gru(Z0.copy(), za, bn, A, HN))
        fwd_gates -= timeit(lambda: Z0.copy())
        fwd_rec -= timeit(lambda: Z0.copy())
        fwd_dots += timeit(lambda: dots_fwd(A, WaaT, za))
        dA = rng.standard_normal((T, B, H)).astype(np.float32) * 0.01
        dZ = np.zeros((T, B, G * H), np.float32)
        da = np.zeros((B, H), np.float32)
        Waa = p[f"l{li}.Waa"]
        if cell == "rnn":
            bwd_rec += timeit(lambda: kern.rnn_backward(dA.copy(), A, Waa, dZ, da))
        elif cell == "lstm":
            bwd_rec += timeit(lambda: kern.lstm_backward(dA.copy(), Zf, C, TanhC, Waa, dZ, da,
                                                          np.zeros((B, H), np.float32)))
        else:
            dZa = np.zeros_like(dZ)
            bwd_rec += timeit(lambda: kern.gru_backward(dA.copy(), Zf, A, HN, Waa, dZ, dZa, da,
                                                         np.empty((B, H), np.float32)))
        bwd_rec -= timeit(lambda: dA.copy())
        bwd_dots += timeit(lambda: dots_bwd(dZ, Waa, da))
    out.update(fwd_recurrence=fwd_rec, fwd_step_gemms=fwd_dots, fwd_gates=fwd_gates,
               bwd_recurrence=bwd_rec, bwd_step_gemms=bwd_dots)
    out["fwd_other"] = out["forward"] - fwd_rec  # embedding, input and output projections
    out["bwd_other"] = out["backward"] - bwd_rec  # weight-gradient GEMMs, dX GEMMs, sums

    # sampling: per token, kernel total vs the cell update + output product vs the GEMMs alone
    samp = {}
    for n in (1, 64):
        K = 2000 if n == 1 else 200
        b = Batch(Weights(m))
        b.add(primed_state(m, [0]), 0, Params(), stream_generators(0, n), 10**9, range(n))
        s = b.w
        u = np.random.default_rng(0).random((n, K))
        used = np.zeros(n, np.int64)
        outk, logpk = np.empty((K, n), np.int32), np.empty((K, n))

        def run_kernel():
            used[:] = 0
            sampler_kernel(s.cell, False, False)(s.WaxT0, s.WxT, s.WaaT, s.ba, s.bn, s.WyaT, s.by, b.state, b.ids, u,
                                                 used, b.inv_temperature, b.top_k, b.top_p, b.greedy, b.stop_id,
                                                 b.done, b.remaining, outk, logpk, *b.rule_args(),
                                                 workspace(s.WaaT, s.WyaT, n))

        GH = G * H
        z, za = np.empty((n, GH), np.float32), np.empty((n, GH), np.float32)
        xx, scr = np.zeros((n, H), np.float32), np.empty((n, H), np.float32)
        lgt = np.empty((n, V), np.float32)
        ids = np.zeros(n, np.int32)
        st2 = b.state.copy()
        total = timeit(run_kernel, 5) / K
        adv = timeit(lambda: advance_only(ids, s.WaxT0, s.WxT, s.WaaT, s.ba, s.bn, st2, z, za, xx, scr,
                                          s.WyaT, lgt, K), 5) / K
        dots = timeit(lambda: sample_dots_only(L, n, s.WxT, s.WaaT, s.WyaT, z, za, xx, lgt, K), 5) / K
        api = timeit(lambda: generate(m, n=n, length=K, prime=[0], seed=0), 5) / K
        samp[n] = {"generate_per_token_step": api, "kernel": total, "advance+output_gemm": adv, "gemms_only": dots}
    out["sampling"] = samp
    return out


def print_profile(cell, H, L, prof):
    us = 1e6
    print(f"## profile {cell} H={H} L={L} (best-of wall time, microseconds)")
    print(f"  training step {prof['step'] * us:9.0f}  = forward {prof['forward'] * us:.0f} + softmax_xent "
          f"{prof['softmax_xent'] * us:.0f} + backward {prof['backward'] * us:.0f} + clip {prof['clip'] * us:.0f} "
          f"+ adam {prof['adam'] * us:.0f} (+ validation/overhead)")
    print(f"    forward:  recurrence {prof['fwd_recurrence'] * us:.0f} (per-step GEMMs alone "
          f"{prof['fwd_step_gemms'] * us:.0f}, gate kernels alone {prof['fwd_gates'] * us:.0f}); "
          f"embedding + input/output projections {prof['fwd_other'] * us:.0f}")
    bwd_elementwise = prof["bwd_recurrence"] - prof["bwd_step_gemms"]
    print(f"    backward: recurrence {prof['bwd_recurrence'] * us:.0f} (per-step GEMMs alone "
          f"{prof['bwd_step_gemms'] * us:.0f}, elementwise ~{bwd_elementwise * us:.0f}); "
          f"weight-gradient and dX GEMMs, bias sums {prof['bwd_other'] * us:.0f}")
    for n, d in prof["sampling"].items():
        print(f"  sampling n={n}: per step {d['generate_per_token_step'] * us:.2f} via generate(), kernel "
              f"{d['kernel'] * us:.2f}, cell update + output GEMM {d['advance+output_gemm'] * us:.2f}, "
              f"GEMMs alone {d['gemms_only'] * us:.2f}")
    print()


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], choices=["rnn", "lstm", "gru"])
    ap.add_argument("--hidden", nargs="+", type=int, default=[128, 256, 512])
    ap.add_argument("--layers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--passes", type=int, default=5, help="timed passes per figure; the median is reported")
    ap.add_argument("--pass-time", type=float, default=0.3, help="seconds of work per timed pass")
    ap.add_argument("--embed-dim", type=int, default=0, help="PyTorch embedding size (default: V)")
    ap.add_argument("--quick", action="store_true", help="small fast run: H=128, 1 layer, 3 short passes")
    ap.add_argument("--no-torch", action="store_true", help="seqgen only, even if torch is installed")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--json", metavar="FILE", help="write header and results as JSON")
    ap.add_argument("--profile", action="store_true", help="also time the parts of seqgen's step and sampler")
    ap.add_argument("--roofline", action="store_true",
                    help="also the GFLOP/s of both systems against this machine's measured matrix-product rate")
    args = ap.parse_args(argv)
    if args.quick:
        args.hidden, args.layers, args.passes, args.pass_time = [128], [1], 3, 0.1

    info = header()
    print_header(info, args)
    with_torch = torch is not None and not args.no_torch
    rows = []
    t_start = time.perf_counter()
    for cell in args.cells:
        for H in args.hidden:
            for L in args.layers:
                row = bench_config(cell, H, L, args)
                rows.append(row)
                parts = []
                for f in FIGURES:
                    s = f"{LABELS[f]} {_fmt_rate(row[f'{f}_seqgen'])}"
                    if with_torch:
                        s += f" vs {_fmt_rate(row[f'{f}_torch'])} ({_fmt_ratio(row, f)})"
                    parts.append(s)
                print(f"{cell:4} H={H:<3} L={L}: " + "; ".join(parts) + f" [load {os.getloadavg()[0]:.1f}]",
                      flush=True)
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n({time.perf_counter() - t_start:.0f} s; load average at end {info['load average at end']})\n")
    print_table(rows, with_torch, args.markdown)

    if args.roofline:
        info["roofline"] = print_roofline(rows, with_torch, args.embed_dim or V)
    profiles = {}
    if args.profile:
        print()
        for cell in args.cells:
            for H in args.hidden:
                for L in args.layers:
                    prof = profile_config(cell, H, L)
                    profiles[f"{cell}-{H}-{L}"] = prof
                    print_profile(cell, H, L, prof)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"header": info, "args": vars(args), "results": rows, "profiles": profiles}, fh, indent=1,
                      default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
