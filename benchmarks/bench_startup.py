"""Start-up time of the `seqgen` command, measured from outside the process (wall clock from
spawn to exit, and the child's CPU time), several runs each: median, min and max.

Run from the repository root (quiet machine; a cold run compiles the kernels)::

    flock /work/bench.lock python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --runs 5 --cold-runs 3
    python benchmarks/bench_startup.py --baseline ../seqgen-main   # before/after, runs interleaved

Rows:

* ``cold seqgen sample``: the first run after install, numba's cache empty (NUMBA_CACHE_DIR
  points at a fresh directory for each run);
* ``warm seqgen sample -n 1``: the cache filled, the usual run;
* ``seqgen --help``: the command line without any kernel;
* floors, each in a fresh interpreter: ``python -c pass``, ``import numpy``, ``import numba``, and
  numba ready to load a cached kernel (numba imported, its numpy support loaded as seqgen loads
  it, the CPU target refreshed: what numba does before the first cached function runs).

With ``--baseline DIR`` (another checkout of seqgen, e.g. a worktree of main) every seqgen row is
also measured there, run for run alternately with this tree, so both see the same load. A tree
is run as ``python -m seqgen`` with that tree first on PYTHONPATH.

On a shared machine wall time grows with the load average (printed per row); CPU time (user +
sys of the child) grows much less, so both are given.
"""

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
READY = ("import numba, seqgen._numba; from numba.core.registry import cpu_target; "
         "cpu_target.target_context.refresh()")
FLOORS = {
    "python -c pass": "pass",
    "import numpy": "import numpy",
    "import numba": "import numba",
    "numba ready for a cached kernel": READY,
}


def run(cmd, env, cwd):
    """(wall s, CPU s) from spawn to exit of ``cmd`` (its output discarded); fails loudly."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{r.stderr.decode(errors='replace')}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def machine():
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for mod in ("numpy", "numba", "scipy", "pydantic"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    return f"{cpu}, {os.cpu_count()} CPUs; {platform.system()} {platform.release()}; Python " \
           f"{platform.python_version()}, {', '.join(versions)}"


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs of each warm row")
    ap.add_argument("--cold-runs", type=int, default=3, help="runs of the cold row")
    ap.add_argument("--baseline", type=Path, help="another seqgen checkout to measure alongside, runs interleaved")
    ap.add_argument("--no-floors", action="store_true", help="skip the floor rows")
    args = ap.parse_args(argv)

    trees = {"": HERE}
    if args.baseline:
        trees = {"baseline: ": args.baseline.resolve(), "": HERE}
    base = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    scratch = Path(tempfile.mkdtemp(prefix="seqgen-startup-"))
    rows = {}  # name -> ([(wall, cpu)], load average when the row started)
    seqgen = [sys.executable, "-m", "seqgen"]

    def env_for(tree, cache):
        return {**base, "PYTHONPATH": os.pathsep.join([str(tree)] + [p for p in [base.get("PYTHONPATH")] if p]),
                "NUMBA_CACHE_DIR": str(cache)}

    def measure(label, argv_for, runs, cache_for):
        starts = {prefix: load() for prefix in trees}
        results = {prefix: [] for prefix in trees}
        for i in range(runs):
            for prefix, tree in trees.items():
                results[prefix].append(run(seqgen + argv_for, env_for(tree, cache_for(prefix, i)), tree))
        for prefix in trees:
            rows[prefix + label] = (results[prefix], starts[prefix])

    try:
        print(f"# seqgen start-up, per process: wall clock and CPU (user + sys); {machine()}")
        print(f"# load average (1, 5, 15 min) at start: {load()}", flush=True)
        measure("cold seqgen sample (empty numba cache)", ["sample"], args.cold_runs,
                lambda prefix, i: scratch / f"cold{'b' if prefix else ''}{i}")
        warm = lambda prefix, i: scratch / f"cold{'b' if prefix else ''}0"  # noqa: E731  (filled by the cold row)
        measure("warm seqgen sample -n 1", ["sample", "-n", "1"], args.runs, warm)
        measure("seqgen --help", ["--help"], args.runs, warm)
        if not args.no_floors:
            for name, code in FLOORS.items():
                start = load()
                env = {**env_for(HERE, scratch / "floor"), "PYTHONPATH": str(HERE)}
                rows[name] = ([run([sys.executable, "-c", code], env, HERE) for _ in range(args.runs)], start)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"# load average at end: {load()}\n")
    print("| command | runs | wall median s | wall min s | wall max s | CPU median s | load average at start |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, (results, start) in rows.items():
        walls = [w for w, _ in results]
        cpus = [c for _, c in results]
        print(f"| {name} | {len(results)} | {statistics.median(walls):.2f} | {min(walls):.2f} | {max(walls):.2f} | "
              f"{statistics.median(cpus):.2f} | {start} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
