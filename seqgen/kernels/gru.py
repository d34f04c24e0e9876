"""GRU kernels. Gate blocks [r, z, n] of width n_a, reset applied after the recurrent product:
n = tanh(zx_n + r·(za_n + bn)), a⟨t⟩ = (1 − z)·n + z·a⟨t−1⟩.

Elementwise work is written as short loops over one row (one batch element), one loop per
expression: LLVM vectorises those, but gives up on a loop that mixes many arrays."""

import numpy as np

from seqgen._numba import jit
from seqgen.kernels.activations import add_sigmoid, tanh


@jit(inline=True)
def _candidate(n, hn, za_n, bn, r):
    for k in range(n.shape[0]):
        h = za_n[k] + bn[k]
        hn[k] = h
        n[k] = tanh(n[k] + r[k] * h)


@jit(inline=True)
def _mix(a_next, u, n, a_prev):
    for k in range(a_next.shape[0]):
        a_next[k] = (1.0 - u[k]) * n[k] + u[k] * a_prev[k]


@jit(inline=True)
def gru_gates(z, za, bn, a_prev, hn, a_next):
    """Elementwise step. z (B, 3n_a): input projections in, gate activations [r, z, n] out;
    za (B, 3n_a) recurrent product; bn (n_a,); a_prev, hn, a_next (B, n_a); hn receives
    za_n + bn (needed by the backward pass)."""
    H = a_next.shape[1]
    for b in range(a_next.shape[0]):
        zb, zab = z[b], za[b]
        add_sigmoid(zb[: 2 * H], zab[: 2 * H])
        _candidate(zb[2 * H :], hn[b], zab[2 * H :], bn, zb[:H])
        _mix(a_next[b], zb[H : 2 * H], zb[2 * H :], a_prev[b])


@jit
def gru_forward(Z, A, HN, WaaT, bn, za):
    """Forward over T steps. Z (T, B, 3n_a): input projections in, gate activations out;
    A (T+1, B, n_a) with A[0] = a0; HN (T, B, n_a); WaaT (n_a, 3n_a); bn (n_a,);
    za (B, 3n_a) scratch."""
    for t in range(Z.shape[0]):
        np.dot(A[t], WaaT, za)
        gru_gates(Z[t], za, bn, A[t], HN[t], A[t + 1])


@jit
def _backward_row(d_a, da_next, r, u, n, hn, a_prev, dzx, dza, da_direct):
    """One row of one step; d_a (d a⟨t⟩ from above) is overwritten."""
    H = d_a.shape[0]
    for k in range(H):
        d_a[k] += da_next[k]
    for k in range(H):
        da_direct[k] = d_a[k] * u[k]
    for k in range(H):
        dzx[2 * H + k] = d_a[k] * (1.0 - u[k]) * (1.0 - n[k] * n[k])
    for k in range(H):
        dzx[k] = dzx[2 * H + k] * hn[k] * r[k] * (1.0 - r[k])
    for k in range(H):
        dzx[H + k] = d_a[k] * (a_prev[k] - n[k]) * u[k] * (1.0 - u[k])
    for k in range(2 * H):
        dza[k] = dzx[k]
    for k in range(H):
        dza[2 * H + k] = dzx[2 * H + k] * r[k]


@jit
def gru_backward(dA, Z, A, HN, Waa, dZx, dZa, da, da_direct):
    """Backward over T steps. dA (T, B, n_a) from above (overwritten); Z, A, HN from
    gru_forward; Waa (3n_a, n_a); dZx, dZa (T, B, 3n_a) receive d pre-activations on the input
    and the recurrent side (they differ in the n block by the factor r); da (B, n_a) holds
    d a⟨T⟩ on entry and d a⟨0⟩ on return; da_direct (B, n_a) scratch."""
    T, B, H = dA.shape
    for t in range(T - 1, -1, -1):
        for b in range(B):
            z = Z[t, b]
            _backward_row(dA[t, b], da[b], z[:H], z[H : 2 * H], z[2 * H :], HN[t, b], A[t, b],
                          dZx[t, b], dZa[t, b], da_direct[b])
        np.dot(dZa[t], Waa, da)
        da += da_direct
