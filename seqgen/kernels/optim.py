"""Fused optimiser updates: one pass over each flat parameter array."""

import math

from seqgen._numba import jit


@jit
def sgd_update(p, g, velocity, lr, momentum):
    """p -= lr * v, v = momentum * v + g (plain SGD when momentum = 0)."""
    for k in range(p.shape[0]):
        v = momentum * velocity[k] + g[k]
        velocity[k] = v
        p[k] -= lr * v


@jit
def adagrad_update(p, g, accum, lr, eps):
    for k in range(p.shape[0]):
        a = accum[k] + g[k] * g[k]
        accum[k] = a
        p[k] -= lr * g[k] / (math.sqrt(a) + eps)


@jit
def rmsprop_update(p, g, sq, lr, rho, eps):
    for k in range(p.shape[0]):
        s = rho * sq[k] + (1.0 - rho) * g[k] * g[k]
        sq[k] = s
        p[k] -= lr * g[k] / (math.sqrt(s) + eps)


@jit
def adam_update(p, g, m1, m2, lr_t, beta1, beta2, eps):
    """Adam with the bias correction folded into lr_t = lr·sqrt(1−β2^t)/(1−β1^t)."""
    for k in range(p.shape[0]):
        m = beta1 * m1[k] + (1.0 - beta1) * g[k]
        v = beta2 * m2[k] + (1.0 - beta2) * g[k] * g[k]
        m1[k] = m
        m2[k] = v
        p[k] -= lr_t * m / (math.sqrt(v) + eps)


@jit
def average_update(avg, p, weight):
    """avg += weight * (p - avg): one step of an exponential moving average of the weights."""
    for k in range(avg.shape[0]):
        avg[k] += weight * (p[k] - avg[k])
