"""The model: stacked RNN / LSTM / GRU layers over token ids, with a softmax output layer.

Forward pass: ``_forward`` (per layer and direction: input projection for all steps at once,
then the cell's recurrence kernel). Backward pass: ``_backward`` (per layer from the top: the
cell's backward kernel, then the weight gradients as one matrix product over all steps). The
equations are in ``seqgen.engine.reference``; the kernels in ``seqgen.kernels``.

Tasks (``seqgen.engine.heads``): ``lm`` predicts the next token (the default), ``tag`` labels
every token, ``classify`` labels every item. A bidirectional model (tag and classify only) runs
a second recurrence per layer over the reversed sequence with its own weights (``l{l}r.*``),
through the same kernels, and concatenates both outputs: ŷ⟨t⟩ = g(Wya·[a→⟨t⟩, a←⟨t⟩] + by).

Shapes: inputs and targets are (T, B) int ids, time-major. The recurrent state is one array
(L·D, S, B, n_a): L layers of D directions (forward, then backward), S = 2 for LSTM ([a, c]).
"""

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from seqgen.engine import heads
from seqgen.engine.cells import CELLS
from seqgen.engine.init import init_params
from seqgen.errors import ConfigError, ShapeError
from seqgen.kernels.linalg import matmul
from seqgen.kernels.loss import count_targets, embed, embed_backward, softmax_xent, softmax_xent_scaled
from seqgen.threads import parallel_map

DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a model; JSON-able through ``to_dict``."""

    cell: str
    vocab_size: int
    hidden_size: int
    num_layers: int = 1
    dtype: str = "float32"
    task: str = "lm"  # lm, tag or classify (seqgen.engine.heads)
    bidirectional: bool = False
    labels: tuple = ()  # the label vocabulary of tag and classify models
    pooling: str = "last"  # classify: how an item's steps become one vector

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        self._check_task()
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; choose float32 or float64")
        for name in ("vocab_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.vocab_size < 2:
            raise ConfigError("vocab_size must be at least 2: a one-token vocabulary has nothing to learn")

    def _check_task(self):
        if self.task not in heads.TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(heads.TASKS)}")
        if self.pooling not in heads.POOLINGS:
            raise ConfigError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(heads.POOLINGS)}")
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(f"bidirectional must be true or false, got {self.bidirectional!r}")
        if self.task == "lm":
            if self.bidirectional:
                raise ConfigError("bidirectional: a language model cannot read ahead (its backward direction "
                                  "would see the token it predicts); use it with task tag or classify")
            if self.labels:
                raise ConfigError("labels: a language model predicts tokens, not labels")
            return
        if len(self.labels) < 2 or not all(isinstance(x, str) for x in self.labels):
            raise ConfigError(f"a {self.task} model needs at least two labels (strings), got {list(self.labels)!r}")
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError("labels must be distinct")

    @property
    def directions(self):
        """D: 2 for a bidirectional model, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def output_size(self):
        """n_y: the vocabulary for the language model, the labels for the other tasks."""
        return self.vocab_size if self.task == "lm" else len(self.labels)

    def prefixes(self, l):
        """Parameter prefixes of layer l, one per direction: "l{l}." and (backward) "l{l}r."."""
        return [f"l{l}."] + ([f"l{l}r."] if self.bidirectional else [])

    def to_dict(self):
        """JSON-able config; the task fields only when they differ from the language model's,
        so language-model checkpoints are written exactly as before."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        for name, default in (("task", "lm"), ("bidirectional", False), ("labels", []), ("pooling", "last")):
            if d[name] == default:
                del d[name]
        return d

    @property
    def cell_def(self):
        """The cell's definition (seqgen.engine.cells)."""
        return CELLS[self.cell]

    @property
    def gates(self):
        return self.cell_def.G

    @property
    def state_size(self):
        """S: arrays of state per layer (2 for LSTM: a and c)."""
        return self.cell_def.S

    def param_shapes(self):
        """name -> shape, in the order parameters are created and saved."""
        G, H, V, D = self.gates, self.hidden_size, self.vocab_size, self.directions
        shapes = {}
        for l in range(self.num_layers):
            for prefix in self.prefixes(l):
                shapes[f"{prefix}Wax"] = (G * H, V if l == 0 else D * H)
                shapes[f"{prefix}Waa"] = (G * H, H)
                shapes[f"{prefix}ba"] = (G * H,)
                shapes.update({f"{prefix}{name}": shape for name, shape in self.cell_def.extra_params(H).items()})
        shapes["Wya"] = (self.output_size, D * H)
        shapes["by"] = (self.output_size,)
        return shapes


def _row_blocks(B):
    """The batch rows as blocks that run side by side (seqgen.threads): two halves, so that the
    sums, and so the results, are the same whatever the number of threads."""
    if B < 2:
        return [slice(0, B)]
    half = (B + 1) // 2
    return [slice(0, half), slice(half, B)]


class Backprop(NamedTuple):
    """Result of a forward and backward pass over one window."""

    loss: float  # mean NLL per target (token, label or item), nats
    grads: dict  # name -> array, same shapes as params
    state: np.ndarray  # final state (L·D, S, B, n_a), to carry into the next window
    d_state: np.ndarray  # d loss / d initial state (L·D, S, B, n_a)


class Model:
    """A stacked recurrent network (a language model, a tagger or a classifier). ``params``
    holds the weights by the notes' names."""

    def __init__(self, config, params):
        self.config = config
        self.dtype = DTYPES[config.dtype]
        shapes = config.param_shapes()
        if set(params) != set(shapes):
            missing, extra = sorted(set(shapes) - set(params)), sorted(set(params) - set(shapes))
            raise ShapeError(f"parameters do not match the config: missing {missing}, unexpected {extra}")
        self.params = {}
        for name, shape in shapes.items():
            value = np.asarray(params[name])
            if value.shape != shape:
                raise ShapeError(f"parameter {name} has shape {value.shape}, expected {shape}")
            if value.ndim == 2:  # kernels read W.T as a C-contiguous matrix
                value = np.ascontiguousarray(value.T, dtype=self.dtype).T
            else:
                value = np.ascontiguousarray(value, dtype=self.dtype)
            self.params[name] = value

    @classmethod
    def create(cls, cell, vocab_size, hidden_size, num_layers=1, seed=0, dtype="float32", init="orthogonal",
               task="lm", bidirectional=False, labels=(), pooling="last"):
        """A freshly initialised model (see seqgen.engine.init for the schemes)."""
        config = ModelConfig(cell, vocab_size, hidden_size, num_layers, dtype, task, bidirectional, tuple(labels),
                             pooling)
        return cls(config, init_params(config, seed, DTYPES[dtype], init))

    def __repr__(self):
        c = self.config
        task = "" if c.task == "lm" else (f", task={c.task!r}, labels={len(c.labels)}"
                                          f"{', bidirectional=True' if c.bidirectional else ''}")
        return (f"Model(cell={c.cell!r}, vocab_size={c.vocab_size}, hidden_size={c.hidden_size}, "
                f"num_layers={c.num_layers}, dtype={c.dtype!r}{task})")

    @property
    def num_params(self):
        return sum(p.size for p in self.params.values())

    def config_dict(self):
        return self.config.to_dict()

    def initial_state(self, batch_size):
        """Zero state (L·D, S, B, n_a)."""
        c = self.config
        return np.zeros((c.num_layers * c.directions, c.state_size, batch_size, c.hidden_size), dtype=self.dtype)

    def check_generative(self):
        """ConfigError unless this is a language model (only those generate)."""
        if self.config.task != "lm":
            raise ConfigError(f"this is a {self.config.task} model: it labels sequences and cannot generate "
                              "(use seqgen predict)")

    # ------------------------------------------------------------------ public passes
    def loss_and_grads(self, inputs, targets, state=None):
        """Mean NLL per target token (nats), gradients (name -> array) and the final state."""
        result = self.backprop(inputs, targets, state)
        return result.loss, result.grads, result.state

    def backprop(self, inputs, targets, state=None, dropout=0.0, rng=None, dropout_output=0.0, dropout_masks="step"):
        """Forward and backward pass over one window; see ``Backprop``.

        inputs, targets: (T, B) ids; targets < 0 are ignored (padding; for classify see
        seqgen.engine.heads). Inverted dropout, drawn from the numpy Generator ``rng``: ``dropout``
        on the outputs of every layer but the top one, ``dropout_output`` on the top layer's output;
        ``dropout_masks`` "step" draws a mask per step, "sequence" one per row of the window."""
        inputs, targets, state = self._check_window(inputs, targets, state)
        lengths = self._lengths(targets)
        masks = self._dropout_masks(inputs.shape, dropout, dropout_output, dropout_masks, rng)
        count = count_targets(self._head_targets(targets, lengths))
        scale = 1.0 / max(count, 1)
        blocks = parallel_map(lambda rows: self._backprop_rows(inputs, targets, state, masks, lengths, rows, scale),
                              _row_blocks(inputs.shape[1]))
        total, grads, final, d_state = blocks[0]
        for more in blocks[1:]:  # in a fixed order: the same sums whatever the thread count
            total += more[0]
            for name, g in more[1].items():
                grads[name] += g
        final = np.concatenate([b[2] for b in blocks], axis=2)
        d_state = np.concatenate([b[3] for b in blocks], axis=2)
        return Backprop(total / max(count, 1), grads, final, d_state)

    def _backprop_rows(self, inputs, targets, state, masks, lengths, rows, scale):
        """Forward and backward over the batch rows ``rows`` (a slice): (summed NLL, gradients,
        final state, d initial state) of that block, d loss / d logits scaled by ``scale``."""
        inputs, targets = np.ascontiguousarray(inputs[:, rows]), np.ascontiguousarray(targets[:, rows])
        lengths = None if lengths is None else lengths[rows]
        masks = None if masks is None else [None if m is None else m[:, rows] for m in masks]
        caches, logits, final = self._forward(inputs, np.ascontiguousarray(state[:, :, rows]), masks, lengths)
        # logits now hold d loss / d logits
        total = softmax_xent_scaled(logits, self._head_targets(targets, lengths), scale)
        grads, d_state = self._backward(inputs, caches, logits, masks, lengths)
        return total, grads, final, d_state

    def evaluate(self, inputs, targets, state=None):
        """Forward only: (summed NLL in nats, number of targets, final state)."""
        inputs, targets, state = self._check_window(inputs, targets, state)
        lengths = self._lengths(targets)

        def block(rows):
            x, y = np.ascontiguousarray(inputs[:, rows]), np.ascontiguousarray(targets[:, rows])
            lens = None if lengths is None else lengths[rows]
            _, logits, final = self._forward(x, np.ascontiguousarray(state[:, :, rows]), None, lens)
            return softmax_xent(logits, self._head_targets(y, lens)) + (final,)

        blocks = parallel_map(block, _row_blocks(inputs.shape[1]))
        total = sum(b[0] for b in blocks)
        count = sum(b[1] for b in blocks)
        return total, count, np.concatenate([b[2] for b in blocks], axis=2)

    def predict(self, inputs, lengths=None):
        """Label probabilities of a tag or classify model: inputs (T, B) ids, lengths (B,) item
        lengths (default all T) -> (T, B, n_y) for tag, (B, n_y) for classify."""
        c = self.config
        if c.task == "lm":
            raise ConfigError("predict labels sequences: this is a language model (use seqgen sample)")
        inputs, _, state = self._check_window(inputs, None, None)
        T, B = inputs.shape
        lengths = np.full(B, T, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (B,) or lengths.min() < 1 or lengths.max() > T:
            raise ShapeError(f"lengths must be {B} values in [1, {T}], got {lengths.tolist()[:10]}")
        logits = self._forward(inputs, state, None, lengths)[1]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs.reshape(T, B, -1) if c.task == "tag" else probs

    def run(self, inputs, state=None):
        """Feed inputs (T, B) through the model; returns the final state (used to prime)."""
        self.check_generative()
        inputs, _, state = self._check_window(inputs, None, state)
        return self._forward(inputs, state, None)[2]

    def step(self, ids, state=None):
        """One step for a batch: ids (B,) -> next-token probabilities (B, V), new state."""
        self.check_generative()
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ShapeError(f"step takes a 1-d array of B token ids, got shape {ids.shape}")
        inputs, _, state = self._check_window(ids[None, :], None, state)
        _, logits, final = self._forward(inputs, state, None)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs, final

    # ------------------------------------------------------------------ validation
    def _check_ids(self, what, ids, allow_padding, V=None):
        ids = np.asarray(ids)
        if ids.ndim != 2 or 0 in ids.shape:
            raise ShapeError(f"{what} must be a non-empty (T, B) array of token ids, got shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ShapeError(f"{what} must hold integer token ids, got dtype {ids.dtype}")
        low = -1 if allow_padding else 0
        V = V or self.config.vocab_size
        if ids.min() < low or ids.max() >= V:
            bad = ids[(ids < low) | (ids >= V)]
            raise ShapeError(f"{what} has ids out of range [0, {V}): {sorted(set(bad.tolist()))[:10]}")
        return np.ascontiguousarray(ids, dtype=np.int32)

    def _check_window(self, inputs, targets, state):
        inputs = self._check_ids("inputs", inputs, allow_padding=False)
        if targets is not None:
            targets = self._check_ids("targets", targets, allow_padding=True, V=self.config.output_size)
            if targets.shape != inputs.shape:
                raise ShapeError(f"targets have shape {targets.shape} but inputs have {inputs.shape}")
        expected = self.initial_state(inputs.shape[1]).shape
        if state is None:
            state = self.initial_state(inputs.shape[1])
        else:
            state = np.asarray(state)
            if state.shape != expected:
                raise ShapeError(f"state has shape {state.shape}, expected {expected} (L·D, S, B, n_a)")
            if state.dtype != self.dtype:
                raise ShapeError(f"state has dtype {state.dtype}, expected {self.config.dtype}")
        return inputs, targets, state

    def _dropout_masks(self, shape, dropout, dropout_output, kind, rng):
        """One inverted-dropout mask per layer output, (T, B, D·n_a) or (1, B, D·n_a) for
        "sequence" masks (None: no dropout there); None when there is no dropout at all."""
        for name, p in (("dropout", dropout), ("dropout_output", dropout_output)):
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {p}")
        if kind not in ("step", "sequence"):
            raise ConfigError(f"dropout_masks must be step or sequence, got {kind!r}")
        L = self.config.num_layers
        rates = [dropout] * (L - 1) + [dropout_output]
        if not any(rates):
            return None
        if rng is None:
            raise ConfigError("dropout needs a random generator (rng)")
        T, B = shape
        size = (T if kind == "step" else 1, B, self.config.hidden_size * self.config.directions)
        # drawn bottom-up, so adding an output mask leaves the draws of the layers below unchanged
        return [(rng.random(size) < 1.0 - p).astype(self.dtype) / self.dtype(1.0 - p) if p else None
                for p in rates]

    def _lengths(self, targets):
        """Item lengths (B,) of a tag or classify window; None for the language model."""
        return None if self.config.task == "lm" else heads.lengths_from_targets(targets)

    def _head_targets(self, targets, lengths):
        """The targets of the output layer's rows: per step, or per item for classify."""
        if self.config.task == "classify":
            return heads.item_labels(targets, lengths)
        return targets.reshape(-1)

    # ------------------------------------------------------------------ forward pass
    def _layer(self, prefix):
        """One layer direction's parameters by short name ("Wax", "Waa", "ba", and the cell's
        extras); prefix "l{l}." or "l{l}r."."""
        return {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}

    def _forward(self, inputs, state, masks, lengths=None):
        """Run all layers and the output layer. Returns per-layer caches, logits ((T·B, n_y),
        or (B, n_y) for classify) and the final state."""
        c = self.config
        cell = c.cell_def
        T, B = inputs.shape
        H, G, D, p = c.hidden_size, c.gates, c.directions, self.params
        rev = heads.reversal(lengths if lengths is not None else np.full(B, T), T) if D == 2 else None
        cols = np.arange(B)
        caches = []
        X = None  # input of the current layer, (T·B, n_x); None for the token layer
        final = np.empty_like(state)
        for l in range(c.num_layers):
            runs, outputs = [], []
            for d, prefix in enumerate(c.prefixes(l)):
                layer = self._layer(prefix)
                Z = np.empty((T * B, G * H), dtype=self.dtype)
                if X is None:
                    embed(inputs.reshape(-1), layer["Wax"].T, layer["ba"], Z)
                else:
                    matmul(X, layer["Wax"].T, Z)
                    Z += layer["ba"]
                Z = Z.reshape(T, B, G * H)
                if d == 1:  # the backward direction: the same kernels over each item reversed
                    Z = Z[rev, cols]
                A = np.empty((T + 1, B, H), dtype=self.dtype)
                s_ = state[l * D + d]
                A[0] = s_[0]
                cache, finals = cell.forward(Z, A, s_, layer["Waa"].T, layer, np.empty((B, G * H), dtype=self.dtype))
                final[l * D + d, 0] = A[T]
                for s, value in enumerate(finals, 1):
                    final[l * D + d, s] = value
                runs.append((Z, A, cache))
                outputs.append(A[1:] if d == 0 else A[1:][rev, cols])
            caches.append((X, runs))
            X = (outputs[0] if D == 1 else np.concatenate(outputs, axis=2)).reshape(T * B, D * H)
            if masks is not None and masks[l] is not None:
                X = (X.reshape(T, B, D * H) * masks[l]).reshape(T * B, D * H)
        if c.task == "classify":
            X = heads.pool(X.reshape(T, B, D * H), lengths, c.pooling, H, c.bidirectional)
        logits = matmul(X, p["Wya"].T, np.empty((X.shape[0], c.output_size), dtype=self.dtype))
        logits += p["by"]
        caches.append(X)
        return caches, logits, final

    # ------------------------------------------------------------------ backward pass
    def _backward(self, inputs, caches, dlogits, masks, lengths=None):
        """Gradients of all parameters and of the initial state, from d loss / d logits."""
        c = self.config
        cell = c.cell_def
        T, B = inputs.shape
        H, G, D, p = c.hidden_size, c.gates, c.directions, self.params
        K = D * H
        rev = heads.reversal(lengths if lengths is not None else np.full(B, T), T) if D == 2 else None
        cols = np.arange(B)
        grads = {}
        top = caches[-1]  # the output layer's input: (T·B, K), or pooled (B, K) for classify
        grads["Wya"] = matmul(top.T, dlogits, np.empty((K, c.output_size), dtype=self.dtype)).T
        grads["by"] = dlogits.sum(axis=0)
        # d loss / d output of the current layer, (T·B, D·n_a)
        dX = matmul(dlogits, p["Wya"], np.empty((dlogits.shape[0], K), dtype=self.dtype))
        if c.task == "classify":
            dX = heads.pool_backward(dX, lengths, c.pooling, H, c.bidirectional, T).reshape(T * B, K)
        # zero on entry: the loss does not depend on the final state
        d_state = np.zeros((c.num_layers * D, c.state_size, B, H), dtype=self.dtype)
        for l in reversed(range(c.num_layers)):
            if masks is not None and masks[l] is not None:
                dX = (dX.reshape(T, B, K) * masks[l]).reshape(T * B, K)
            X, runs = caches[l]
            dX3 = dX.reshape(T, B, K)
            dX_below = None
            for d, prefix in enumerate(c.prefixes(l)):
                Z, A, cache = runs[d]
                layer = self._layer(prefix)
                if D == 1:
                    dA = dX3
                else:
                    dA = np.ascontiguousarray(dX3[:, :, d * H:(d + 1) * H])
                    if d == 1:
                        dA = dA[rev, cols]
                dZx, dZa, extra = cell.backward(dA, Z, A, cache, layer, d_state[l * D + d], self.dtype)
                grads.update({f"{prefix}{name}": g for name, g in extra.items()})
                dZa2 = dZa.reshape(T * B, G * H)
                grads[f"{prefix}Waa"] = matmul(A[:-1].reshape(T * B, H).T, dZa2,
                                               np.empty((H, G * H), dtype=self.dtype)).T
                if d == 1:  # back from the reversed time of the recurrence to input positions
                    dZx = dZx[rev, cols]
                dZx2 = dZx.reshape(T * B, G * H)
                grads[f"{prefix}ba"] = dZx2.sum(axis=0)
                if X is None:
                    dWaxT = np.empty((c.vocab_size, G * H), dtype=self.dtype)
                    embed_backward(inputs.reshape(-1), dZx2, dWaxT)
                    grads[f"{prefix}Wax"] = dWaxT.T
                else:
                    grads[f"{prefix}Wax"] = matmul(X.T, dZx2, np.empty((K, G * H), dtype=self.dtype)).T
                    part = matmul(dZx2, layer["Wax"], np.empty((T * B, K), dtype=self.dtype))
                    dX_below = part if dX_below is None else dX_below + part
            if X is not None:
                dX = dX_below
        return {name: grads[name] for name in p}, d_state
