"""The one-to-many sampler: N streams advance together, each sampled token is the next input.

One kernel for all cells (``cell``: 0 rnn, 1 lstm, 2 gru) so sampling loads one compiled function.
Per step: per layer one (N, n_x) × (n_x, G·n_a) and one (N, n_a) × (n_a, G·n_a) product, the
cell's gate kernel, then the output product and the choice of the next token for each stream.
"""

import math

import numpy as np

from seqgen._numba import jit
from seqgen.kernels.gru import gru_gates
from seqgen.kernels.loss import embed
from seqgen.kernels.lstm import lstm_gates
from seqgen.kernels.rnn import rnn_gates


@jit
def _advance(cell, ids, WaxT0, WxT, WaaT, ba, bn, state, z, za, x, c_next, scratch):
    """Feed ids (N,) through every layer, updating state (L, S, N, n_a) in place; the top
    layer's output is left in x (N, n_a). New states go to separate arrays first: a gate loop
    that reads and writes the same array is not vectorised (measured 3x slower)."""
    for l in range(state.shape[0]):
        if l == 0:
            embed(ids, WaxT0, ba[0], z)
        else:
            np.dot(x, WxT[l - 1], z)
            z += ba[l]
        a = state[l, 0]
        np.dot(a, WaaT[l], za)
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
def sample_steps(cell, WaxT0, WxT, WaaT, ba, bn, WyaT, by, state, ids, uniforms,
                 inv_temperature, top_k, top_p, greedy, stop_id, done, out, logp):
    """Generate up to K tokens for N streams.

    WaxT0 (V, G·n_a); WxT (L−1, n_a, G·n_a); WaaT (L, n_a, G·n_a); ba (L, G·n_a); bn (L, n_a);
    WyaT (n_a, V); by (V,); state (L, S, N, n_a) and ids (N,) (the next inputs) are advanced in
    place; uniforms (K, N) in [0, 1); done (N,) bool: finished streams (a stream finishes after
    emitting stop_id; stop_id < 0 never stops); out (K, N) int32 receives tokens, -1 once done;
    logp (N,) accumulates the log-probability of the emitted tokens. Returns steps taken.
    """
    N = ids.shape[0]
    H = state.shape[3]
    GH = WaaT.shape[2]
    V = WyaT.shape[1]
    z = np.empty((N, GH), dtype=WaaT.dtype)
    za = np.empty((N, GH), dtype=WaaT.dtype)
    x = np.empty((N, H), dtype=WaaT.dtype)
    c_next = np.empty((N, H), dtype=WaaT.dtype)
    scratch = np.empty((N, H), dtype=WaaT.dtype)
    logits = np.empty((N, V), dtype=WaaT.dtype)
    order = np.empty(V, dtype=np.int64)
    weights = np.empty(V, dtype=np.float64)
    for k in range(uniforms.shape[0]):
        all_done = True
        for n in range(N):
            if not done[n]:
                all_done = False
        if all_done:
            out[k:] = -1
            return k
        _advance(cell, ids, WaxT0, WxT, WaaT, ba, bn, state, z, za, x, c_next, scratch)
        np.dot(x, WyaT, logits)
        for n in range(N):
            if done[n]:
                out[k, n] = -1
                continue
            row = logits[n]
            row += by
            token, lp = _choose(row, uniforms[k, n], inv_temperature, top_k, top_p, greedy, order, weights)
            out[k, n] = token
            ids[n] = token
            logp[n] += lp
            if token == stop_id:
                done[n] = True
    return uniforms.shape[0]
