"""The cells, each defined once: gate blocks, state arrays, extra parameters, initialisation and
the kernels of its recurrence. The model, the initialiser, the sampler and the checkpoint
schema all read ``CELLS``; adding a cell means adding one class here (and its kernels in
``seqgen.kernels``; see docs/engine.md, "Adding a cell").

Shapes: Z (T, B, G·n_a) input projections in, gate activations out; A (T+1, B, n_a) with A[0]
the initial a; ``state`` is one layer's initial state (S, B, n_a), S = len(states).
"""

from importlib import import_module

import numpy as np


class Cell:
    """What makes a cell a cell. Subclasses set the class attributes and the two passes."""

    name: str
    gates: tuple  # names of the G gate blocks, in the order of Waa's rows
    states: tuple = ("a",)  # arrays of state per layer; a first
    code: int  # the sampler kernel's switch (seqgen.kernels.sample)

    @property
    def G(self):
        return len(self.gates)

    @property
    def S(self):
        return len(self.states)

    def extra_params(self, H):
        """Per-layer parameters beyond Wax, Waa and ba: name -> shape."""
        return {}

    def init_bias(self, ba, H, scheme):
        """Set the initial bias ``ba`` (G·n_a,) in place (zeros before the call)."""

    @property
    def kernels(self):
        """The cell's kernel module, imported on first use so only its kernels compile."""
        return import_module(f"seqgen.kernels.{self.name}")

    def forward(self, Z, A, state, WaaT, layer, za):
        """Run the recurrence over T steps in place; returns (cache, final extra states
        [(S-1) arrays (B, n_a)]). ``layer``: the layer's parameters by short name."""
        raise NotImplementedError

    def backward(self, dA, Z, A, cache, layer, d_state, dtype):
        """From dA (T, B, n_a) (overwritten) -> (dZx, dZa, extra grads by short name);
        d_state (S, B, n_a) is d loss / d final state on entry, d initial state on return.
        dZx: d pre-activations on the input side, dZa on the recurrent side."""
        raise NotImplementedError


class RNN(Cell):
    """The notes' basic cell: a⟨t⟩ = tanh(Wax·x⟨t⟩ + Waa·a⟨t−1⟩ + ba)."""

    name, gates, code = "rnn", ("a",), 0

    def forward(self, Z, A, state, WaaT, layer, za):
        self.kernels.rnn_forward(Z, A, WaaT, za)
        return (), []

    def backward(self, dA, Z, A, cache, layer, d_state, dtype):
        dZ = np.empty_like(Z)
        self.kernels.rnn_backward(dA, A, layer["Waa"], dZ, d_state[0])
        return dZ, dZ, {}


class LSTM(Cell):
    """Gates [i, f, g, o]: c⟨t⟩ = f·c⟨t−1⟩ + i·g, a⟨t⟩ = o·tanh(c⟨t⟩)."""

    name, gates, states, code = "lstm", ("i", "f", "g", "o"), ("a", "c"), 1

    def init_bias(self, ba, H, scheme):
        if scheme == "orthogonal":
            ba[H:2 * H] = 1.0  # forget gate open: the cell remembers by default

    def forward(self, Z, A, state, WaaT, layer, za):
        T, B, H = A.shape[0] - 1, A.shape[1], A.shape[2]
        C = np.empty_like(A)
        C[0] = state[1]
        TanhC = np.empty((T, B, H), dtype=A.dtype)
        self.kernels.lstm_forward(Z, A, C, TanhC, WaaT, za)
        return (C, TanhC), [C[T]]

    def backward(self, dA, Z, A, cache, layer, d_state, dtype):
        C, TanhC = cache
        dZ = np.empty_like(Z)
        self.kernels.lstm_backward(dA, Z, C, TanhC, layer["Waa"], dZ, d_state[0], d_state[1])
        return dZ, dZ, {}


class GRU(Cell):
    """Gates [r, z, n], reset after the recurrent product: n = tanh(zx_n + r·(Waa_n·a + bn)),
    a⟨t⟩ = (1 − z)·n + z·a⟨t−1⟩."""

    name, gates, code = "gru", ("r", "z", "n"), 2

    def extra_params(self, H):
        return {"bn": (H,)}

    def forward(self, Z, A, state, WaaT, layer, za):
        T, B, H = A.shape[0] - 1, A.shape[1], A.shape[2]
        HN = np.empty((T, B, H), dtype=A.dtype)
        self.kernels.gru_forward(Z, A, HN, WaaT, layer["bn"], za)
        return (HN,), []

    def backward(self, dA, Z, A, cache, layer, d_state, dtype):
        (HN,) = cache
        B, H = dA.shape[1], dA.shape[2]
        dZx, dZa = np.empty_like(Z), np.empty_like(Z)
        self.kernels.gru_backward(dA, Z, A, HN, layer["Waa"], dZx, dZa, d_state[0], np.empty((B, H), dtype=dtype))
        return dZx, dZa, {"bn": dZa[:, :, 2 * H:].sum(axis=(0, 1))}


CELLS = {cell.name: cell for cell in (RNN(), LSTM(), GRU())}


def get_cell(name):
    """The registered cell called ``name``; KeyError if none (callers validate first)."""
    return CELLS[name]
