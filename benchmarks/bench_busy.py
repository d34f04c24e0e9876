"""Training throughput beside a busy neighbour: does seqgen keep its share of a small machine?

Run from the repository root (quiet machine; ~1 minute)::

    flock /work/bench.lock python benchmarks/bench_busy.py
    python benchmarks/bench_busy.py --cell lstm --hidden 128 --seconds 3 --repeats 3 --duty 1 0.33

Each measurement is a fresh process that trains (``Model.backprop`` + clip + Adam, B=32, T=64,
V=65, float32, state carried between windows) for ``--seconds`` after a warm-up and prints its
tokens/s. It runs alone ("idle") and beside a neighbour: one process spinning in a Python loop,
bounded in time, busy for ``duty`` of every 10 ms (1 = a whole core). Idle and busy runs
alternate, ``--repeats`` times, and the medians are reported with busy / idle.

Thread policies compared (the first is seqgen's default):

* ``blocks``: the default. The batch is split into two row blocks that run the whole window on
  seqgen's own threads (passive waiting, one per core), each calling BLAS single-threaded.
* ``one``: ``SEQGEN_THREADS=1``: the blocks one after the other, one thread.
* ``blas-pool``: the previous default, emulated: the whole batch in one pass, every product on
  OpenBLAS's own 2-thread pool (which spins while it waits).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

B, T, V = 32, 64, 65
POLICIES = ("blocks", "one", "blas-pool")


def child(args):
    """Train for args.seconds; print tokens/s."""
    if args.policy == "one":
        os.environ["SEQGEN_THREADS"] = "1"
    import numpy as np

    from seqgen import Model
    from seqgen.kernels.loss import softmax_xent
    from seqgen.threads import limit_threads
    from seqgen.training.clip import clip_by_norm
    from seqgen.training.optim import Optimizer

    limit_threads()
    m = Model.create(args.cell, V, args.hidden, args.layers, seed=0)
    opt = Optimizer("adam", m.params, lr=2e-3)
    rng = np.random.default_rng(0)
    windows = [rng.integers(0, V, (T + 1, B)).astype(np.int32) for _ in range(4)]

    if args.policy == "blas-pool":
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=2, user_api="blas")

        def backprop(x, y, state):  # the whole batch in one pass, as before the row blocks
            x, y, state = m._check_window(x, y, state)
            caches, logits, final = m._forward(x, state, None)
            total, count = softmax_xent(logits, y.reshape(-1))
            grads, _ = m._backward(x, caches, logits, None)
            return grads, final
    else:
        def backprop(x, y, state):
            r = m.backprop(x, y, state)
            return r.grads, r.state

    state = None

    def step(k):
        nonlocal state
        w = windows[k % len(windows)]
        grads, state = backprop(w[:-1], w[1:], state)
        clip_by_norm(grads, 5.0)
        opt.step(m.params, grads)

    for k in range(3):  # warm-up: numba loads or compiles
        step(k)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        step(steps)
        steps += 1
    print(steps * B * T / (time.perf_counter() - t0))


NEIGHBOUR = """
import sys, time
duty, end = float(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    t = time.monotonic()
    while time.monotonic() - t < 0.01 * duty:
        pass
    if duty < 1:
        time.sleep(0.01 * (1 - duty))
"""


def measure(policy, args, duty):
    """tokens/s of one child process, beside a neighbour busy for ``duty`` (None: alone)."""
    cmd = [sys.executable, __file__, "--child", "--policy", policy, "--cell", args.cell,
           "--hidden", str(args.hidden), "--layers", str(args.layers), "--seconds", str(args.seconds)]
    neighbour = None
    if duty:
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR, str(duty), str(args.seconds + 60)])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 120, check=True)
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return float(out.stdout.split()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0, help="timed training per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duty", type=float, nargs="+", default=[1.0], help="neighbour's busy fraction(s)")
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--policy", default="blocks", choices=POLICIES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0

    print(f"# training beside a busy neighbour: {args.cell} {args.layers}x{args.hidden}, B={B} T={T} V={V} "
          f"float32, {args.seconds:g} s per measurement, median of {args.repeats}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    rates = {(p, d): [] for p in args.policies for d in [0.0, *args.duty]}
    for r in range(args.repeats):
        for p in args.policies:
            for d in ([0.0, *args.duty] if r % 2 == 0 else [*args.duty, 0.0]):
                rates[(p, d)].append(measure(p, args, d))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    head = "| policy | idle tokens/s | " + " | ".join(f"neighbour {d:g} core: tokens/s | busy/idle" for d in args.duty)
    print(head + " |")
    print("|---|---:|" + "---:|---:|" * len(args.duty))
    for p in args.policies:
        idle = statistics.median(rates[(p, 0.0)])
        cells = [f"{idle / 1e3:.1f}k"]
        for d in args.duty:
            busy = statistics.median(rates[(p, d)])
            cells += [f"{busy / 1e3:.1f}k", f"{busy / idle:.0%}"]
        print(f"| {p} | " + " | ".join(cells) + " |")
    print()
    print("all runs (tokens/s):")
    for (p, d), values in rates.items():
        print(f"  {p:9} neighbour {d:g}: " + " ".join(f"{v / 1e3:.1f}k" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
