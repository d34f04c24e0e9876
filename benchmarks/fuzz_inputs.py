"""Long fuzz run of the MIDI reader (opt-in; the suite runs a short one in tests/fuzz/).

    nice -n 10 python benchmarks/fuzz_inputs.py --files 10000 --seconds 1500
    nice -n 10 python benchmarks/fuzz_inputs.py --files 500 --cli 50 --large 10 --keep failures/

Mutates the chorales in corpora/jsb-chorales with tests/fuzz/mutations.py (seeded), reads each
mutated file with the midi tokenizer in both encodings in a worker process, and reports: files,
tracebacks (any exception but CorpusError/TokenizerError; must be 0), reads over the time bound
(1 s + 1 s per MB of CPU time; a read the worker does not finish within --hang seconds is killed
and counted too; must be 0), the slowest reads, and the worker's peak RSS (ru_maxrss; the worker
runs under an address-space limit, --memory-limit, so a blow-up shows as a MemoryError traceback
instead of taking the machine down). With --cli N, N of the files also go through the real
command line (`seqgen tokenize FILE -t midi`): exit 0 or 1, at most one error line, no traceback.
"""

import argparse
import json
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

import mutations  # noqa: E402

WORKER = r"""
import json, resource, sys, time, traceback, warnings
limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from seqgen.errors import CorpusError, TokenizerError
from seqgen.plugins.host import get_tokenizer
Midi = get_tokenizer("midi")
tokenizers = {e: Midi(encoding=e) for e in ("melody", "poly")}
print(json.dumps({"ready": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
warnings.simplefilter("ignore")
for line in sys.stdin:
    path = line.strip()
    out = {}
    for encoding, tok in tokenizers.items():
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            result = len(tok.read_file(path))
        except (CorpusError, TokenizerError) as e:
            result = "refused" if "\n" not in str(e) and str(e).startswith(path) else "bad message: " + str(e)
        except BaseException as e:
            result = "traceback: " + "".join(traceback.format_exception_only(e)).strip()[:300]
        out[encoding] = [result, time.process_time() - cpu, time.perf_counter() - wall]
    out["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out), flush=True)
"""


class Worker:
    """A python process reading files it is sent, one JSON line of results per file."""

    def __init__(self, memory_limit):
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(memory_limit)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.baseline_kb = json.loads(self.proc.stdout.readline())["ready"]

    def read(self, path, hang):
        """-> result dict, or None if the worker did not answer within `hang` seconds (killed)."""
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], hang)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            return None
        return json.loads(line)

    def close(self):
        self.proc.kill()
        self.proc.wait()


def cli_check(path, encoding):
    """`seqgen tokenize path -t midi`: -> None if it behaved, else what went wrong."""
    run = subprocess.run([sys.executable, "-m", "seqgen", "tokenize", str(path), "-t", "midi", "-O", "encoding",
                          encoding], capture_output=True, text=True, timeout=120, cwd=ROOT)
    errors = [line for line in run.stderr.splitlines() if not line.startswith("warning: ")]
    if "Traceback" in run.stderr or run.returncode not in (0, 1):
        return f"exit {run.returncode}: {run.stderr.strip()[-300:]}"
    if run.returncode == 1 and not (len(errors) == 1 and errors[0].startswith("Error: ")):
        return f"error output is not one line: {run.stderr.strip()[-300:]}"
    return None


LARGE_MUTATIONS = [mutations.flip_bits, mutations.set_bytes, mutations.truncate, mutations.insert_delete,
                   mutations.chunk_length]


def large_seeds():
    """Two large valid files, written with the plugin's writer: 170,000 short notes of one voice
    (1.4 MB, running status) and 128 voices each holding 64-quarter notes for 100,000 steps (300
    KB: the largest poly document the default bounds allow, 13 million tokens)."""
    from seqgen_plugins.midi import write_midi

    with tempfile.TemporaryDirectory() as tmp:
        dense, voices = Path(tmp) / "dense.mid", Path(tmp) / "voices.mid"
        write_midi(dense, [[(60 + i % 12, 60 * i, 60 * i + 30, 0) for i in range(170_000)]], type=0)
        write_midi(voices, [[(p, k * 64 * 480, (k + 1) * 64 * 480, 0) for p in range(128) for k in range(390)]],
                   type=0)
        return {"dense": dense.read_bytes(), "voices": voices.read_bytes()}


def inputs(args, rng, seeds):
    """-> (bytes, mutation names): --files mutated chorales, then --large mutated large files
    (the first two of them unmutated)."""
    for _ in range(args.files):
        yield mutations.mutate(rng.choice(seeds), rng)
    if args.large:
        large = large_seeds()
        for i in range(args.large):
            name = ("dense", "voices")[i % 2]
            if i < 2:
                yield large[name], [f"{name} (as written)"]
            else:
                op = rng.choice(LARGE_MUTATIONS)
                yield op(large[name], rng), [f"{name}", op.__name__]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10_000, help="mutated files to read (each in both encodings)")
    ap.add_argument("--seconds", type=float, default=1800, help="stop after this long, whatever --files says")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--large", type=int, default=0, help="then this many large files (0.3-1.4 MB), mutated")
    ap.add_argument("--cli", type=int, default=0, help="also run this many of the files through `seqgen tokenize`")
    ap.add_argument("--hang", type=float, default=30, help="kill a read that takes longer than this (s)")
    ap.add_argument("--memory-limit", type=int, default=2 << 30, help="worker address-space limit, bytes (0: none)")
    ap.add_argument("--keep", type=Path, help="copy files that failed a check here")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    seeds = [path.read_bytes() for path in mutations.seed_files()]
    worker = Worker(args.memory_limit)
    baseline_kb, peak_kb = worker.baseline_kb, worker.baseline_kb
    stats = {"files": 0, "bytes": 0, "reads": 0, "tokens": 0, "refused": 0, "tracebacks": 0, "bad_messages": 0,
             "over_time_bound": 0, "hangs": 0, "cli_runs": 0, "cli_failures": 0}
    mutation_counts, failures, slowest = {}, [], []
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (raw, names) in enumerate(inputs(args, rng, seeds)):
            if time.monotonic() - start > args.seconds:
                break
            for name in names:
                mutation_counts[name] = mutation_counts.get(name, 0) + 1
            path = Path(tmp) / f"{i:06d}.mid"
            path.write_bytes(raw)
            stats["files"] += 1
            stats["bytes"] += len(raw)
            result = worker.read(path, args.hang)
            bad = []
            if result is None:
                stats["hangs"] += 1
                stats["over_time_bound"] += 1
                bad.append(f"no answer within {args.hang} s")
                worker = Worker(args.memory_limit)
            else:
                peak_kb = max(peak_kb, result.pop("maxrss"))
                bound = 1.0 + len(raw) / 1e6
                for encoding, (outcome, cpu, wall) in result.items():
                    stats["reads"] += 1
                    slowest.append((cpu, wall, len(raw), encoding, "+".join(names)))
                    if isinstance(outcome, int):
                        stats["tokens"] += 1
                    elif outcome == "refused":
                        stats["refused"] += 1
                    elif outcome.startswith("traceback"):
                        stats["tracebacks"] += 1
                        bad.append(f"{encoding}: {outcome}")
                    else:
                        stats["bad_messages"] += 1
                        bad.append(f"{encoding}: {outcome}")
                    if cpu > bound:
                        stats["over_time_bound"] += 1
                        bad.append(f"{encoding}: {cpu:.2f} s CPU, bound {bound:.2f} s")
                slowest = sorted(slowest, reverse=True)[:5]
            if i < args.cli:
                stats["cli_runs"] += 1
                problem = cli_check(path, ("melody", "poly")[i % 2])
                if problem:
                    stats["cli_failures"] += 1
                    bad.append(f"cli: {problem}")
            if bad:
                failures.append({"file": path.name, "mutations": names, "problems": bad})
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    (args.keep / path.name).write_bytes(raw)
            if (i + 1) % 1000 == 0:
                print(f"{i + 1} files, {time.monotonic() - start:.0f} s, {stats['tracebacks']} tracebacks, "
                      f"{stats['over_time_bound']} over the bound", file=sys.stderr, flush=True)
    worker.close()
    figures = {
        **stats,
        "seconds": round(time.monotonic() - start, 1),
        "worker_rss_baseline_mb": round(baseline_kb / 1024, 1),
        "worker_peak_rss_mb": round(peak_kb / 1024, 1),
        "slowest_reads": [{"cpu_s": round(c, 3), "wall_s": round(w, 3), "bytes": n, "encoding": e, "mutations": m}
                          for c, w, n, e, m in slowest],
        "mutations": dict(sorted(mutation_counts.items())),
        "failures": failures[:20],
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    ok = not (stats["tracebacks"] or stats["bad_messages"] or stats["over_time_bound"] or stats["cli_failures"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
