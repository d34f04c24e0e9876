"""Learning-rate schedules: the learning rate of update t (counted from 0).

- ``exponential``: ``lr * decay ** (t / decay_every)`` (char-rnn's decay; decay 1 is constant);
- ``cosine``: from ``lr`` down to ``min_lr`` along half a cosine over the run's steps
  (Loshchilov & Hutter's SGDR without restarts, as nanoGPT trains);
and either after ``warmup`` steps that rise linearly from lr / warmup to lr.
"""

import math

from seqgen.errors import ConfigError

SCHEDULES = ("exponential", "cosine")


class Schedule:
    def __init__(self, lr, kind="exponential", decay=1.0, decay_every=1, warmup=0, total_steps=None, min_lr=0.0):
        if kind not in SCHEDULES:
            raise ConfigError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0 < decay <= 1:
            raise ConfigError(f"learning-rate decay must be in (0, 1], got {decay}")
        if kind == "cosine" and not total_steps:
            raise ConfigError("the cosine schedule needs the number of steps")
        if not 0 <= min_lr <= lr:
            raise ConfigError(f"min_lr must be in [0, lr={lr}], got {min_lr}")
        self.lr, self.kind, self.decay, self.decay_every = lr, kind, decay, decay_every
        self.warmup, self.total_steps, self.min_lr = warmup, total_steps, min_lr

    def __call__(self, t):
        if t < self.warmup:
            return self.lr * (t + 1) / self.warmup
        if self.kind == "exponential":
            return self.lr * self.decay ** (t / self.decay_every)
        span = max(self.total_steps - self.warmup, 1)
        progress = min((t - self.warmup) / span, 1.0)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    def config(self):
        return {"lr": self.lr, "schedule": self.kind, "decay": self.decay, "decay_every": self.decay_every,
                "warmup": self.warmup, "total_steps": self.total_steps, "min_lr": self.min_lr}
