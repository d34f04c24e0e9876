"""The one-to-many sampler: N streams advance together, each sampled token is the next input.

One kernel for all cells (``cell``: 0 rnn, 1 lstm, 2 gru) so sampling loads one compiled function.
Per step: per layer one (N, n_x) × (n_x, G·n_a) and one (N, n_a) × (n_a, G·n_a) product, the
cell's gate kernel, then the output product and the choice of the next token for each stream.

Every sampling parameter is per stream ((N,) arrays), so streams of different requests share one
step. The products are ``rows_dot``, not BLAS: a BLAS product's float32 row i depends on how many
rows the batch has (gemv for one row, other gemm tails for others), which changed sampled tokens;
``rows_dot`` sums each row in one fixed order, so a stream's tokens do not depend on its batch.
"""

import math

import numpy as np

from seqgen._numba import jit
from seqgen.kernels.constraints import apply_rules, log_prob, notes_after
from seqgen.kernels.gru import gru_gates
from seqgen.kernels.loss import embed
from seqgen.kernels.lstm import lstm_gates
from seqgen.kernels.rnn import rnn_gates


@jit
def _rows_tail(xn, W, o, k0):
    for k in range(k0, W.shape[0]):
        a = xn[k]
        w = W[k]
        for j in range(o.shape[0]):
            o[j] += a * w[j]


@jit
def _one_row(xn, W, o):
    K4 = W.shape[0] - W.shape[0] % 4
    for k in range(0, K4, 4):
        a0, a1, a2, a3 = xn[k], xn[k + 1], xn[k + 2], xn[k + 3]
        w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
        for j in range(o.shape[0]):
            t = o[j]
            t += a0 * w0[j]
            t += a1 * w1[j]
            t += a2 * w2[j]
            t += a3 * w3[j]
            o[j] = t
    _rows_tail(xn, W, o, K4)


@jit
def _four_rows(x0, x1, x2, x3, W, o0, o1, o2, o3):
    """Four rows per pass over W; each row's sum runs over k in the same order as in _one_row."""
    K4 = W.shape[0] - W.shape[0] % 4
    for k in range(0, K4, 4):
        w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
        a00, a01, a02, a03 = x0[k], x0[k + 1], x0[k + 2], x0[k + 3]
        a10, a11, a12, a13 = x1[k], x1[k + 1], x1[k + 2], x1[k + 3]
        a20, a21, a22, a23 = x2[k], x2[k + 1], x2[k + 2], x2[k + 3]
        a30, a31, a32, a33 = x3[k], x3[k + 1], x3[k + 2], x3[k + 3]
        for j in range(o0.shape[0]):
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
    _rows_tail(x0, W, o0, K4)
    _rows_tail(x1, W, o1, K4)
    _rows_tail(x2, W, o2, K4)
    _rows_tail(x3, W, o3, K4)


@jit
def rows_dot(x, W, out):
    """out (N, M) = x (N, K) @ W (K, M); every row is summed over k = 0..K−1 in order, whatever N
    is and wherever the row sits, so its float32 result does not depend on the batch. Rows go
    four at a time (one pass over W serves four streams) with k unrolled by four, which keeps
    it within about 1.5x of OpenBLAS at 64 rows and level with it at one row."""
    N = x.shape[0]
    N4 = N - N % 4
    out[:] = 0.0
    for n in range(0, N4, 4):
        _four_rows(x[n], x[n + 1], x[n + 2], x[n + 3], W, out[n], out[n + 1], out[n + 2], out[n + 3])
    for n in range(N4, N):
        _one_row(x[n], W, out[n])


@jit
def _advance(cell, ids, WaxT0, WxT, WaaT, ba, bn, state, z, za, x, c_next, scratch):
    """Feed ids (N,) through every layer, updating state (L, S, N, n_a) in place; the top
    layer's output is left in x (N, n_a). New states go to separate arrays first: a gate loop
    that reads and writes the same array is not vectorised (measured 3x slower)."""
    for l in range(state.shape[0]):
        if l == 0:
            embed(ids, WaxT0, ba[0], z)
        else:
            rows_dot(x, WxT[l - 1], z)
            z += ba[l]
        a = state[l, 0]
        rows_dot(a, WaaT[l], za)
        if cell == 0:
            rnn_gates(z, za, x)
        elif cell == 1:
            lstm_gates(z, za, state[l, 1], c_next, scratch, x)
            state[l, 1] = c_next
        else:
            gru_gates(z, za, bn[l], a, scratch, x)
        a[:] = x


@jit
def _choose(row, u, inv_temperature, top_k, top_p, greedy, order, weights):
    """Pick a token from one row of logits (V,) with a uniform u in [0, 1).
    Returns (token, its log-probability under the untempered model)."""
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
    if greedy:
        return best, row[best] - m - log_norm
    total = norm
    if inv_temperature != 1.0:
        total = 0.0
        for v in range(V):
            w = math.exp((row[v] - m) * inv_temperature)
            weights[v] = w
            total += w
    if (0 < top_k < V) or top_p < 1.0:
        order[:] = np.argsort(-weights, kind="mergesort")
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
                return order[r], row[order[r]] - m - log_norm
        return order[keep - 1], row[order[keep - 1]] - m - log_norm
    target = u * total
    cumulative = 0.0
    last = 0
    for v in range(V):
        if weights[v] > 0.0:
            last = v
            cumulative += weights[v]
            if cumulative > target:
                return v, row[v] - m - log_norm
    return last, row[last] - m - log_norm


@jit
def sample_steps(cell, WaxT0, WxT, WaaT, ba, bn, WyaT, by, state, ids, uniforms, used,
                 inv_temperature, top_k, top_p, greedy, stop_id, done, remaining, out, out_logp,
                 ruled, classes, max_notes, step_notes, penalty, window, ngram, history, hist_len):
    """Generate up to K tokens for N streams, each with its own sampling parameters.

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
    """
    N = ids.shape[0]
    H = state.shape[3]
    GH = WaaT.shape[2]
    V = WyaT.shape[1]
    C = uniforms.shape[1]
    z = np.empty((N, GH), dtype=WaaT.dtype)
    za = np.empty((N, GH), dtype=WaaT.dtype)
    x = np.empty((N, H), dtype=WaaT.dtype)
    c_next = np.empty((N, H), dtype=WaaT.dtype)
    scratch = np.empty((N, H), dtype=WaaT.dtype)
    logits = np.empty((N, V), dtype=WaaT.dtype)
    order = np.empty(V, dtype=np.int64)
    weights = np.empty(V, dtype=np.float64)
    adjusted = np.empty(V, dtype=WaaT.dtype)
    mark = np.zeros(V, dtype=np.int64)
    tick = np.zeros(1, dtype=np.int64)
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
        _advance(cell, ids, WaxT0, WxT, WaaT, ba, bn, state, z, za, x, c_next, scratch)
        rows_dot(x, WyaT, logits)
        for n in range(N):
            if done[n] or remaining[n] <= 0:
                out[k, n] = -1
                out_logp[k, n] = 0.0
                continue
            row = logits[n]
            row += by
            if ruled[n]:
                apply_rules(row, adjusted, classes[n], max_notes[n], step_notes[n], penalty[n], window[n], ngram[n],
                            history[n], hist_len[n], mark, tick)
                token, lp = _choose(adjusted, uniforms[n, used[n]], inv_temperature[n], top_k[n], top_p[n],
                                    greedy[n], order, weights)
                lp = log_prob(row, token)
                step_notes[n] = notes_after(token, classes[n], step_notes[n])
                history[n, hist_len[n]] = token
                hist_len[n] += 1
            else:
                token, lp = _choose(row, uniforms[n, used[n]], inv_temperature[n], top_k[n], top_p[n], greedy[n],
                                    order, weights)
            used[n] += 1
            remaining[n] -= 1
            out[k, n] = token
            out_logp[k, n] = lp
            ids[n] = token
            if token == stop_id[n]:
                done[n] = True
    return out.shape[0]
