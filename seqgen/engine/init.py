"""Parameter initialisation, seeded and reproducible.

``"orthogonal"`` (default): each gate block of Waa is a random orthogonal matrix (keeps the
recurrent Jacobian well conditioned early on); Wax ~ N(0, 1/n_in) with n_in the input width of
the layer (n_a for layer 0, whose one-hot input acts as an embedding lookup); Wya ~ N(0, 1/n_a);
biases zero except the LSTM forget gate, which starts at 1 so the cell remembers by default.
``"small"``: every weight ~ N(0, 0.01²), biases zero — the Sequence Models notes' initialisation.

Matrices are allocated so that ``W.T`` is C-contiguous: the kernels compute ``rows @ W.T``.
"""

import numpy as np

from seqgen.errors import ConfigError

INITS = ("orthogonal", "small")


def _orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _transposed(shape_T, values):
    """A matrix of shape reversed(shape_T) whose transpose is C-contiguous."""
    out = np.empty(shape_T, dtype=values.dtype)
    out[...] = values
    return out.T


def init_params(config, seed=0, dtype=np.float32, init="orthogonal"):
    """A params dict (names as in docs/engine.md) for a ModelConfig."""
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    rng = np.random.default_rng(seed)
    cell = config.cell_def
    G, H, V, D = cell.G, config.hidden_size, config.vocab_size, config.directions
    params = {}
    for l in range(config.num_layers):
        n_x = V if l == 0 else D * H
        for prefix in config.prefixes(l):  # a bidirectional layer: forward, then backward weights
            if init == "small":
                WaxT = 0.01 * rng.standard_normal((n_x, G * H))
                WaaT = 0.01 * rng.standard_normal((H, G * H))
            else:
                n_in = H if l == 0 else n_x
                WaxT = rng.standard_normal((n_x, G * H)) / np.sqrt(n_in)
                WaaT = np.concatenate([_orthogonal(rng, H).T for _ in range(G)], axis=1)
            ba = np.zeros(G * H)
            cell.init_bias(ba, H, init)
            params[f"{prefix}Wax"] = _transposed((n_x, G * H), WaxT.astype(dtype))
            params[f"{prefix}Waa"] = _transposed((H, G * H), WaaT.astype(dtype))
            params[f"{prefix}ba"] = ba.astype(dtype)
            params.update({f"{prefix}{name}": np.zeros(shape, dtype=dtype)
                           for name, shape in cell.extra_params(H).items()})
    K, n_y = D * H, config.output_size
    scale = 0.01 if init == "small" else 1.0 / np.sqrt(K)
    params["Wya"] = _transposed((K, n_y), (scale * rng.standard_normal((K, n_y))).astype(dtype))
    params["by"] = np.zeros(n_y, dtype=dtype)
    return params
