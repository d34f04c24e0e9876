"""Optimisers: SGD (with momentum), Adagrad, RMSprop, Adam, with a learning-rate schedule
(seqgen.training.schedule) and decoupled weight decay (AdamW's, for any of them).

Each keeps its state as named float arrays (``state_arrays``) plus a step count, so a checkpoint
can save and restore it exactly. Updates run in fused numba kernels over each parameter's memory.
"""

import math

import numpy as np

from seqgen.errors import ConfigError, ShapeError
from seqgen.kernels import optim as kernels
from seqgen.options import OPTIMIZER_SLOTS
from seqgen.training.schedule import Schedule

OPTIMIZERS = tuple(OPTIMIZER_SLOTS)
DEFAULT_LR = {"sgd": 0.01, "adagrad": 0.01, "rmsprop": 0.002, "adam": 0.002}


def flat_views(name, p, g):
    """1-d views of a parameter's memory and its gradient in the same element order. ShapeError
    for a non-contiguous parameter: flattening would copy it and the update would be lost."""
    if not (p.flags.c_contiguous or p.flags.f_contiguous):
        raise ShapeError(f"parameter {name} is not contiguous; the optimiser updates parameters in place")
    order = "F" if p.flags.f_contiguous and not p.flags.c_contiguous else "C"
    return p.reshape(-1, order=order), g.reshape(-1, order=order)  # g may be copied: it is only read


class Optimizer:
    """``Optimizer("adam", params, lr=2e-3)``; ``step(params, grads)`` updates params in place.

    The learning rate at update t (from 0) follows ``schedule`` (seqgen.training.schedule; by
    default ``lr * decay ** (t / decay_every)``). ``weight_decay`` shrinks every weight matrix by
    ``lr_t * weight_decay`` before each update, decoupled from the gradient (Loshchilov & Hutter's
    AdamW; biases are not decayed)."""

    def __init__(self, name, params, lr=None, momentum=0.0, beta1=0.9, beta2=0.999, rho=0.9,
                 eps=1e-8, decay=1.0, decay_every=1, schedule="exponential", warmup=0, total_steps=None,
                 min_lr=0.0, weight_decay=0.0):
        if name not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
        lr = DEFAULT_LR[name] if lr is None else lr
        if not lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
        self.name, self.momentum = name, momentum
        self.beta1, self.beta2, self.rho, self.eps = beta1, beta2, rho, eps
        if not 0 <= weight_decay < 1:
            raise ConfigError(f"weight decay must be in [0, 1), got {weight_decay}")
        self.schedule = Schedule(lr, schedule, decay, decay_every, warmup, total_steps, min_lr)
        self.weight_decay = weight_decay
        self.t = 0
        self.slots = {slot: {k: np.zeros(v.size, dtype=v.dtype) for k, v in params.items()}
                      for slot in OPTIMIZER_SLOTS[name]}

    def current_lr(self):
        return self.schedule(self.t)

    def step(self, params, grads):
        lr = self.current_lr()
        self.t += 1
        if set(grads) != set(params):
            raise ShapeError(f"gradients for {sorted(set(grads) ^ set(params))} do not match the parameters")
        for name, p in params.items():
            g = grads[name]
            if g.shape != p.shape or g.dtype != p.dtype:
                raise ShapeError(f"gradient {name} is {g.shape} {g.dtype}, parameter is {p.shape} {p.dtype}")
            if self.slots and next(iter(self.slots.values()))[name].size != p.size:
                raise ShapeError(f"parameter {name} has {p.size} values; the optimiser state has "
                                 f"{next(iter(self.slots.values()))[name].size}")
            pf, gf = flat_views(name, p, g)
            if self.weight_decay and p.ndim == 2:
                pf *= 1.0 - lr * self.weight_decay
            if self.name == "sgd":
                kernels.sgd_update(pf, gf, self.slots["velocity"][name], lr, self.momentum)
            elif self.name == "adagrad":
                kernels.adagrad_update(pf, gf, self.slots["accum"][name], lr, self.eps)
            elif self.name == "rmsprop":
                kernels.rmsprop_update(pf, gf, self.slots["sq"][name], lr, self.rho, self.eps)
            else:
                lr_t = lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
                kernels.adam_update(pf, gf, self.slots["m1"][name], self.slots["m2"][name],
                                    lr_t, self.beta1, self.beta2, self.eps)

    # ---------------------------------------------------------------- checkpoint support
    def config(self):
        return {"name": self.name, "momentum": self.momentum, "beta1": self.beta1, "beta2": self.beta2,
                "rho": self.rho, "eps": self.eps, "weight_decay": self.weight_decay, **self.schedule.config()}

    def state_arrays(self):
        """name -> array of every slot, keys like ``"m1/l0.Wax"``."""
        return {f"{slot}/{k}": v for slot, arrays in self.slots.items() for k, v in arrays.items()}

    def load_state(self, t, arrays):
        self.t = int(t)
        for key, value in arrays.items():
            slot, name = key.split("/", 1)
            target = self.slots[slot][name]
            if value.shape != target.shape:
                raise ConfigError(f"optimizer state {key} has shape {value.shape}, expected {target.shape}")
            target[...] = value
