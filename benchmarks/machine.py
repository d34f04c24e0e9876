"""What the benchmarks say about the machine they ran on."""

import os
import platform
import threading
import time

import numpy as np


def cpu_model():
    """The CPU's model name (/proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def matmul_gflops(torch=None, size=1024, repeats=5):
    """This machine's float32 matrix-product rate (GFLOP/s, best of ``repeats``): OpenBLAS on one
    core; OpenBLAS on all cores at once (one single-threaded product per core, each on its own
    thread: numpy releases the GIL); and, given the ``torch`` module, ``torch.matmul`` on its threads."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    mats = [(rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32))
            for _ in range(os.cpu_count())]

    def product(a, b, times):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)

    flop = 2 * size**3
    rates = {}
    with threadpool_limits(1):
        one, every = [], []
        for _ in range(repeats):
            times = []
            product(*mats[0], times)
            one.append(flop / times[0])
            threads = [threading.Thread(target=product, args=(a, b, times)) for a, b in mats]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            every.append(flop * len(mats) / (time.perf_counter() - start))
    rates["openblas, one core"], rates["openblas, all cores"] = max(one) / 1e9, max(every) / 1e9
    if torch is not None:
        a, b = (torch.from_numpy(m) for m in mats[0])
        torch.matmul(a, b)
        rates[f"torch.matmul, {torch.get_num_threads()} threads"] = max(
            flop / _timed(lambda: torch.matmul(a, b)) for _ in range(repeats)) / 1e9
    return rates


def _timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start
