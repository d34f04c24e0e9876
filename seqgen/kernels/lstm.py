"""LSTM kernels. Gate blocks [i, f, g, o] of width n_a; c⟨t⟩ = f·c⟨t−1⟩ + i·g, a⟨t⟩ = o·tanh(c⟨t⟩).

Elementwise work is written as short loops over one row (one batch element), one loop per
expression: LLVM vectorises those, but gives up on a loop that mixes many arrays."""

import numpy as np

from seqgen._numba import jit
from seqgen.kernels.activations import add_sigmoid, add_tanh, tanh


@jit(inline=True)
def _cell(i, f, g, o, c_prev, c_next, tanh_c, a_next):
    for k in range(c_next.shape[0]):
        c = f[k] * c_prev[k] + i[k] * g[k]
        tc = tanh(c)
        c_next[k] = c
        tanh_c[k] = tc
        a_next[k] = o[k] * tc


@jit(inline=True)
def lstm_gates(z, za, c_prev, c_next, tanh_c, a_next):
    """Elementwise step. z (B, 4n_a): input projections in, gate activations out;
    za (B, 4n_a) recurrent product; c_prev, c_next, tanh_c, a_next (B, n_a)."""
    H = a_next.shape[1]
    for b in range(a_next.shape[0]):
        zb, zab = z[b], za[b]
        add_sigmoid(zb[: 2 * H], zab[: 2 * H])
        add_tanh(zb[2 * H : 3 * H], zab[2 * H : 3 * H])
        add_sigmoid(zb[3 * H :], zab[3 * H :])
        _cell(zb[:H], zb[H : 2 * H], zb[2 * H : 3 * H], zb[3 * H :], c_prev[b], c_next[b], tanh_c[b], a_next[b])


@jit
def lstm_forward(Z, A, C, TanhC, WaaT, za):
    """Forward over T steps. Z (T, B, 4n_a): input projections in, gate activations out;
    A, C (T+1, B, n_a) with A[0], C[0] the initial state; TanhC (T, B, n_a);
    WaaT (n_a, 4n_a); za (B, 4n_a) scratch."""
    for t in range(Z.shape[0]):
        np.dot(A[t], WaaT, za)
        lstm_gates(Z[t], za, C[t], C[t + 1], TanhC[t], A[t + 1])


@jit
def _backward_row(d_a, da_next, dc, i, f, g, o, tc, c_prev, dzi, dzf, dzg, dzo):
    """One row of one step; d_a (d a⟨t⟩ from above) is overwritten, dc updated in place."""
    for k in range(d_a.shape[0]):
        d_a[k] += da_next[k]
    for k in range(d_a.shape[0]):
        dzo[k] = d_a[k] * tc[k] * o[k] * (1.0 - o[k])
    for k in range(d_a.shape[0]):
        dc[k] += d_a[k] * o[k] * (1.0 - tc[k] * tc[k])
    for k in range(d_a.shape[0]):
        dzi[k] = dc[k] * g[k] * i[k] * (1.0 - i[k])
    for k in range(d_a.shape[0]):
        dzf[k] = dc[k] * c_prev[k] * f[k] * (1.0 - f[k])
    for k in range(d_a.shape[0]):
        dzg[k] = dc[k] * i[k] * (1.0 - g[k] * g[k])
    for k in range(d_a.shape[0]):
        dc[k] *= f[k]


@jit
def lstm_backward(dA, Z, C, TanhC, Waa, dZ, da, dc):
    """Backward over T steps. dA (T, B, n_a) from above (overwritten); Z, C, TanhC from
    lstm_forward; Waa (4n_a, n_a); dZ (T, B, 4n_a) receives d pre-activations; da, dc (B, n_a)
    hold the gradients w.r.t. the final state on entry and the initial state on return."""
    T, B, H = dA.shape
    for t in range(T - 1, -1, -1):
        for b in range(B):
            z, dz = Z[t, b], dZ[t, b]
            _backward_row(dA[t, b], da[b], dc[b], z[:H], z[H : 2 * H], z[2 * H : 3 * H], z[3 * H :],
                          TanhC[t, b], C[t, b], dz[:H], dz[H : 2 * H], dz[2 * H : 3 * H], dz[3 * H :])
        np.dot(dZ[t], Waa, da)
