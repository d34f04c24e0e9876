"""tanh and sigmoid for the kernels: exact in float64, a fast rational approximation in float32.

numba's pip build cannot vectorise libm's tanh/exp (no SVML), and they dominated the float32
step time (~8.6 ns per call against ~2.4 ns here, measured on 2M values). The float32 version is
the [13/6] rational approximation Eigen uses for ``tanh`` (max relative error 3.4e-7, i.e. a few
ulp of float32), built from multiplies and one divide so LLVM vectorises it. float64 keeps the
libm functions, so float64 kernels match the numpy reference to rounding.
"""

import math

import numpy as np
from numba import types
from numba.extending import overload

from seqgen._numba import jit

_F = np.float32
_CLAMP = _F(7.90531110763549805)  # tanh rounds to ±1 in float32 beyond this
_ALPHA = tuple(_F(v) for v in (
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16))
_BETA = tuple(_F(v) for v in (
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06))
_A1, _A3, _A5, _A7, _A9, _A11, _A13 = _ALPHA
_B0, _B2, _B4, _B6 = _BETA
_HALF = _F(0.5)


@jit
def _tanh_f32(x):
    if -_CLAMP > x:  # min(max(x, -_CLAMP), _CLAMP), NaN kept, without compiling min and max
        x = -_CLAMP
    if _CLAMP < x:
        x = _CLAMP
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    q = x2 * _B6 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return p * x / q


def tanh(x):
    """tanh of a scalar (plain Python when the JIT is disabled)."""
    return math.tanh(x)


def sigmoid(x):
    """1 / (1 + exp(-x)) of a scalar (plain Python when the JIT is disabled)."""
    return 1.0 / (1.0 + math.exp(-x)) if x >= -700 else 0.0


@overload(tanh, jit_options={"cache": True})
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanh_f32(x)
    return lambda x: math.tanh(x)


@overload(sigmoid, jit_options={"cache": True})
def _sigmoid_impl(x):
    if x == types.float32:
        return lambda x: _HALF * _tanh_f32(_HALF * x) + _HALF
    return lambda x: 1.0 / (1.0 + math.exp(-x))


@jit(inline=True)
def add_sigmoid(x, y):
    """x = sigmoid(x + y), in place, for two 1-d arrays (a loop LLVM vectorises)."""
    for k in range(x.shape[0]):
        x[k] = sigmoid(x[k] + y[k])


@jit(inline=True)
def add_tanh(x, y):
    """x = tanh(x + y), in place, for two 1-d arrays."""
    for k in range(x.shape[0]):
        x[k] = tanh(x[k] + y[k])
