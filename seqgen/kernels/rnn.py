"""Basic tanh RNN kernels: a⟨t⟩ = tanh(Zx⟨t⟩ + a⟨t−1⟩·WaaT), Zx = input projection + ba.

Elementwise work is written as short loops over one row (one batch element), one loop per
expression: LLVM vectorises those, but gives up on a loop that mixes many arrays."""

import numpy as np

from seqgen._numba import jit
from seqgen.kernels.activations import tanh


@jit(inline=True)
def _tanh_sum(out, x, y):
    for k in range(out.shape[0]):
        out[k] = tanh(x[k] + y[k])


@jit
def _dtanh(dz, da_above, da_next, a):
    for k in range(dz.shape[0]):
        dz[k] = (da_above[k] + da_next[k]) * (1.0 - a[k] * a[k])


@jit(inline=True)
def rnn_gates(zx, za, a_next):
    """Elementwise step: a_next = tanh(zx + za); all (B, n_a)."""
    for b in range(a_next.shape[0]):
        _tanh_sum(a_next[b], zx[b], za[b])


@jit
def rnn_forward(Zx, A, WaaT, za):
    """Forward over T steps. Zx (T, B, n_a); A (T+1, B, n_a) with A[0] = a0, filled in place;
    WaaT (n_a, n_a); za (B, n_a) scratch."""
    for t in range(Zx.shape[0]):
        np.dot(A[t], WaaT, za)
        rnn_gates(Zx[t], za, A[t + 1])


@jit
def rnn_backward(dA, A, Waa, dZ, da):
    """Backward over T steps. dA (T, B, n_a) loss gradient w.r.t. each a⟨t⟩ from above;
    A from rnn_forward; Waa (n_a, n_a); dZ (T, B, n_a) receives d pre-activation;
    da (B, n_a) holds d a⟨T⟩ on entry and d a⟨0⟩ on return."""
    for t in range(dA.shape[0] - 1, -1, -1):
        for b in range(dA.shape[1]):
            _dtanh(dZ[t, b], dA[t, b], da[b], A[t + 1, b])
        np.dot(dZ[t], Waa, da)
