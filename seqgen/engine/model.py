"""The model: stacked RNN / LSTM / GRU layers over token ids, with a softmax output layer.

Forward pass: ``_forward`` (per layer: input projection for all steps at once, then the cell's
recurrence kernel). Backward pass: ``_backward`` (per layer from the top: the cell's backward
kernel, then the weight gradients as one matrix product over all steps). The equations are in
``seqgen.engine.reference``; the kernels in ``seqgen.kernels``.

Shapes: inputs and targets are (T, B) int token ids, time-major. The recurrent state is one
array (L, S, B, n_a): L layers, S = 2 for LSTM ([a, c]) and 1 otherwise.
"""

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from seqgen.engine.cells import CELLS
from seqgen.engine.init import init_params
from seqgen.errors import ConfigError, ShapeError
from seqgen.kernels.linalg import matmul
from seqgen.kernels.loss import count_targets, embed, embed_backward, softmax_xent, softmax_xent_scaled
from seqgen.threads import parallel_map

DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a model; JSON-able through ``asdict``."""

    cell: str
    vocab_size: int
    hidden_size: int
    num_layers: int = 1
    dtype: str = "float32"

    def __post_init__(self):
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
        G, H, V = self.gates, self.hidden_size, self.vocab_size
        shapes = {}
        for l in range(self.num_layers):
            shapes[f"l{l}.Wax"] = (G * H, V if l == 0 else H)
            shapes[f"l{l}.Waa"] = (G * H, H)
            shapes[f"l{l}.ba"] = (G * H,)
            shapes.update({f"l{l}.{name}": shape for name, shape in self.cell_def.extra_params(H).items()})
        shapes["Wya"] = (V, H)
        shapes["by"] = (V,)
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

    loss: float  # mean NLL per target token, nats
    grads: dict  # name -> array, same shapes as params
    state: np.ndarray  # final state (L, S, B, n_a), to carry into the next window
    d_state: np.ndarray  # d loss / d initial state (L, S, B, n_a)


class Model:
    """A stacked recurrent language model. ``params`` holds the weights by the notes' names."""

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
    def create(cls, cell, vocab_size, hidden_size, num_layers=1, seed=0, dtype="float32", init="orthogonal"):
        """A freshly initialised model (see seqgen.engine.init for the schemes)."""
        config = ModelConfig(cell, vocab_size, hidden_size, num_layers, dtype)
        return cls(config, init_params(config, seed, DTYPES[dtype], init))

    def __repr__(self):
        c = self.config
        return (f"Model(cell={c.cell!r}, vocab_size={c.vocab_size}, hidden_size={c.hidden_size}, "
                f"num_layers={c.num_layers}, dtype={c.dtype!r})")

    @property
    def num_params(self):
        return sum(p.size for p in self.params.values())

    def config_dict(self):
        return asdict(self.config)

    def initial_state(self, batch_size):
        """Zero state (L, S, B, n_a)."""
        c = self.config
        return np.zeros((c.num_layers, c.state_size, batch_size, c.hidden_size), dtype=self.dtype)

    # ------------------------------------------------------------------ public passes
    def loss_and_grads(self, inputs, targets, state=None):
        """Mean NLL per target token (nats), gradients (name -> array) and the final state."""
        result = self.backprop(inputs, targets, state)
        return result.loss, result.grads, result.state

    def backprop(self, inputs, targets, state=None, dropout=0.0, rng=None):
        """Forward and backward pass over one window; see ``Backprop``.

        inputs, targets: (T, B) ids; targets < 0 are ignored (padding). ``dropout`` (with a
        numpy Generator ``rng``) drops the outputs of every layer but the top one, as inverted
        dropout."""
        inputs, targets, state = self._check_window(inputs, targets, state)
        masks = self._dropout_masks(inputs.shape, dropout, rng)
        count = count_targets(targets.reshape(-1))
        scale = 1.0 / max(count, 1)
        blocks = parallel_map(lambda rows: self._backprop_rows(inputs, targets, state, masks, rows, scale),
                              _row_blocks(inputs.shape[1]))
        total, grads, final, d_state = blocks[0]
        for more in blocks[1:]:  # in a fixed order: the same sums whatever the thread count
            total += more[0]
            for name, g in more[1].items():
                grads[name] += g
        final = np.concatenate([b[2] for b in blocks], axis=2)
        d_state = np.concatenate([b[3] for b in blocks], axis=2)
        return Backprop(total / max(count, 1), grads, final, d_state)

    def _backprop_rows(self, inputs, targets, state, masks, rows, scale):
        """Forward and backward over the batch rows ``rows`` (a slice): (summed NLL, gradients,
        final state, d initial state) of that block, d loss / d logits scaled by ``scale``."""
        inputs, targets = np.ascontiguousarray(inputs[:, rows]), np.ascontiguousarray(targets[:, rows])
        masks = None if masks is None else [m[:, rows] for m in masks]
        caches, logits, final = self._forward(inputs, np.ascontiguousarray(state[:, :, rows]), masks)
        total = softmax_xent_scaled(logits, targets.reshape(-1), scale)  # logits now hold d loss/d logits
        grads, d_state = self._backward(inputs, caches, logits, masks)
        return total, grads, final, d_state

    def evaluate(self, inputs, targets, state=None):
        """Forward only: (summed NLL in nats, number of target tokens, final state)."""
        inputs, targets, state = self._check_window(inputs, targets, state)

        def block(rows):
            x, y = np.ascontiguousarray(inputs[:, rows]), np.ascontiguousarray(targets[:, rows])
            _, logits, final = self._forward(x, np.ascontiguousarray(state[:, :, rows]), None)
            return softmax_xent(logits, y.reshape(-1)) + (final,)

        blocks = parallel_map(block, _row_blocks(inputs.shape[1]))
        total = sum(b[0] for b in blocks)
        count = sum(b[1] for b in blocks)
        return total, count, np.concatenate([b[2] for b in blocks], axis=2)

    def run(self, inputs, state=None):
        """Feed inputs (T, B) through the model; returns the final state (used to prime)."""
        inputs, _, state = self._check_window(inputs, None, state)
        return self._forward(inputs, state, None)[2]

    def step(self, ids, state=None):
        """One step for a batch: ids (B,) -> next-token probabilities (B, V), new state."""
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
    def _check_ids(self, what, ids, allow_padding):
        ids = np.asarray(ids)
        if ids.ndim != 2 or 0 in ids.shape:
            raise ShapeError(f"{what} must be a non-empty (T, B) array of token ids, got shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ShapeError(f"{what} must hold integer token ids, got dtype {ids.dtype}")
        low = -1 if allow_padding else 0
        V = self.config.vocab_size
        if ids.min() < low or ids.max() >= V:
            bad = ids[(ids < low) | (ids >= V)]
            raise ShapeError(f"{what} has ids out of range [0, {V}): {sorted(set(bad.tolist()))[:10]}")
        return np.ascontiguousarray(ids, dtype=np.int32)

    def _check_window(self, inputs, targets, state):
        inputs = self._check_ids("inputs", inputs, allow_padding=False)
        if targets is not None:
            targets = self._check_ids("targets", targets, allow_padding=True)
            if targets.shape != inputs.shape:
                raise ShapeError(f"targets have shape {targets.shape} but inputs have {inputs.shape}")
        expected = self.initial_state(inputs.shape[1]).shape
        if state is None:
            state = self.initial_state(inputs.shape[1])
        else:
            state = np.asarray(state)
            if state.shape != expected:
                raise ShapeError(f"state has shape {state.shape}, expected {expected} (L, S, B, n_a)")
            if state.dtype != self.dtype:
                raise ShapeError(f"state has dtype {state.dtype}, expected {self.config.dtype}")
        return inputs, targets, state

    def _dropout_masks(self, shape, dropout, rng):
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        if dropout == 0.0 or self.config.num_layers == 1:
            return None
        if rng is None:
            raise ConfigError("dropout needs a random generator (rng)")
        T, B = shape
        H = self.config.hidden_size
        keep = 1.0 - dropout
        return [(rng.random((T, B, H)) < keep).astype(self.dtype) / self.dtype(keep)
                for _ in range(self.config.num_layers - 1)]

    # ------------------------------------------------------------------ forward pass
    def _layer(self, l):
        """Layer l's parameters by short name ("Wax", "Waa", "ba", and the cell's extras)."""
        prefix = f"l{l}."
        return {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}

    def _forward(self, inputs, state, masks):
        """Run all layers. Returns per-layer caches, logits (T·B, V) and the final state."""
        c = self.config
        cell = c.cell_def
        T, B = inputs.shape
        H, G, p = c.hidden_size, c.gates, self.params
        caches = []
        X = None  # input of the current layer, (T·B, n_x); None for the token layer
        final = np.empty_like(state)
        for l in range(c.num_layers):
            layer = self._layer(l)
            Z = np.empty((T * B, G * H), dtype=self.dtype)
            if X is None:
                embed(inputs.reshape(-1), layer["Wax"].T, layer["ba"], Z)
            else:
                matmul(X, layer["Wax"].T, Z)
                Z += layer["ba"]
            Z = Z.reshape(T, B, G * H)
            A = np.empty((T + 1, B, H), dtype=self.dtype)
            A[0] = state[l, 0]
            cache, finals = cell.forward(Z, A, state[l], layer["Waa"].T, layer,
                                         np.empty((B, G * H), dtype=self.dtype))
            final[l, 0] = A[T]
            for s, value in enumerate(finals, 1):
                final[l, s] = value
            caches.append((X, Z, A, cache))
            X = A[1:].reshape(T * B, H)
            if masks is not None and l < c.num_layers - 1:
                X = X * masks[l].reshape(T * B, H)
        logits = matmul(X, p["Wya"].T, np.empty((T * B, c.vocab_size), dtype=self.dtype))
        logits += p["by"]
        return caches, logits, final

    # ------------------------------------------------------------------ backward pass
    def _backward(self, inputs, caches, dlogits, masks):
        """Gradients of all parameters and of the initial state, from d loss / d logits."""
        c = self.config
        cell = c.cell_def
        T, B = inputs.shape
        H, G, p = c.hidden_size, c.gates, self.params
        grads = {}
        top = caches[-1][2][1:].reshape(T * B, H)  # A[1:] of the top layer
        grads["Wya"] = matmul(top.T, dlogits, np.empty((H, c.vocab_size), dtype=self.dtype)).T
        grads["by"] = dlogits.sum(axis=0)
        # d loss / d output of the current layer, (T·B, n_a)
        dX = matmul(dlogits, p["Wya"], np.empty((T * B, H), dtype=self.dtype))
        # zero on entry: the loss does not depend on the final state
        d_state = np.zeros((c.num_layers, c.state_size, B, H), dtype=self.dtype)
        for l in reversed(range(c.num_layers)):
            if masks is not None and l < c.num_layers - 1:
                dX *= masks[l].reshape(T * B, H)
            X, Z, A, cache = caches[l]
            layer = self._layer(l)
            dZx, dZa, extra = cell.backward(dX.reshape(T, B, H), Z, A, cache, layer, d_state[l], self.dtype)
            grads.update({f"l{l}.{name}": g for name, g in extra.items()})
            dZx2, dZa2 = dZx.reshape(T * B, G * H), dZa.reshape(T * B, G * H)
            grads[f"l{l}.Waa"] = matmul(A[:-1].reshape(T * B, H).T, dZa2, np.empty((H, G * H), dtype=self.dtype)).T
            grads[f"l{l}.ba"] = dZx2.sum(axis=0)
            if X is None:
                dWaxT = np.empty((c.vocab_size, G * H), dtype=self.dtype)
                embed_backward(inputs.reshape(-1), dZx2, dWaxT)
                grads[f"l{l}.Wax"] = dWaxT.T
            else:
                grads[f"l{l}.Wax"] = matmul(X.T, dZx2, np.empty((H, G * H), dtype=self.dtype)).T
                dX = matmul(dZx2, layer["Wax"], np.empty((T * B, H), dtype=self.dtype))
        return {name: grads[name] for name in p}, d_state
