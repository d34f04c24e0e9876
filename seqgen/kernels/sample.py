"""The one-to-many sampler: N streams advance together, each sampled token is the next input.

One source, one compiled kernel per cell (0 rnn, 1 lstm, 2 gru) and per use of top-k / top-p
(``sampler_kernel``): sampling compiles, caches and loads only the variant it runs. Per step: per
layer one (N, n_x) × (n_x, G·n_a) and one (N, n_a) × (n_a, G·n_a) product, the cell's gate
kernel, then the output product and the choice of the next token for each stream.

Every sampling parameter is per stream ((N,) arrays), so streams of different requests share one
step. The products are ``rows_dot``, not BLAS: a BLAS product's float32 row i depends on how many
rows the batch has (gemv for one row, other gemm tails for others), which changed sampled tokens;
``rows_dot`` sums each row in one fixed order, so a stream's tokens do not depend on its batch.

Compile time is most of a cold start, so the kernel is one compiled function: what it calls is
inlined (``@jit(inline=True)``, here and in the gate kernels; a function compiled on its
own is compiled, optimised and turned into machine code again inside each caller), rows_dot, the
costliest, is called from one place (every inlined call site is another copy for numba and LLVM),
and the scratch arrays come from ``workspace`` (every np.empty signature in a kernel is one more
function to compile).
"""

import math
import threading

import numpy as np

from seqgen._numba import jit
from seqgen.kernels.constraints import apply_rules, log_prob, notes_after
from seqgen.kernels.gru import gru_gates
from seqgen.kernels.loss import embed
from seqgen.kernels.lstm import lstm_gates
from seqgen.kernels.rnn import rnn_gates


@jit(inline=True)
def rows_dot(x, W, out):
    """out (N, M) = x (N, K) @ W (K, M); every row is summed over k = 0..K−1 in order, whatever N
    is and wherever the row sits, so its float32 result does not depend on the batch. Rows go
    four at a time (one pass over W serves four streams) with k unrolled by four, which keeps
    it within about 1.5x of OpenBLAS at 64 rows and level with it at one row; the last K % 4
    terms of every row come after.

    One function, inlined: numba pastes it into its caller (the sampler kernel has one call
    site) instead of compiling it on its own and then again inside the caller, and each helper
    function inlined costs another pass of numba's front end."""
    N = x.shape[0]
    N4 = N - N % 4
    K4 = W.shape[0] - W.shape[0] % 4
    M = out.shape[1]
    for n in range(N):
        for j in range(M):
            out[n, j] = 0.0
    for n in range(0, N4, 4):
        x0, x1, x2, x3 = x[n], x[n + 1], x[n + 2], x[n + 3]
        o0, o1, o2, o3 = out[n], out[n + 1], out[n + 2], out[n + 3]
        for k in range(0, K4, 4):
            w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
            a00, a01, a02, a03 = x0[k], x0[k + 1], x0[k + 2], x0[k + 3]
            a10, a11, a12, a13 = x1[k], x1[k + 1], x1[k + 2], x1[k + 3]
            a20, a21, a22, a23 = x2[k], x2[k + 1], x2[k + 2], x2[k + 3]
            a30, a31, a32, a33 = x3[k], x3[k + 1], x3[k + 2], x3[k + 3]
            for j in range(M):
                v0, v1, v2, v3 = w0[j], w1[j], w2[j], w3[j]
                t = o0[j]
                t += a00 * v0
                t += a01 * v1
                t += a02 * v2
                t += a03 * v3
                o0[j] = t
                t = o1[j]
                t += a10 * v0
                t += a11 * v1
                t += a12 * v2
                t += a13 * v3
                o1[j] = t
                t = o2[j]
                t += a20 * v0
                t += a21 * v1
                t += a22 * v2
                t += a23 * v3
                o2[j] = t
                t = o3[j]
                t += a30 * v0
                t += a31 * v1
                t += a32 * v2
                t += a33 * v3
                o3[j] = t
    for n in range(N4, N):  # the rows left over, one at a time, the same sums
        xn, o = x[n], out[n]
        for k in range(0, K4, 4):
            a0, a1, a2, a3 = xn[k], xn[k + 1], xn[k + 2], xn[k + 3]
            w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
            for j in range(M):
                t = o[j]
                t += a0 * w0[j]
                t += a1 * w1[j]
                t += a2 * w2[j]
                t += a3 * w3[j]
                o[j] = t
    for n in range(N):  # the last K % 4 terms of every row
        xn, o = x[n], out[n]
        for k in range(K4, W.shape[0]):
            a = xn[k]
            w = W[k]
            for j in range(M):
                o[j] += a * w[j]


@jit(inline=True)
def _copy(src, dst):
    """dst[:] = src for (N, K) arrays, as a loop: numba's slice assignment compiles a shape-error
    message builder (string formatting, ~3 s of a cold start)."""
    for n in range(dst.shape[0]):
        for k in range(dst.shape[1]):
            dst[n, k] = src[n, k]


@jit(inline=True)
def _before(a, b):
    """a sorts before b in ascending order, NaN last (numpy's order)."""
    return a < b or (b != b and a == a)


@jit(inline=True)
def _sort_descending(weights, order, spare):
    """order (V,) = np.argsort(-weights, kind="mergesort"): indices by descending weight, ties
    in index order (a stable bottom-up merge sort; numba's argsort adds ~1.2 s to a cold start).
    spare (V,) is scratch."""
    V = weights.shape[0]
    for v in range(V):
        order[v] = v
    src, dst = order, spare
    in_spare = False
    width = 1
    while width < V:
        for lo in range(0, V, 2 * width):
            mid = min(lo + width, V)
            hi = min(lo + 2 * width, V)
            i, j = lo, mid
            for k in range(lo, hi):
                if j < hi and (i >= mid or _before(-weights[src[j]], -weights[src[i]])):
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
        src, dst = dst, src
        in_spare = not in_spare
        width *= 2
    if in_spare:
        for v in range(V):
            order[v] = src[v]


@jit(inline=True)
def _add_bias(z, bias):
    """z (N, K) += bias (K,)."""
    for n in range(z.shape[0]):
        for k in range(z.shape[1]):
            z[n, k] += bias[k]


@jit(inline=True)
def _weigh(row, inv_temperature, greedy, weights):
    """The weights (V,) of one row of logits (V,): exp((row − max) · inv_temperature), untempered
    for a greedy stream. Returns (the likeliest token, the max, log of the untempered sum, the
    sum of the weights)."""
    V = row.shape[0]
    m = row[0]
    best = 0
    for v in range(1, V):
        if row[v] > m:
            m = row[v]
            best = v
    norm = 0.0
    for v in range(V):
        w = math.exp(row[v] - m)
        weights[v] = w
        norm += w
    log_norm = math.log(norm)
    total = norm
    if not greedy and inv_temperature != 1.0:
        total = 0.0
        for v in range(V):
            w = math.exp((row[v] - m) * inv_temperature)
            weights[v] = w
            total += w
    return best, m, log_norm, total


@jit(inline=True)
def _draw(weights, total, u):
    """The token whose cumulative weight first exceeds u · total (u in [0, 1))."""
    target = u * total
    cumulative = 0.0
    last = 0
    for v in range(weights.shape[0]):
        if weights[v] > 0.0:
            last = v
            cumulative += weights[v]
            if cumulative > target:
                return v
    return last


@jit(inline=True)
def _draw_truncated(weights, total, u, top_k, top_p, order, spare):
    """Like _draw, among the top_k heaviest tokens (0: all) whose weights reach top_p · total."""
    V = weights.shape[0]
    _sort_descending(weights, order, spare)
    keep = V if not 0 < top_k < V else top_k
    if top_p < 1.0:
        cumulative = 0.0
        for r in range(keep):
            cumulative += weights[order[r]]
            if cumulative >= top_p * total:
                keep = r + 1
                break
    total = 0.0
    for r in range(keep):
        total += weights[order[r]]
    target = u * total
    cumulative = 0.0
    for r in range(keep):
        cumulative += weights[order[r]]
        if cumulative > target:
            return order[r]
    return order[keep - 1]


def _build(cell, truncate, rules):
    """The sampler kernel for one cell code (0 rnn, 1 lstm, 2 gru), with (``truncate``) or without
    top-k / top-p, with (``rules``) or without sampling rules. ``cell``, ``truncate`` and ``rules``
    are constants of the closure, so numba drops the other branches before typing and compiles
    only what they use (a cold start compiles about half as much); each variant is cached on its
    own."""

    @jit
    def sample_steps(WaxT0, WxT, WaaT, ba, bn, WyaT, by, state, ids, uniforms, used, inv_temperature, top_k, top_p,
                     greedy, stop_id, done, remaining, out, out_logp, ruled, classes, max_notes, step_notes,
                     penalty, window, ngram, history, hist_len, work):
        N = ids.shape[0]
        L = state.shape[0]
        V = WyaT.shape[1]
        C = uniforms.shape[1]
        z, za, x, c_next, scratch, logits, adjusted, weights, order, spare, mark, tick = work
        for k in range(out.shape[0]):
            all_done = True
            for n in range(N):
                if not done[n] and remaining[n] > 0:
                    all_done = False
                    if used[n] >= C:
                        return k
            if all_done:
                out[k:] = -1
                out_logp[k:] = 0.0
                return k
            # One step through every layer. The products run in one loop with one call of rows_dot,
            # in this order: layer 0's recurrent product, then each further layer's input and
            # recurrent products, then the output product (each call site of an inlined function
            # is another copy for numba and LLVM to compile, and rows_dot is the costliest code).
            # New states go to separate arrays first: a gate loop that reads and writes the same
            # array is not vectorised (measured 3x slower).
            embed(ids, WaxT0, ba[0], z)
            for p in range(2 * L):
                l = (p + 1) // 2  # the layer of this product (L: the output)
                if p == 2 * L - 1:
                    src, W, dst = x, WyaT, logits
                elif p % 2 == 1:
                    src, W, dst = x, WxT[l - 1], z
                else:
                    src, W, dst = state[l, 0], WaaT[l], za
                rows_dot(src, W, dst)
                if p % 2 == 1 and p < 2 * L - 1:
                    _add_bias(z, ba[l])
                elif p % 2 == 0:  # cell is a constant: numba compiles one cell's gates
                    if cell == 0:
                        rnn_gates(z, za, x)
                    elif cell == 1:
                        lstm_gates(z, za, state[l, 1], c_next, scratch, x)
                        _copy(c_next, state[l, 1])
                    else:
                        gru_gates(z, za, bn[l], state[l, 0], scratch, x)
                    _copy(x, state[l, 0])
            for n in range(N):
                if done[n] or remaining[n] <= 0:
                    out[k, n] = -1
                    out_logp[k, n] = 0.0
                    continue
                row = logits[n]
                row += by
                pick = row
                if rules and ruled[n]:
                    apply_rules(row, adjusted, classes[n], max_notes[n], step_notes[n], penalty[n], window[n],
                                ngram[n], history[n], hist_len[n], mark, tick)
                    pick = adjusted
                best, m, log_norm, total = _weigh(pick, inv_temperature[n], greedy[n], weights)
                u = uniforms[n, used[n]]
                if greedy[n]:
                    token = best
                elif truncate and ((0 < top_k[n] < V) or top_p[n] < 1.0):
                    token = _draw_truncated(weights, total, u, top_k[n], top_p[n], order, spare)
                else:
                    token = _draw(weights, total, u)
                lp = pick[token] - m - log_norm
                if rules and ruled[n]:
                    lp = log_prob(row, token)  # under the model without the rules
                    step_notes[n] = notes_after(token, classes[n], step_notes[n])
                    history[n, hist_len[n]] = token
                    hist_len[n] += 1
                used[n] += 1
                remaining[n] -= 1
                out[k, n] = token
                out_logp[k, n] = lp
                ids[n] = token
                if token == stop_id[n]:
                    done[n] = True
        return out.shape[0]

    return sample_steps


PAGE = 4096


def _scratch(shape, dtype, offset):
    """np.empty(shape, dtype) starting ``offset`` bytes into a page. numpy puts a large array 16
    bytes into fresh pages, the weights too; with the weight rows and the output rows of rows_dot
    at the same offset in their pages (4 KB apart: G·n_a = 1024 float32), or two arrays a gate
    loop reads and writes, loads and stores alias in the CPU's 4 KB store-forwarding check, which
    made LSTM 1 × 256 with 64 streams ~40% slower. So each scratch array gets its own offset, all
    of them away from 16."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(size + PAGE, np.uint8)
    start = (offset - buf.ctypes.data) % PAGE
    return buf[start:start + size].view(dtype).reshape(shape)


def workspace(WaaT, WyaT, N):
    """The sample_steps scratch arrays for N streams. Allocated here rather than in the kernel:
    each np.empty / np.zeros signature in a kernel is one more function for numba to compile
    (~0.4 s of a cold start for the twelve arrays)."""
    _, H, GH = WaaT.shape
    V = WyaT.shape[1]
    dt = WaaT.dtype
    shapes = ((N, GH), (N, GH), (N, H), (N, H), (N, H), (N, V))  # z, za, x, c_next, scratch, logits
    return tuple(_scratch(shape, dt, 2112 + 320 * i) for i, shape in enumerate(shapes)) + (
        np.empty(V, dt), np.empty(V), np.empty(V, np.int64), np.empty(V, np.int64), np.zeros(V, np.int64),
        np.zeros(1, np.int64))


_KERNELS = {}
_KERNELS_LOCK = threading.Lock()  # one dispatcher per variant, so concurrent first calls compile it once


def sampler_kernel(cell, truncate, rules):
    """``sample_steps(WaxT0, WxT, WaaT, ba, bn, WyaT, by, state, ids, uniforms, used, inv_temperature,
    top_k, top_p, greedy, stop_id, done, remaining, out, out_logp, ruled, classes, max_notes,
    step_notes, penalty, window, ngram, history, hist_len, work)`` for cell code ``cell``; with
    ``truncate`` false it ignores top_k and top_p, with ``rules`` false the rule arrays. It
    generates up to K tokens for N streams, each with its own sampling parameters.

    WaxT0 (V, G·n_a); WxT (L−1, n_a, G·n_a); WaaT (L, n_a, G·n_a); ba (L, G·n_a); bn (L, n_a);
    WyaT (n_a, V); by (V,); state (L, S, N, n_a) and ids (N,) (the next inputs) are advanced in
    place. uniforms (N, C) in [0, 1): stream n's own draws, used[n] of them consumed (advanced in
    place); the kernel stops early when a running stream has none left. inv_temperature, top_p
    (N,) float64; top_k, stop_id (N,) int64 (stop_id < 0: never stops); greedy (N,) bool;
    done (N,) bool: streams that emitted their stop_id (set in place); remaining (N,) int64: tokens
    each stream may still draw (decremented in place; 0 finishes it too); out (K, N) int32
    receives tokens, -1 once done; out_logp (K, N) float64 each token's log-probability under
    the untempered model. Returns the number of steps taken.

    Streams where ruled (N,) bool is set are sampled under their rules (kernels/constraints.py):
    classes (N, V) uint8; max_notes (N,) int64 (0: no cap) and step_notes (N,) int64 (advanced
    in place); penalty (N,) float64; window, ngram (N,) int64; history (N, C') int32 with
    hist_len (N,) int64 entries used: each drawn token is appended (C' must have room for K
    more). Their log-probabilities are still those of the model without the rules.

    work: the kernel's scratch arrays, ``workspace(WaaT, WyaT, N)``.
    """
    key = int(cell), bool(truncate), bool(rules)
    with _KERNELS_LOCK:
        if key not in _KERNELS:
            _KERNELS[key] = _build(*key)
        return _KERNELS[key]
