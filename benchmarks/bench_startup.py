"""Start-up time of the `seqgen` command, measured from outside the process (wall clock from
spawn to exit), several runs each: median, min and max.

Run from the repository root (quiet machine; a cold run compiles the kernels)::

    flock /work/bench.lock python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --runs 5 --cold-runs 3

Rows:

* ``cold seqgen sample``: the first run after install, numba's cache empty (NUMBA_CACHE_DIR
  points at a fresh directory for each run);
* ``warm seqgen sample -n 1``: the cache filled, the usual run;
* ``seqgen --help``: the command line without any kernel;
* floors: ``python -c pass`` and the imports the sampling path cannot avoid today (numpy, numba,
  the BLAS numba binds through SciPy), each in a fresh interpreter.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SEQGEN = [sys.executable, "-m", "seqgen"]
FLOORS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import numpy": [sys.executable, "-c", "import numpy"],
    "import numba": [sys.executable, "-c", "import numba"],
    "import scipy.linalg.cython_blas": [sys.executable, "-c", "import scipy.linalg.cython_blas"],
}


def wall(cmd, env):
    """Seconds from spawn to exit of ``cmd`` (its output discarded); fails loudly on an error."""
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, timeout=600)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs of each warm row")
    ap.add_argument("--cold-runs", type=int, default=3, help="runs of the cold row")
    args = ap.parse_args(argv)

    base = dict(os.environ)
    cache = tempfile.mkdtemp(prefix="seqgen-startup-")
    rows = {}
    try:
        print(f"# seqgen start-up, wall clock per process; load average at start "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs", flush=True)
        cold = []
        for i in range(args.cold_runs):
            fresh = os.path.join(cache, f"cold{i}")
            cold.append(wall(SEQGEN + ["sample"], {**base, "NUMBA_CACHE_DIR": fresh}))
        rows["cold seqgen sample (empty numba cache)"] = cold
        warm_env = {**base, "NUMBA_CACHE_DIR": os.path.join(cache, "cold0")}
        rows["warm seqgen sample -n 1"] = [wall(SEQGEN + ["sample", "-n", "1"], warm_env) for _ in range(args.runs)]
        rows["seqgen --help"] = [wall(SEQGEN + ["--help"], warm_env) for _ in range(args.runs)]
        for name, cmd in FLOORS.items():
            rows[name] = [wall(cmd, base) for _ in range(args.runs)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| command | runs | median s | min s | max s |")
    print("|---|---:|---:|---:|---:|")
    for name, times in rows.items():
        print(f"| {name} | {len(times)} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
