"""The training loop: truncated BPTT over windows, clipping, an optimiser step, periodic
evaluation and atomic checkpoints, with exact resume.

``Trainer.run`` is the loop. Everything that decides the next update — weights, optimiser
moments, step, data cursor, carried hidden state, dropout RNG state, the weight average — is
saved in the checkpoint, so N steps + resume + N steps equals 2N steps bit for bit.
"""

import math
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from seqgen.errors import TrainingError
from seqgen.storage import checkpoint
from seqgen.training import seeds
from seqgen.training.average import WeightAverage
from seqgen.training.clip import clip_by_norm, clip_by_value, global_norm
from seqgen.training.optim import Optimizer


def mean_loss(model, windows):
    """Mean NLL per target (token, label or item; nats) over windows, the state carried where
    the data says so."""
    total, count, state = 0.0, 0, None
    for w in windows:
        if w.reset or state is None or state.shape[2] != w.inputs.shape[1]:
            state = None
        nll, n, state = model.evaluate(w.inputs, w.targets, state)
        total, count = total + nll, count + n
    return total / max(count, 1)


def best_path(path):
    """model.npz -> model.best.npz"""
    path = Path(path)
    return path.with_name(f"{path.stem}.best{path.suffix}")


DIVERGED = 4.0  # a training loss this many times above both its start and uniform guessing: diverged


class Trainer:
    """Trains ``model`` on ``train`` windows (seqgen.training.data), evaluating on ``valid``
    (or None), with a ``seqgen.options.TrainOptions``; checkpoints go to ``options.output``."""

    def __init__(self, model, tokenizer, train, valid, options, extra_meta=None):
        self.model, self.tokenizer, self.train, self.valid = model, tokenizer, train, valid
        self.options, self.output = options, Path(options.output)
        self.extra_meta = dict(extra_meta or {})
        o = options
        self.optimizer = Optimizer(o.optimizer, model.params, lr=o.lr, momentum=o.momentum, decay=o.decay,
                                   decay_every=o.decay_every, schedule=o.schedule, warmup=o.warmup,
                                   total_steps=self.total_steps, min_lr=o.min_lr, weight_decay=o.weight_decay)
        self.average = WeightAverage(model.params, o.ema) if o.ema else None
        self.rng = seeds.generator(o.seed, "dropout")
        self.step = self.epoch = self.cursor = 0
        self.carried = None  # hidden state carried into the next window
        self.history = []  # one dict per evaluation
        self.best_valid = math.inf
        self.bad_evals = 0
        self.interval = [0.0, 0]  # summed NLL (nats) and tokens since the last evaluation
        self.grad_norms = [0.0, 0.0, 0]  # summed and largest gradient norm, and steps, since then
        self.first_loss = None  # nats/token of the first step: the yardstick for divergence
        self.saved_step = None
        self.stop_reason = None
        self.elapsed = 0.0  # seconds of training so far, across resumes
        self._started = None
        self._interrupted = False

    @property
    def total_steps(self):
        o = self.options
        if o.steps is not None:
            return o.steps
        epochs = o.epochs if o.epochs is not None else 1.0
        return max(1, math.ceil(epochs * self.train.windows_in_epoch(0)))

    # ------------------------------------------------------------------ resume
    def restore(self, training, arrays):
        """Continue from a checkpoint's training metadata and arrays."""
        self.step, self.epoch, self.cursor = training["step"], training["epoch"], training["cursor"]
        self.rng.bit_generator.state = training["rng"]
        self.history = list(training.get("history", []))
        best = training.get("best_valid")
        self.best_valid = math.inf if best is None else best
        self.bad_evals = training.get("bad_evals", 0)
        self.interval = list(training.get("interval", [0.0, 0]))
        self.grad_norms = list(training.get("grad_norms", [0.0, 0.0, 0]))
        self.first_loss = training.get("first_loss")
        self.elapsed = training.get("elapsed", 0.0)
        self.optimizer.load_state(training["optimizer_t"],
                                  {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")})
        self.carried = arrays.get("train/state")
        if self.average is not None:
            # the checkpoint's model, which the average started from in __init__, is the average;
            # the optimiser's own weights come back from the training arrays
            for name, p in self.model.params.items():
                np.copyto(p, arrays[f"train/weights/{name}"])
        self.saved_step = self.step

    # ------------------------------------------------------------------ the loop
    def run(self, on_step=None, on_eval=None, on_sample=None, sample_every=None, max_seconds=None):
        """Train until the step budget, early stopping, ``max_seconds`` of wall time, or Ctrl-C.
        Callbacks: on_step(trainer, loss, tokens), on_eval(trainer, record), on_sample(trainer).
        Returns the stop reason."""
        o = self.options
        total = self.total_steps
        restore_handler = self._catch_interrupts()
        self._started = time.perf_counter() - self.elapsed
        session_start = time.perf_counter()  # max_seconds counts this session, not earlier ones
        try:
            tokens_done, t0 = 0, time.perf_counter()
            while self.step < total:
                if self._interrupted:
                    self.stop_reason = "interrupted"
                    break
                if max_seconds is not None and time.perf_counter() - session_start >= max_seconds:
                    self.stop_reason = "time limit"
                    break
                loss, tokens = self._train_step()
                tokens_done += tokens
                if on_step:
                    on_step(self, loss, tokens)
                if self.step % o.eval_every == 0 or self.step == total:
                    record = self._evaluate(tokens_done / max(time.perf_counter() - t0, 1e-9))
                    tokens_done, t0 = 0, time.perf_counter()
                    if on_eval:
                        on_eval(self, record)
                    if o.patience is not None and self.bad_evals >= o.patience:
                        self.stop_reason = "early stopping"
                        break
                if sample_every and on_sample and self.step % sample_every == 0:
                    on_sample(self)
            else:
                self.stop_reason = "done"
            if self.saved_step != self.step:
                self.save()
        finally:
            restore_handler()
        return self.stop_reason

    def _train_step(self):
        o, model = self.options, self.model
        if self.cursor >= self.train.windows_in_epoch(self.epoch):
            self.epoch, self.cursor = self.epoch + 1, 0
        window = self.train.window(self.epoch, self.cursor)
        state = self.carried
        if window.reset or state is None or state.shape[2] != window.inputs.shape[1]:
            state = None
        result = model.backprop(window.inputs, window.targets, state, o.dropout, self.rng, o.dropout_output,
                                o.dropout_masks)
        if self.first_loss is None:
            self.first_loss = result.loss
        limit = DIVERGED * max(self.first_loss, math.log(model.config.output_size))
        if not math.isfinite(result.loss):
            self._diverged(f"loss became {result.loss} at step {self.step + 1}")
        if result.loss > limit:
            self._diverged(f"loss rose to {result.loss:.4g} nats/token at step {self.step + 1} "
                           f"(it started at {self.first_loss:.4g}): training diverged")
        grads = result.grads
        count = int((window.targets >= 0).sum())
        scale = 1.0  # "sum": the loss summed over time steps, averaged over the batch (the notes')
        if o.reduction == "sum":
            scale = count / window.inputs.shape[1]
            for g in grads.values():
                g *= scale
        if o.clip_value:
            clip_by_value(grads, o.clip_value)
        norm = clip_by_norm(grads, o.clip_norm) if o.clip_norm else global_norm(grads)
        self.grad_norms = [self.grad_norms[0] + norm, max(self.grad_norms[1], norm), self.grad_norms[2] + 1]
        self.optimizer.step(model.params, grads)
        if self.average is not None:
            self.average.update(model.params, self.optimizer.t)
        self.carried = result.state
        self.step += 1
        self.cursor += 1
        self.interval[0] += result.loss * count
        self.interval[1] += count
        return result.loss, count

    def _diverged(self, what):
        where = f"the last good checkpoint is {self.output} (step {self.saved_step})" if self.saved_step \
            else "no checkpoint was written"
        raise TrainingError(f"{what}; {where}. Try a lower learning rate (lr) or gradient clipping (clip_norm).")

    @property
    def train_loss(self):
        """Mean training loss since the last evaluation, nats/token (None before any step)."""
        total, count = self.interval
        return total / count if count else None

    # ------------------------------------------------------------------ evaluation and saving
    def _evaluate(self, tokens_per_s):
        self.elapsed = time.perf_counter() - self._started
        record = {"step": self.step, "epoch": self.epoch, "elapsed": round(self.elapsed, 2),
                  "train_loss": self.train_loss, "lr": self.optimizer.current_lr(),
                  "tokens_per_s": round(tokens_per_s, 1)}
        total_norm, max_norm, steps = self.grad_norms
        if steps:  # before clipping by norm (after clipping by value): what clip_norm acts on
            record.update(grad_norm=total_norm / steps, grad_norm_max=max_norm)
        self.interval = [0.0, 0]
        self.grad_norms = [0.0, 0.0, 0]
        if not all(np.isfinite(p).all() for p in self.model.params.values()):
            self._diverged(f"weights became non-finite by step {self.step}")
        improved = False
        if self.valid is not None:
            if self.average is not None:  # what averaging gains, in every record
                record["valid_loss_raw"] = mean_loss(self.model, self.valid.iter_windows())
            with self._evaluated_weights():
                valid = mean_loss(self.model, self.valid.iter_windows())
            record["valid_loss"] = valid
            improved = valid < self.best_valid
            if improved:
                self.best_valid, self.bad_evals = valid, 0
            else:
                self.bad_evals += 1
        self.history.append(record)
        self.save()
        if improved:  # the checkpoint just written is the best one: copy it rather than save twice
            checkpoint.copy(self.output, best_path(self.output))
        return record

    def training_meta(self):
        return {
            "step": self.step, "epoch": self.epoch, "cursor": self.cursor,
            "rng": self.rng.bit_generator.state, "optimizer": self.optimizer.config(),
            "optimizer_t": self.optimizer.t, "history": self.history,
            "best_valid": None if math.isinf(self.best_valid) else self.best_valid,
            "bad_evals": self.bad_evals, "interval": self.interval, "grad_norms": self.grad_norms,
            "first_loss": self.first_loss,
            "options": self.options.model_dump(mode="json"),
            "elapsed": self.elapsed,
            **self.extra_meta,
        }

    def save(self):
        """Write the training checkpoint (atomically) to the output path, only if every weight
        is finite: the file on disk is always one that can be trained on and sampled from."""
        if not all(np.isfinite(p).all() for p in self.model.params.values()):
            self._diverged(f"weights became non-finite by step {self.step}")
        if self._started is not None:
            self.elapsed = time.perf_counter() - self._started
        arrays = {f"optim/{k}": v for k, v in self.optimizer.state_arrays().items()}
        if self.carried is not None:
            arrays["train/state"] = self.carried
        with self._evaluated_weights() as own:
            if self.average is not None:
                arrays.update({f"train/weights/{name}": p for name, p in own.items()})
            checkpoint.save(self.output, self.model, self.tokenizer, self.training_meta(), arrays)
        self.saved_step = self.step

    @contextmanager
    def _evaluated_weights(self):
        """Inside the block the model holds the weights that are evaluated and saved as the model:
        the average when there is one; yields the optimiser's own weights."""
        if self.average is None:
            yield self.model.params
        else:
            with self.average.swapped_into(self.model) as own:
                yield own

    def _catch_interrupts(self):
        """Ctrl-C sets a flag checked between steps, so an update is never cut in half."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum, frame):
            if self._interrupted:  # a second Ctrl-C stops at once; checkpoints are atomic
                raise KeyboardInterrupt
            self._interrupted = True

        previous = signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)
