"""Long checkpoint fuzz run and kill -9 trial (opt-in; run under `nice -n 10`).

    python benchmarks/fuzz_checkpoints.py --cases 1200 --cli-subprocess 120 --kills 50

1. ``--cases`` malformed checkpoints (tests/fuzz/checkpoint_cases.py mutations of the shipped
   models and a small trained one) go through ``checkpoint.load`` and through ``seqgen info``
   and ``seqgen sample --model`` (the click entry point, in worker processes of
   ``--chunk`` cases each, under a memory limit); a traceback is any exception that is not
   CheckpointError (loader) or any exit that is not a clean click exit (CLI).
2. ``--cli-subprocess`` of them also as real ``python -m seqgen info`` subprocesses: exit 1,
   one line on stderr, no traceback; peak RSS of each.
3. ``--kills`` SIGKILLs of real training runs at random moments: the checkpoint must load, the
   next run resumes it; temporaries left behind are counted and removed.
"""

import argparse
import contextlib
import importlib.util
import io
import json
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_cases_module():
    spec = importlib.util.spec_from_file_location("checkpoint_cases", ROOT / "tests" / "fuzz" / "checkpoint_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(files):
    """Run each file through the loader and the CLI in this process; print one JSON summary."""
    from seqgen.cli import cli
    from seqgen.errors import CheckpointError
    from seqgen.storage import checkpoint

    out = {"loaded": 0, "refused": 0, "tracebacks": [], "cli_runs": 0, "cli_tracebacks": [], "slowest": 0.0}
    for f in files:
        t0 = time.perf_counter()
        try:
            checkpoint.load(f)
            out["loaded"] += 1
        except CheckpointError as e:
            out["refused"] += 1
            if "\n" in str(e):
                out["tracebacks"].append([f, "multi-line message"])
        except Exception as e:  # noqa: BLE001 - counting exactly these
            out["tracebacks"].append([f, f"{type(e).__name__}: {e}"[:300]])
        for args in (["info", f], ["sample", "--model", f, "--length", "5"]):
            out["cli_runs"] += 1
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    cli.main(args, prog_name="seqgen")
            except SystemExit as e:
                lines = err.getvalue().strip().splitlines()
                if e.code not in (0, None) and (e.code != 1 or len(lines) != 1 or "Traceback" in err.getvalue()):
                    out["cli_tracebacks"].append([f, args[0], e.code, err.getvalue()[-300:]])
            except BaseException as e:  # noqa: BLE001
                out["cli_tracebacks"].append([f, args[0], "exception", f"{type(e).__name__}: {e}"[:300]])
        out["slowest"] = max(out["slowest"], time.perf_counter() - t0)
    with open("/proc/self/status") as f:  # VmHWM: ru_maxrss would include the parent's peak (kept across exec)
        out["maxrss_mb"] = int(next(line for line in f if line.startswith("VmHWM")).split()[1]) / 1024
    print(json.dumps(out))


def make_cases(cases, folder, n, seed):
    from seqgen.storage import shipped

    trained = folder / "trained.npz"
    subprocess.run([sys.executable, "-m", "seqgen", "train", str(ROOT / "corpora" / "dinos.txt"), "-O", "lower",
                    "true", "--mode", "items", "--batch-size", "8", "--hidden-size", "16", "--layers", "2",
                    "--steps", "5", "--eval-every", "5", "-q", "-o", str(trained)], check=True, cwd=folder)
    bases = [cases.Base.of(p) for p in (shipped.path("dinos"), trained, shipped.path("chorale"),
                                        shipped.path("chorale-satb"))]
    rng = random.Random(seed)
    files, kinds = [], {}
    for i in range(n):
        base = bases[rng.choice([0, 0, 1, 1, 1, 2, 3])]
        kind, data = cases.mutate(rng, base)
        path = folder / f"case{i:05d}.npz"
        path.write_bytes(data)
        files.append(str(path))
        kinds[kind] = kinds.get(kind, 0) + 1
    return files, kinds


def limit_memory(gb):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (gb << 30, gb << 30))
    return apply


def fuzz(args, folder):
    cases = load_cases_module()
    t0 = time.perf_counter()
    files, kinds = make_cases(cases, folder, args.cases, args.seed)
    print(f"generated {len(files)} malformed checkpoints in {time.perf_counter() - t0:.0f} s: {kinds}", flush=True)
    totals = {"loaded": 0, "refused": 0, "tracebacks": [], "cli_runs": 0, "cli_tracebacks": [], "slowest": 0.0,
              "maxrss_mb": 0.0, "worker_failures": []}
    for start in range(0, len(files), args.chunk):
        chunk = files[start:start + args.chunk]
        r = subprocess.run([sys.executable, __file__, "--worker", *chunk], capture_output=True, text=True,
                           timeout=args.chunk * 10, preexec_fn=limit_memory(args.memory_gb), cwd=folder)
        if r.returncode != 0:
            totals["worker_failures"].append(r.stderr[-500:])
            continue
        got = json.loads(r.stdout.strip().splitlines()[-1])
        for key in ("loaded", "refused", "cli_runs"):
            totals[key] += got[key]
        totals["tracebacks"] += got["tracebacks"]
        totals["cli_tracebacks"] += got["cli_tracebacks"]
        totals["slowest"] = max(totals["slowest"], got["slowest"])
        totals["maxrss_mb"] = max(totals["maxrss_mb"], got["maxrss_mb"])
    print(f"loader: {len(files)} cases, {totals['refused']} refused, {totals['loaded']} loaded (harmless damage), "
          f"{len(totals['tracebacks'])} tracebacks; CLI (info, sample): {totals['cli_runs']} runs, "
          f"{len(totals['cli_tracebacks'])} tracebacks; slowest case {totals['slowest']:.2f} s (loader + 2 CLI runs); "
          f"worker peak RSS {totals['maxrss_mb']:.0f} MB ({args.chunk} cases per worker); "
          f"worker failures {len(totals['worker_failures'])}", flush=True)
    for item in (totals["tracebacks"] + totals["cli_tracebacks"] + totals["worker_failures"])[:10]:
        print("  ", item)

    rng = random.Random(args.seed + 1)
    sample = rng.sample(files, min(args.cli_subprocess, len(files)))
    bad, peak, slowest = [], 0.0, 0.0
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report this process's peak
    probe = ("import runpy, sys\nsys.argv = ['seqgen', 'info', sys.argv[1]]\ntry:\n"
             "    runpy.run_module('seqgen', run_name='__main__')\nfinally:\n"
             "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
             "    print('RSS', hwm, file=sys.stderr)\n")
    for f in sample:
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", probe, f], capture_output=True, text=True, timeout=120, cwd=folder)
        slowest = max(slowest, time.perf_counter() - t)
        lines = r.stderr.strip().splitlines()
        rss = int(lines[-1].split()[1]) / 1024 if lines and lines[-1].startswith("RSS") else float("nan")
        peak = max(peak, rss)
        message = lines[:-1]
        if r.returncode not in (0, 1) or (r.returncode == 1 and len(message) != 1) or "Traceback" in r.stderr:
            bad.append((f, r.returncode, r.stderr[-300:]))
    print(f"subprocess `seqgen info`: {len(sample)} runs, {len(bad)} tracebacks or bad exits, peak RSS {peak:.0f} MB, "
          f"slowest {slowest:.1f} s", flush=True)
    for item in bad[:5]:
        print("  ", item)
    return len(totals["tracebacks"]) + len(totals["cli_tracebacks"]) + len(bad) + len(totals["worker_failures"])


def kills(args, folder):
    sys.path.insert(0, str(ROOT / "tests"))
    from test_faults import kill_during_training, leftovers

    from seqgen.storage import checkpoint
    from seqgen.storage.outputs import remove_stale_temps
    from seqgen.training.trainer import best_path

    rng = random.Random(args.seed + 2)
    corpus = folder / "dinos.txt"
    corpus.write_text("".join((ROOT / "corpora" / "dinos.txt").read_text().splitlines(keepends=True)[:200]))
    unloadable, resumed, stale_runs, stale_files, files_checked = 0, 0, 0, 0, 0
    out = None
    t0 = time.perf_counter()
    for i in range(args.kills):
        if i % 10 == 0:  # a fresh output every 10 kills, so fresh starts are killed too
            out = folder / f"kill{i // 10}.npz"
        was_resume = out.exists()
        kill_during_training(corpus, out, rng)
        resumed += was_resume
        for f in (out, best_path(out)):
            if f.exists():
                files_checked += 1
                try:
                    checkpoint.load(f)
                except Exception as e:  # noqa: BLE001
                    unloadable += 1
                    print("   unloadable:", f, e)
        left = leftovers(out)
        stale_runs += bool(left)
        stale_files += len(left)
        remove_stale_temps(out)
        remove_stale_temps(best_path(out))
    print(f"kill -9: {args.kills} kills ({resumed} of them during resumed runs) in {time.perf_counter() - t0:.0f} s; "
          f"{files_checked} checkpoint files checked, {unloadable} unloadable; {stale_runs} kills left "
          f"{stale_files} temporary files (removed by remove_stale_temps)", flush=True)
    return unloadable


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=1200)
    p.add_argument("--cli-subprocess", type=int, default=120)
    p.add_argument("--kills", type=int, default=0)
    p.add_argument("--chunk", type=int, default=100, help="cases per worker process")
    p.add_argument("--memory-gb", type=int, default=4, help="address-space limit of a worker")
    p.add_argument("--seed", type=int, default=16)
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="seqgen-fuzz-"))
    try:
        failures = fuzz(args, folder) if args.cases else 0
        failures += kills(args, folder) if args.kills else 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
