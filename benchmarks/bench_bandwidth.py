"""The memory-bandwidth bound of single-stream sampling, and whether bf16/fp16 weights would pay.

Run from the repository root (no PyTorch needed)::

    flock /work/bench.lock python benchmarks/bench_bandwidth.py         # everything, ~2-4 minutes
    python benchmarks/bench_bandwidth.py --quick                         # small and short (debugging)
    python benchmarks/bench_bandwidth.py --parts nll --checkpoint /path/to/lstm-2x512.npz
    python benchmarks/bench_bandwidth.py --markdown --json out.json

Parts (``--parts``, default all):

``bandwidth``
    Read bandwidth (GB/s) of a float32 sum over one array, vectorised by numba (fastmath, so
    LLVM may reorder the sum), at footprints that fit one core's L1 (the kernel's own ceiling)
    and L2, each sampler's footprint below, and far beyond L3 (DRAM); one thread, and two
    Python threads each summing half of the array in a ``nogil`` kernel (the way seqgen's own
    workers run, not numba's ``parallel=True`` pool).
    Each pass reads the array ``reps`` times (calibrated to ~``--pass-time`` seconds); best and
    median over ``--passes`` passes.
``sampling``
    Per LSTM model (V=65; 1x128, 1x256, 1x512, 2x512), random-initialised: the bytes of float32
    weights single-stream sampling must read per token (every layer's recurrent matrix, the upper
    layers' input matrices, the output layer, the biases, and one row of layer 0's input matrix,
    which one-hot input gathers), the read bandwidth at exactly that footprint, the bound it
    sets (bandwidth / bytes per token, tokens/s), and seqgen's measured rate
    (``seqgen.generation.sampler.generate`` with n=1, as ``bench_engine.py`` calls it). Bandwidth
    and sampling passes alternate, so a slow patch of a shared machine hits both. The DRAM bound
    (DRAM bandwidth / bytes per token) is shown too; it does not apply while the weights fit in L3.
``gemv``
    A prototype of the sampler's products on 16-bit weights: x (K,) @ W (K, M) with W stored as
    bf16 (uint16; widened in registers by a 16-bit shift and a bitcast to float32) or fp16
    (``fpext half -> float``, F16C/AVX-512 ``vcvtph2ps``), against the same loop on float32 and
    against seqgen's own ``rows_dot``, per model: one "token" is the chain of every product
    single-stream sampling runs (no gates, no softmax). The loop is seqgen's ``_one_row``
    (k unrolled by four, j vectorised); "f32 k by 8" unrolls k by eight (the same additions in the
    same order, so the same bits). The script checks each variant against numpy on the weights it
    holds (the float32 ones against ``rows_dot`` bit for bit) and prints the vector instructions
    LLVM chose.
``nll``
    Accuracy: the validation NLL (nats/token) of each shipped model (and of ``--checkpoint``
    files) with every parameter rounded to bf16 (round to nearest even, the top 16 bits of
    float32) or to fp16 (numpy's float16 cast, also round to nearest even), then widened back to
    float32, against the float32 figure. The validation data is what training held out, rebuilt
    from the options stored in the checkpoint (a separate ``valid`` corpus, else the same split),
    in the same windows; the float32 figure must match the checkpoint's recorded best validation
    loss, which the script prints beside it. Not a timing: run it any time.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numba
import numpy as np
from llvmlite import ir
from machine import cpu_model
from numba import types
from numba.extending import intrinsic

ROOT = Path(__file__).resolve().parent.parent
V = 65
MODELS = ((128, 1), (256, 1), (512, 1), (512, 2))  # LSTM (H, L) for the sampling and gemv parts
PARTS = ("bandwidth", "sampling", "gemv", "nll")

kernel = numba.njit(nogil=True, error_model="numpy")  # not cached: a benchmark, compiled per run


# --------------------------------------------------------------------------- read bandwidth
@numba.njit(nogil=True, fastmath=True, error_model="numpy")
def _sum_reps(a, reps):
    """Sum of a (n,) float32, reps times over; fastmath lets LLVM keep several vector sums."""
    total = np.float32(0.0)
    for _ in range(reps):
        s = np.float32(0.0)
        for i in range(a.shape[0]):
            s += a[i]
        total += s
    return total


def _time_reads(parts, reps, threads):
    """Seconds to sum each array of ``parts`` reps times, the parts on ``threads`` threads."""
    if threads == 1:
        t0 = time.perf_counter()
        for p in parts:
            _sum_reps(p, reps)
        return time.perf_counter() - t0
    workers = [threading.Thread(target=_sum_reps, args=(p, reps)) for p in parts]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0


def read_array(nbytes):
    """A float32 array of about nbytes, its pages touched."""
    return np.random.default_rng(0).random(max(64, nbytes // 4), dtype=np.float32)


class Reader:
    """Reads a float32 array (split in halves for two threads) and reports GB/s."""

    def __init__(self, array, threads, pass_time):
        self.array = array
        self.nbytes = array.nbytes
        self.threads = threads
        self.parts = [self.array] if threads == 1 else np.array_split(self.array, threads)
        _time_reads(self.parts, 1, threads)  # compile, and fault the pages in
        reps = 1  # calibrated on one thread: a thread's start-up or a late wake-up is not work
        while (seconds := _time_reads([array], reps, 1)) < pass_time / 4:
            reps *= 2
        self.reps = max(1, round(reps * pass_time / seconds))
        self.rates = []

    def run_pass(self):
        seconds = _time_reads(self.parts, self.reps, self.threads)
        self.rates.append(self.nbytes * self.reps / seconds / 1e9)
        return self.rates[-1]


# --------------------------------------------------------------------------- 16-bit weights
@intrinsic
def _bf16_to_f32(typingctx, u):
    """float32 of bf16 bits (uint16): the bits moved to the top half of a 32-bit word."""
    if not isinstance(u, types.Integer) or u.bitwidth != 16:
        return None

    def codegen(context, builder, signature, args):
        wide = builder.shl(builder.zext(args[0], ir.IntType(32)), ir.Constant(ir.IntType(32), 16))
        return builder.bitcast(wide, ir.FloatType())

    return types.float32(u), codegen


@intrinsic
def _f16_to_f32(typingctx, u):
    """float32 of IEEE half bits (uint16): LLVM's fpext, i.e. vcvtph2ps with F16C."""
    if not isinstance(u, types.Integer) or u.bitwidth != 16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(u), codegen


def to_bf16_bits(w):
    """float32 array -> uint16 bf16 bits, rounded to nearest even (finite input)."""
    bits = np.ascontiguousarray(w, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits += 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).astype(np.uint16)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def to_f16_bits(w):
    return np.asarray(w, dtype=np.float32).astype(np.float16).view(np.uint16)


def round_bf16(w):
    """w rounded to bf16 and widened back, in w's dtype."""
    return from_bf16_bits(to_bf16_bits(w)).astype(w.dtype)


def round_f16(w):
    return np.asarray(w, dtype=np.float32).astype(np.float16).astype(w.dtype)


@numba.njit(inline="always")
def _same(w):
    return w


def make_gemv(widen):
    """o (M,) = x (K,) @ W (K, M), W's entries widened to float32 by ``widen`` as they are
    loaded: the sampler's one-row product (seqgen.kernels.sample._one_row: k unrolled by four,
    each column summed over k in order, the j loop vectorised)."""

    @kernel
    def gemv(x, W, o):
        K4 = W.shape[0] - W.shape[0] % 4
        for j in range(o.shape[0]):
            o[j] = 0.0
        for k in range(0, K4, 4):
            a0, a1, a2, a3 = x[k], x[k + 1], x[k + 2], x[k + 3]
            w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
            for j in range(o.shape[0]):
                t = o[j]
                t += a0 * widen(w0[j])
                t += a1 * widen(w1[j])
                t += a2 * widen(w2[j])
                t += a3 * widen(w3[j])
                o[j] = t
        for k in range(K4, W.shape[0]):
            for j in range(o.shape[0]):
                o[j] += x[k] * widen(W[k, j])

    return gemv


@kernel
def gemv_f32_k8(x, W, o):
    """The float32 product with k unrolled by eight: half the loads and stores of o per weight
    row, the same additions in the same order (so the same bits as k by four)."""
    K8 = W.shape[0] - W.shape[0] % 8
    for j in range(o.shape[0]):
        o[j] = 0.0
    for k in range(0, K8, 8):
        a0, a1, a2, a3, a4, a5, a6, a7 = x[k], x[k + 1], x[k + 2], x[k + 3], x[k + 4], x[k + 5], x[k + 6], x[k + 7]
        w0, w1, w2, w3, w4, w5, w6, w7 = W[k], W[k + 1], W[k + 2], W[k + 3], W[k + 4], W[k + 5], W[k + 6], W[k + 7]
        for j in range(o.shape[0]):
            t = o[j]
            t += a0 * w0[j]
            t += a1 * w1[j]
            t += a2 * w2[j]
            t += a3 * w3[j]
            t += a4 * w4[j]
            t += a5 * w5[j]
            t += a6 * w6[j]
            t += a7 * w7[j]
            o[j] = t
    for k in range(K8, W.shape[0]):
        for j in range(o.shape[0]):
            o[j] += x[k] * W[k, j]


GEMV = {"float32": make_gemv(_same), "float32 k8": gemv_f32_k8, "bf16": make_gemv(_bf16_to_f32),
        "fp16": make_gemv(_f16_to_f32)}
STORED = {"rows_dot": np.float32, "float32": np.float32, "float32 k8": np.float32, "bf16": np.uint16,
          "fp16": np.uint16}


def _chain(gemv):
    @kernel
    def chain(xs, Ws, outs, reps):
        for _ in range(reps):
            for i in range(len(Ws)):
                gemv(xs[i], Ws[i], outs[i])
    return chain


CHAINS = {name: _chain(fn) for name, fn in GEMV.items()}


def _rows_dot_chain():
    from seqgen.kernels.sample import rows_dot

    return _chain(rows_dot)


def token_products(H, L, rng):
    """The (K, M) float32 matrices single-stream LSTM sampling multiplies per token, as the
    sampler holds them (x @ W.T, i.e. W.T row-major): per layer Waa.T (H, 4H) and, above layer 0,
    Wax.T (H, 4H); then Wya.T (H, V)."""
    mats = []
    for l in range(L):
        mats += [rng.standard_normal((H, 4 * H), dtype=np.float32) * 0.05]
        if l:
            mats += [rng.standard_normal((H, 4 * H), dtype=np.float32) * 0.05]
    mats.append(rng.standard_normal((H, V), dtype=np.float32) * 0.05)
    return mats


class Products:
    """Times one variant of the per-token product chain (tokens/s of products alone)."""

    def __init__(self, variant, mats, x, pass_time):
        self.variant = variant
        if STORED[variant] is np.float32:
            Ws = list(mats)
        elif variant == "bf16":
            Ws = [to_bf16_bits(m) for m in mats]
        else:
            Ws = [to_f16_bits(m) for m in mats]
        self.nbytes = sum(w.nbytes for w in Ws)
        if variant == "rows_dot":
            self.chain = _rows_dot_chain()
            self.xs = numba.typed.List([x[None, : m.shape[0]].copy() for m in mats])
            self.outs = numba.typed.List([np.zeros((1, m.shape[1]), np.float32) for m in mats])
        else:
            self.chain = CHAINS[variant]
            self.xs = numba.typed.List([x[: m.shape[0]].copy() for m in mats])
            self.outs = numba.typed.List([np.zeros(m.shape[1], np.float32) for m in mats])
        self.Ws = numba.typed.List(Ws)
        self.check(mats)
        once = min(self._time(1) for _ in range(3))
        self.reps = max(1, round(pass_time / max(once, 1e-7)))
        self.rates = []

    def check(self, mats):
        """The kernel's product equals numpy's on the weights this variant holds; the float32
        variants equal seqgen's rows_dot bit for bit."""
        from seqgen.kernels.sample import rows_dot

        self.chain(self.xs, self.Ws, self.outs, 1)
        widen = {"bf16": from_bf16_bits, "fp16": lambda b: b.view(np.float16).astype(np.float32)}
        for x, W, out in zip(self.xs, self.Ws, self.outs):
            Wf = widen[self.variant](W) if self.variant in widen else W
            want = np.asarray(x, np.float64).ravel() @ Wf.astype(np.float64)
            got = np.asarray(out, np.float64).ravel()
            if not np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max()):
                raise AssertionError(f"{self.variant} product differs from numpy: max error "
                                     f"{np.abs(got - want).max():.3g}")
            if STORED[self.variant] is np.float32:
                ref = np.zeros((1, W.shape[1]), np.float32)
                rows_dot(np.asarray(x).reshape(1, -1), W, ref)
                if not np.array_equal(ref.ravel(), np.asarray(out).ravel()):
                    raise AssertionError(f"{self.variant} product is not rows_dot's bit for bit")

    def _time(self, reps):
        t0 = time.perf_counter()
        self.chain(self.xs, self.Ws, self.outs, reps)
        return time.perf_counter() - t0

    def run_pass(self):
        self.rates.append(self.reps / self._time(self.reps))
        return self.rates[-1]


def asm_summary(variant):
    """The vector instructions of the compiled gemv that load and widen 16-bit weights."""
    fn = GEMV[variant]
    fn(np.ones(8, np.float32), np.ones((8, 64), STORED[variant]), np.zeros(64, np.float32))  # compile
    asm = "\n".join(fn.inspect_asm().values())
    names = ("vpmovzxwd", "vpslld", "vcvtph2ps", "vfmadd", "vmulps", "vaddps")
    regs = {r: asm.count(f"%{r}mm") for r in ("x", "y", "z")}
    counts = {n: asm.count(n) for n in names if asm.count(n)}
    return f"{variant}: " + ", ".join(f"{k} x{v}" for k, v in counts.items()) + \
        f"; registers xmm/ymm/zmm {regs['x']}/{regs['y']}/{regs['z']}"


# --------------------------------------------------------------------------- sampling
def sampler_bytes_per_token(config, itemsize=4):
    """Bytes of parameters single-stream sampling reads per token: everything but layer 0's
    input matrix, of which one-hot input reads one row (G·H)."""
    total = 0
    for name, shape in config.param_shapes().items():
        n = int(np.prod(shape))
        if name == "l0.Wax":
            n = shape[0]
        total += n
    return total * itemsize


class Sampler:
    def __init__(self, H, L, pass_time):
        from seqgen import Model
        from seqgen.generation.sampler import generate

        self.generate = generate
        self.model = Model.create("lstm", vocab_size=V, hidden_size=H, num_layers=L, seed=0, dtype="float32")
        self.seed = 0
        self._run(20)  # compile or load the cached kernel
        probe = 200
        t0 = time.perf_counter()
        self._run(probe)
        per = (time.perf_counter() - t0) / probe
        self.count = max(probe, min(200_000, round(pass_time / per)))
        self.rates = []

    def _run(self, length):
        self.seed += 1
        return self.generate(self.model, n=1, length=length, prime=[0], seed=self.seed)

    def run_pass(self):
        t0 = time.perf_counter()
        self._run(self.count)
        self.rates.append(self.count / (time.perf_counter() - t0))
        return self.rates[-1]


# --------------------------------------------------------------------------- validation NLL
def _resolve(path):
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def validation_windows(ckpt):
    """The windows training scored its validation loss on, from the checkpoint's options."""
    from seqgen.training.data import encode_corpus, evaluation_windows, split_validation

    meta = ckpt.training or ckpt.summary or {}
    o = meta["options"]
    tok = ckpt.tokenizer
    sep = tok.separator_id
    if o.get("valid"):
        valid = encode_corpus(tok, _resolve(o["valid"]))
    else:
        ids = encode_corpus(tok, _resolve(o["corpus"]))
        _, valid = split_validation(ids, sep, o["mode"], o["valid_fraction"], o["seed"], what=str(o["corpus"]))
    return evaluation_windows(o["mode"], valid, sep, o["batch_size"], o["seq_length"], "validation data"), \
        meta.get("best_valid")


def first_difference(model, other, streams=8, length=400):
    """Per stream (same seed), the index of the first token ``other`` samples differently from
    ``model`` (``length`` when none does)."""
    from seqgen.generation.sampler import generate

    a = generate(model, n=streams, length=length, prime=[0], seed=0).samples
    b = generate(other, n=streams, length=length, prime=[0], seed=0).samples
    out = []
    for x, y in zip(a, b):
        n = min(len(x), len(y))
        diff = np.flatnonzero(x[:n] != y[:n])
        out.append(int(diff[0]) if len(diff) else n)
    return out


def nll_rows(sources):
    """Per checkpoint: the validation NLL with float32, bf16-rounded and fp16-rounded parameters,
    the recorded figure, and where samples (same seed) first change."""
    from seqgen import Model
    from seqgen.storage import checkpoint
    from seqgen.training.trainer import mean_loss

    rows = []
    for name, path in sources:
        ckpt = checkpoint.load(path)
        m = ckpt.model
        windows, recorded = validation_windows(ckpt)
        params32 = {k: np.asarray(v) for k, v in m.params.items()}
        big = max(float(np.abs(v).max()) for v in params32.values())
        # fp16 is normal down to 6.1e-5; below, subnormal (fewer bits), and zero below 3e-8
        tiny = sum(int(((np.abs(v) < 6.1e-5) & (v != 0)).sum()) for v in params32.values())
        row = {"model": name, "arch": f"{m.config.cell} {m.config.num_layers}x{m.config.hidden_size}",
               "params": m.num_params, "recorded": recorded, "max_abs_weight": big, "fp16_subnormal": tiny}
        for label, fn in (("float32", None), ("bf16", round_bf16), ("fp16", round_f16)):
            model = m if fn is None else Model(m.config, {k: fn(v) for k, v in params32.items()})
            row[label] = mean_loss(model, windows.iter_windows())
            if fn is not None:
                row[f"{label}_first_difference"] = first_difference(m, model)
        row["tokens"] = windows.num_tokens
        rows.append(row)
        print(f"  {name}: float32 {row['float32']:.5f} (recorded {recorded:.5f}), bf16 {row['bf16']:.5f} "
              f"({row['bf16'] - row['float32']:+.5f}), fp16 {row['fp16']:.5f} ({row['fp16'] - row['float32']:+.5f}); "
              f"first changed token per stream: bf16 {row['bf16_first_difference']}, "
              f"fp16 {row['fp16_first_difference']}", flush=True)
    return rows


# --------------------------------------------------------------------------- output
def _cache_sizes():
    out = []
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")):
        try:
            level, kind, size = ((idx / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction":
            out.append(f"L{level} {size}")
    return ", ".join(out) or "unknown"




def header():
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine": f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        "caches (per cpu0)": _cache_sizes(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def fmt_rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def mib(nbytes):
    return f"{nbytes / 2**20:.2f} MiB" if nbytes < 2**30 else f"{nbytes / 2**30:.2f} GiB"


def table(headers, rows, markdown):
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    else:
        widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
        lines = ["  ".join(str(c).rjust(w) for c, w in zip(headers, widths))]
        lines += ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows]
    print("\n".join(lines))
    print()


def _best_median(rates):
    return max(rates), statistics.median(rates)


# --------------------------------------------------------------------------- the parts
def part_bandwidth(args, models, md):
    from seqgen.engine.model import ModelConfig

    footprints = [("L1-resident (the sum's own ceiling)", 16 * 1024), ("L2-resident", args.l2_kib * 1024)]
    for H, L in models:
        footprints.append((f"LSTM {L}x{H} weights per token", sampler_bytes_per_token(ModelConfig("lstm", V, H, L))))
    footprints.append(("DRAM (far beyond L3)", args.dram_mib * 2**20))
    rows, out = [], []
    for label, nbytes in footprints:
        array = read_array(nbytes)
        readers = [Reader(array, t, args.pass_time) for t in (1, 2)]
        for i in range(args.passes):
            for r in (readers if i % 2 == 0 else readers[::-1]):
                r.run_pass()
        b1, m1 = _best_median(readers[0].rates)
        b2, m2 = _best_median(readers[1].rates)
        rows.append([label, mib(array.nbytes), f"{m1:.1f}", f"{b1:.1f}", f"{m2:.1f}", f"{b2:.1f}", f"{m2 / m1:.2f}x"])
        out.append({"footprint": label, "bytes": array.nbytes, "one_thread": readers[0].rates,
                    "two_threads": readers[1].rates})
        del readers, array
    print(f"## Read bandwidth, GB/s (float32 sum; two threads: two Python threads, each a nogil kernel summing "
          f"its half); load average now {os.getloadavg()[0]:.2f}")
    table(["footprint", "size", "1 thread median", "1 thread best", "2 threads median", "2 threads best", "2/1"],
          rows, md)
    return out


def part_sampling(args, models, md, dram):
    """dram: the one-thread DRAM bandwidth (GB/s) from the bandwidth part, or None."""
    from seqgen.engine.model import ModelConfig

    rows, out = [], []
    for H, L in models:
        nbytes = sampler_bytes_per_token(ModelConfig("lstm", V, H, L))
        reader = Reader(read_array(nbytes), 1, args.pass_time)
        sampler = Sampler(H, L, args.pass_time if args.quick else max(args.pass_time, 0.3))
        for i in range(args.passes):
            for r in ((reader, sampler) if i % 2 == 0 else (sampler, reader)):
                r.run_pass()
        bwb, bwm = _best_median(reader.rates)
        sb, sm = _best_median(sampler.rates)
        bound_m, bound_b = bwm * 1e9 / nbytes, bwb * 1e9 / nbytes
        row = [f"{L}x{H}", f"{nbytes / 1e6:.3f}", f"{bwm:.1f}", fmt_rate(bound_m), fmt_rate(sm), fmt_rate(sb),
               f"{sm * nbytes / 1e9:.1f}", f"{100 * sm / bound_m:.0f}%", f"{100 * sb / bound_b:.0f}%"]
        if dram:
            row += [fmt_rate(dram * 1e9 / nbytes), f"{100 * sm / (dram * 1e9 / nbytes):.0f}%"]
        rows.append(row)
        out.append({"H": H, "L": L, "bytes_per_token": nbytes, "bandwidth": reader.rates,
                    "tokens_per_s": sampler.rates})
    heads = ["LSTM LxH", "MB read per token", "GB/s at that footprint (1 thread, median)", "bound tokens/s",
             "seqgen n=1 tokens/s (median)", "(best)", "seqgen GB/s of weights", "% of bound (median/median)",
             "% of bound (best/best)"]
    if dram:
        heads += ["DRAM bound tokens/s", "seqgen % of DRAM bound"]
    print(f"## Single-stream sampling against the bandwidth bound; load average now {os.getloadavg()[0]:.2f}")
    table(heads, rows, md)
    return out


def part_gemv(args, models, md):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4096).astype(np.float32)
    print("## Vector code of the prototypes (x86 assembly, whole function)")
    for v in GEMV:
        print("  " + asm_summary(v))
    print()
    rows, out = [], []
    for H, L in models:
        mats = token_products(H, L, rng)
        prods = [Products(v, mats, x, args.pass_time) for v in STORED]
        for i in range(args.passes):
            for pr in (prods if i % 2 == 0 else prods[::-1]):
                pr.run_pass()
        med = {pr.variant: statistics.median(pr.rates) for pr in prods}
        f32_bytes, b16_bytes = (next(pr.nbytes for pr in prods if pr.variant == v) for v in ("float32", "bf16"))
        rows.append([f"{L}x{H}", mib(f32_bytes), mib(b16_bytes), fmt_rate(med["rows_dot"]), fmt_rate(med["float32"]),
                     fmt_rate(med["float32 k8"]), fmt_rate(med["bf16"]), fmt_rate(med["fp16"]),
                     f"{med['bf16'] / med['float32']:.2f}x", f"{med['fp16'] / med['float32']:.2f}x",
                     f"{med['float32'] * f32_bytes / 1e9:.0f} / {med['bf16'] * b16_bytes / 1e9:.0f}"])
        out.append({"H": H, "L": L, "bytes_f32": f32_bytes, "bytes_16": b16_bytes,
                    **{pr.variant: pr.rates for pr in prods}})
    print("## Per-token products alone (x @ W per matrix, one thread), tokens/s, median; "
          f"load average now {os.getloadavg()[0]:.2f}")
    table(["LSTM LxH", "f32 weights", "16-bit weights", "seqgen rows_dot", "prototype f32", "f32 k by 8",
           "prototype bf16", "prototype fp16", "bf16/f32", "fp16/f32", "GB/s f32 / bf16"], rows, md)
    return out


def part_nll(args, md):
    from seqgen.storage import shipped

    sources = [] if args.no_shipped else [(n, shipped.path(n)) for n in shipped.names()]
    sources += [(Path(c).name, Path(c)) for c in args.checkpoint]
    print("## Validation NLL with 16-bit weights (nats/token)")
    rows = nll_rows(sources)
    print()
    table(["model", "arch", "params", "valid tokens", "recorded", "float32", "bf16", "bf16 - f32", "fp16",
           "fp16 - f32", "largest weight", "weights below fp16 normal", "first changed token bf16 / fp16 (median)"],
          [[r["model"], r["arch"], f"{r['params']:,}", f"{r['tokens']:,}", f"{r['recorded']:.5f}",
            f"{r['float32']:.5f}", f"{r['bf16']:.5f}", f"{r['bf16'] - r['float32']:+.5f}", f"{r['fp16']:.5f}",
            f"{r['fp16'] - r['float32']:+.5f}", f"{r['max_abs_weight']:.2f}", f"{r['fp16_subnormal']:,}",
            " / ".join(f"{statistics.median(r[f'{v}_first_difference']):.0f}" for v in ("bf16", "fp16"))]
           for r in rows], md)
    return rows


# --------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--passes", type=int, default=7, help="timed passes per figure (median and best reported)")
    p.add_argument("--pass-time", type=float, default=0.15, help="seconds of work per timed pass")
    p.add_argument("--l2-kib", type=int, default=512, help="the L2-resident footprint (KiB)")
    p.add_argument("--dram-mib", type=int, default=1024, help="the footprint far beyond L3 (MiB)")
    p.add_argument("--models", nargs="+", default=[f"{H}x{L}" for H, L in MODELS],
                   help="LSTM sizes HxL for sampling and gemv (default 128x1 256x1 512x1 512x2)")
    p.add_argument("--checkpoint", nargs="*", default=[], help="more checkpoints for the nll part")
    p.add_argument("--no-shipped", action="store_true", help="nll: skip the shipped models")
    p.add_argument("--quick", action="store_true", help="3 short passes, a 256 MiB DRAM array, LSTM 1x128 and 2x512")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--json", help="write all figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.passes, args.pass_time, args.dram_mib = 3, 0.03, 256
        args.models = ["128x1", "512x2"]
    models = []
    for spec in args.models:
        H, _, L = spec.partition("x")
        models.append((int(H), int(L or 1)))

    info = header()
    print("# seqgen memory-bandwidth benchmark")
    for k, v in info.items():
        print(f"{k}: {v}")
    print(f"passes={args.passes}, ~{args.pass_time}s per timed pass; best and median over passes")
    print()
    results = {"header": info, "args": vars(args)}
    dram = None
    if "bandwidth" in args.parts:
        results["bandwidth"] = part_bandwidth(args, models, args.markdown)
        dram = statistics.median(results["bandwidth"][-1]["one_thread"])
    if "sampling" in args.parts:
        results["sampling"] = part_sampling(args, models, args.markdown, dram)
    if "gemv" in args.parts:
        results["gemv"] = part_gemv(args, models, args.markdown)
    if "nll" in args.parts:
        results["nll"] = part_nll(args, args.markdown)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
