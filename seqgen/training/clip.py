"""Gradient clipping, in place, on a dict of gradient arrays."""

import math

import numpy as np

from seqgen.errors import ConfigError


def clip_by_value(grads, max_value):
    """Clip every element to [-max_value, max_value] (the notes' ``clip``). Returns grads."""
    if not max_value > 0:
        raise ConfigError(f"clip value must be > 0, got {max_value}")
    for g in grads.values():
        np.clip(g, -max_value, max_value, out=g)
    return grads


def global_norm(grads):
    """The L2 norm of all gradients taken together."""
    flat = (g.ravel(order="K") for g in grads.values())  # no copy for F-ordered matrices
    return math.sqrt(sum(float(f @ f) for f in flat))


def clip_by_norm(grads, max_norm):
    """Scale all gradients together so their global L2 norm is at most max_norm.
    Returns the norm before clipping."""
    if not max_norm > 0:
        raise ConfigError(f"clip norm must be > 0, got {max_norm}")
    norm = global_norm(grads)
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm
