"""Fused softmax + cross-entropy + gradient, and the embedding (row-gather) kernels."""

import math

from seqgen._numba import jit


@jit
def count_targets(targets):
    """Number of valid targets (>= 0) in targets (N,)."""
    count = 0
    for n in range(targets.shape[0]):
        if targets[n] >= 0:
            count += 1
    return count


@jit
def softmax_xent(logits, targets):
    """logits (N, V) are overwritten with d loss / d logits of the mean NLL over valid targets
    (targets (N,) int, < 0 = ignored). Returns (summed NLL, number of valid targets)."""
    count = count_targets(targets)
    return softmax_xent_scaled(logits, targets, 1.0 / max(count, 1)), count


@jit
def softmax_xent_scaled(logits, targets, scale):
    """As softmax_xent, with d loss / d logits scaled by ``scale`` (1 / the number of valid
    targets of the whole batch, when this is a block of it). Returns the summed NLL."""
    N, V = logits.shape
    total = 0.0
    for n in range(N):
        row = logits[n]
        y = targets[n]
        if y < 0:
            row[:] = 0.0
            continue
        m = row[0]
        for v in range(1, V):
            if row[v] > m:
                m = row[v]
        shifted_target = row[y] - m
        s = 0.0
        for v in range(V):
            e = math.exp(row[v] - m)
            row[v] = e
            s += e
        total += math.log(s) - shifted_target
        inv = scale / s
        for v in range(V):
            row[v] *= inv
        row[y] -= scale
    return total


@jit(inline=True)
def embed(ids, WxT, bias, out):
    """Input projection for token inputs: out[n] = WxT[ids[n]] + bias. ids (N,), WxT (V, K),
    bias (K,), out (N, K)."""
    for n in range(ids.shape[0]):
        row = WxT[ids[n]]
        for k in range(out.shape[1]):
            out[n, k] = row[k] + bias[k]


@jit
def embed_backward(ids, dZ, dWxT):
    """Scatter-add the rows of dZ (N, K) into dWxT (V, K) at ids (N,); dWxT is zeroed first."""
    dWxT[:] = 0.0
    for n in range(ids.shape[0]):
        row = dWxT[ids[n]]
        for k in range(dZ.shape[1]):
            row[k] += dZ[n, k]
