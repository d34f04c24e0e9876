"""Reference equations in plain numpy: the test oracle for the numba kernels, and a teaching aid.

Written for reading, not speed. Each cell follows the notes' layout: one example per *column*,
so ``xt`` is (n_x, m), ``a_prev`` is (n_a, m) and ``a_next = tanh(Waa @ a_prev + Wax @ xt + ba)``.
Gates are stacked in one matrix per cell (the same layout the kernels and ``Model.params`` use):

- ``rnn``:  G = 1. a⟨t⟩ = tanh(Waa·a⟨t−1⟩ + Wax·x⟨t⟩ + ba)
- ``lstm``: G = 4, rows [i, f, g, o] (i is the notes' update gate Γu, g the candidate c̃):
  c⟨t⟩ = f ⊙ c⟨t−1⟩ + i ⊙ g,  a⟨t⟩ = o ⊙ tanh(c⟨t⟩)
- ``gru``:  G = 3, rows [r, z, n], with the reset gate applied after the recurrent product
  (as cuDNN and PyTorch do, so each step needs one recurrent product):
  n = tanh(Wax_n·x + ba_n + r ⊙ (Waa_n·a⟨t−1⟩ + bn)),  a⟨t⟩ = (1 − z) ⊙ n + z ⊙ a⟨t−1⟩

The output layer is ŷ⟨t⟩ = softmax(Wya·a⟨t⟩ + by) on the top layer, and the loss is the mean
negative log-likelihood per target token (targets < 0 are padding and ignored).

Parameter names (``params`` dict): per layer ``l`` the keys ``"l{l}.Wax"`` (G·n_a, n_x),
``"l{l}.Waa"`` (G·n_a, n_a), ``"l{l}.ba"`` (G·n_a,), and for GRU ``"l{l}.bn"`` (n_a,); then
``"Wya"`` (n_y, n_a) and ``"by"`` (n_y,). Layer 0's input is a one-hot token, so n_x = vocab size.
"""

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    """Column-wise softmax of (n_y, m) logits."""
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


# ---------------------------------------------------------------- basic RNN cell (the notes)
def rnn_cell_forward(xt, a_prev, Wax, Waa, ba):
    """One step: xt (n_x, m), a_prev (n_a, m) -> a_next (n_a, m), cache."""
    a_next = np.tanh(Waa @ a_prev + Wax @ xt + ba[:, None])
    return a_next, (a_next, a_prev, xt)


def rnn_cell_backward(da_next, cache, Wax, Waa):
    """Gradients of one step from da_next (n_a, m): dxt, da_prev, dWax, dWaa, dba."""
    a_next, a_prev, xt = cache
    dtanh = da_next * (1 - a_next**2)
    dWax = dtanh @ xt.T
    dWaa = dtanh @ a_prev.T
    dba = dtanh.sum(axis=1)
    dxt = Wax.T @ dtanh
    da_prev = Waa.T @ dtanh
    return dxt, da_prev, {"Wax": dWax, "Waa": dWaa, "ba": dba}


# ---------------------------------------------------------------- LSTM cell
def lstm_cell_forward(xt, a_prev, c_prev, Wax, Waa, ba):
    """One step -> a_next, c_next (n_a, m), cache. Gate rows [i, f, g, o]."""
    n_a = a_prev.shape[0]
    z = Wax @ xt + Waa @ a_prev + ba[:, None]
    i = sigmoid(z[0 * n_a : 1 * n_a])
    f = sigmoid(z[1 * n_a : 2 * n_a])
    g = np.tanh(z[2 * n_a : 3 * n_a])
    o = sigmoid(z[3 * n_a : 4 * n_a])
    c_next = f * c_prev + i * g
    a_next = o * np.tanh(c_next)
    return a_next, c_next, (i, f, g, o, c_next, c_prev, a_prev, xt)


def lstm_cell_backward(da_next, dc_next, cache, Wax, Waa):
    """Gradients of one step: dxt, da_prev, dc_prev, param grads."""
    i, f, g, o, c_next, c_prev, a_prev, xt = cache
    tanh_c = np.tanh(c_next)
    do = da_next * tanh_c
    dc = dc_next + da_next * o * (1 - tanh_c**2)
    di = dc * g
    df = dc * c_prev
    dg = dc * i
    dz = np.concatenate(
        [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=0
    )
    grads = {"Wax": dz @ xt.T, "Waa": dz @ a_prev.T, "ba": dz.sum(axis=1)}
    return Wax.T @ dz, Waa.T @ dz, dc * f, grads


# ---------------------------------------------------------------- GRU cell
def gru_cell_forward(xt, a_prev, Wax, Waa, ba, bn):
    """One step -> a_next (n_a, m), cache. Gate rows [r, z, n]."""
    n_a = a_prev.shape[0]
    zx = Wax @ xt + ba[:, None]
    za = Waa @ a_prev
    r = sigmoid(zx[:n_a] + za[:n_a])
    u = sigmoid(zx[n_a : 2 * n_a] + za[n_a : 2 * n_a])  # the update gate "z"
    hn = za[2 * n_a :] + bn[:, None]
    n = np.tanh(zx[2 * n_a :] + r * hn)
    a_next = (1 - u) * n + u * a_prev
    return a_next, (r, u, n, hn, a_prev, xt)


def gru_cell_backward(da_next, cache, Wax, Waa):
    """Gradients of one step: dxt, da_prev, param grads."""
    r, u, n, hn, a_prev, xt = cache
    dn = da_next * (1 - u)
    du = da_next * (a_prev - n)
    dn_pre = dn * (1 - n**2)
    dr_pre = dn_pre * hn * r * (1 - r)
    du_pre = du * u * (1 - u)
    dzx = np.concatenate([dr_pre, du_pre, dn_pre], axis=0)
    dza = np.concatenate([dr_pre, du_pre, dn_pre * r], axis=0)
    grads = {
        "Wax": dzx @ xt.T,
        "Waa": dza @ a_prev.T,
        "ba": dzx.sum(axis=1),
        "bn": (dn_pre * r).sum(axis=1),
    }
    da_prev = da_next * u + Waa.T @ dza
    return Wax.T @ dzx, da_prev, grads


# ---------------------------------------------------------------- whole sequence, stacked layers
def one_hot(ids, n):
    """(m,) ids -> (n, m) one-hot columns."""
    x = np.zeros((n, ids.shape[0]))
    x[ids, np.arange(ids.shape[0])] = 1.0
    return x


def loss_and_grads(cell, params, inputs, targets, state):
    """Mean NLL per target token, its gradients, and the final state; one step at a time.

    inputs, targets: (T, m) int token ids (targets < 0 are ignored); state: (L, S, m, n_a) in the
    kernels' row layout (S = 2 for LSTM: [a, c], else 1). Returns (loss, grads, final_state,
    d_state) where grads has the keys of ``params`` and d_state is the gradient of the loss with
    respect to the initial state.
    """
    T, m = inputs.shape
    L = state.shape[0]
    n_y = params["Wya"].shape[0]
    layer = [{k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"l{l}.")} for l in range(L)]
    a = [state[l, 0].T.copy() for l in range(L)]
    c = [state[l, 1].T.copy() if cell == "lstm" else None for l in range(L)]
    caches = [[None] * T for _ in range(L)]
    y_hat = []
    for t in range(T):
        x = one_hot(inputs[t], n_y)
        for l in range(L):
            p = layer[l]
            if cell == "rnn":
                a[l], caches[l][t] = rnn_cell_forward(x, a[l], p["Wax"], p["Waa"], p["ba"])
            elif cell == "lstm":
                a[l], c[l], caches[l][t] = lstm_cell_forward(x, a[l], c[l], p["Wax"], p["Waa"], p["ba"])
            else:
                a[l], caches[l][t] = gru_cell_forward(x, a[l], p["Wax"], p["Waa"], p["ba"], p["bn"])
            x = a[l]
        y_hat.append((softmax(params["Wya"] @ x + params["by"][:, None]), x))

    valid = targets >= 0
    count = max(int(valid.sum()), 1)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    loss = 0.0
    da = [np.zeros_like(a[l]) for l in range(L)]
    dc = [np.zeros_like(a[l]) for l in range(L)]
    for t in reversed(range(T)):
        probs, a_top = y_hat[t]
        dy = probs.copy()
        cols = np.nonzero(valid[t])[0]
        loss -= np.log(probs[targets[t, cols], cols]).sum()
        dy[targets[t, cols], cols] -= 1.0
        dy[:, ~valid[t]] = 0.0
        dy /= count
        grads["Wya"] += dy @ a_top.T
        grads["by"] += dy.sum(axis=1)
        dx = params["Wya"].T @ dy
        for l in reversed(range(L)):
            p = layer[l]
            if cell == "rnn":
                dx, da[l], g = rnn_cell_backward(dx + da[l], caches[l][t], p["Wax"], p["Waa"])
            elif cell == "lstm":
                dx, da[l], dc[l], g = lstm_cell_backward(dx + da[l], dc[l], caches[l][t], p["Wax"], p["Waa"])
            else:
                dx, da[l], g = gru_cell_backward(dx + da[l], caches[l][t], p["Wax"], p["Waa"])
            for k, v in g.items():
                grads[f"l{l}.{k}"] += v
    final = np.stack([np.stack([a[l].T] + ([c[l].T] if cell == "lstm" else [])) for l in range(L)])
    d_state = np.stack([np.stack([da[l].T] + ([dc[l].T] if cell == "lstm" else [])) for l in range(L)])
    return loss / count, grads, final, d_state


# ---------------------------------------------------------------- tasks, both directions
def _step(cell, p, x, a, c):
    """One step of any cell -> (a_next, c_next or None, cache)."""
    if cell == "rnn":
        a, cache = rnn_cell_forward(x, a, p["Wax"], p["Waa"], p["ba"])
        return a, None, cache
    if cell == "lstm":
        return lstm_cell_forward(x, a, c, p["Wax"], p["Waa"], p["ba"])
    a, cache = gru_cell_forward(x, a, p["Wax"], p["Waa"], p["ba"], p["bn"])
    return a, None, cache


def _step_backward(cell, p, da, dc, cache):
    """One step back -> (dx, da_prev, dc_prev or None, param grads)."""
    if cell == "rnn":
        dx, da, g = rnn_cell_backward(da, cache, p["Wax"], p["Waa"])
        return dx, da, None, g
    if cell == "lstm":
        return lstm_cell_backward(da, dc, cache, p["Wax"], p["Waa"])
    dx, da, g = gru_cell_backward(da, cache, p["Wax"], p["Waa"])
    return dx, da, None, g


def task_loss_and_grads(cell, params, inputs, targets, state, task="tag", bidirectional=False, pooling="last"):
    """The loss of a tagger or classifier (one or two directions per layer) and its gradients,
    one item and one step at a time.

    inputs, targets (T, m); an item runs to its last step with a target >= 0 (its length n);
    a ``classify`` item's label is its target at step n − 1. A backward direction reads the
    item's n steps from the last to the first and its output at step t is concatenated after
    the forward one: x⟨t⟩ = [a→⟨t⟩; a←⟨t⟩]. ``pooling`` "last" classifies [a→⟨n−1⟩; a←⟨0⟩]
    (each direction's final state), "mean" the mean of x⟨t⟩ over the item. Parameters of the
    backward direction are named "l{l}r.*". state (L·D, S, m, n_a) as in the kernels' layout.
    Returns (mean NLL per target, grads, d_state)."""
    T, m = inputs.shape
    D = 2 if bidirectional else 1
    L = state.shape[0] // D
    V = params["l0.Wax"].shape[1]
    H = params["l0.Waa"].shape[1]
    dirs = [""] + (["r"] if bidirectional else [])
    layer = {(l, d): {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"l{l}{d}.")}
             for l in range(L) for d in dirs}
    valid = targets >= 0
    lengths = [int(np.nonzero(valid[:, b])[0].max()) + 1 if valid[:, b].any() else T for b in range(m)]
    count = max(int(valid.sum()) if task == "tag" else sum(int(valid[n - 1, b]) for b, n in enumerate(lengths)), 1)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    d_state = np.zeros_like(state)
    loss = 0.0
    for b, n in enumerate(lengths):
        xs = [one_hot(inputs[t, b : b + 1], V) for t in range(n)]
        runs = []  # per layer: per direction (order, caches)
        for l in range(L):
            outs = []
            run = []
            for di, d in enumerate(dirs):
                order = list(range(n)) if d == "" else list(reversed(range(n)))
                a = state[l * D + di, 0, b][:, None].copy()
                c = state[l * D + di, 1, b][:, None].copy() if cell == "lstm" else None
                out, caches = [None] * n, [None] * n
                for t in order:
                    a, c, caches[t] = _step(cell, layer[(l, d)], xs[t], a, c)
                    out[t] = a
                outs.append(out)
                run.append((order, caches))
            runs.append(run)
            xs = [np.concatenate([o[t] for o in outs], axis=0) for t in range(n)]
        # the output layer
        dxs = [np.zeros((D * H, 1)) for _ in range(n)]
        if task == "tag":
            for t in range(n):
                if targets[t, b] < 0:
                    continue
                probs = softmax(params["Wya"] @ xs[t] + params["by"][:, None])
                y = targets[t, b]
                loss -= np.log(probs[y, 0])
                dy = probs.copy()
                dy[y] -= 1.0
                dy /= count
                grads["Wya"] += dy @ xs[t].T
                grads["by"] += dy[:, 0]
                dxs[t] += params["Wya"].T @ dy
        else:
            y = targets[n - 1, b]
            if pooling == "mean":
                pooled = sum(xs) / n
            else:
                pooled = np.concatenate([xs[n - 1][:H], xs[0][H:]], axis=0)
            if y >= 0:
                probs = softmax(params["Wya"] @ pooled + params["by"][:, None])
                loss -= np.log(probs[y, 0])
                dy = probs.copy()
                dy[y] -= 1.0
                dy /= count
                grads["Wya"] += dy @ pooled.T
                grads["by"] += dy[:, 0]
                dp = params["Wya"].T @ dy
                if pooling == "mean":
                    for t in range(n):
                        dxs[t] += dp / n
                else:
                    dxs[n - 1][:H] += dp[:H]
                    dxs[0][H:] += dp[H:]
        # back through the layers, each direction through its own time order
        for l in reversed(range(L)):
            below = [0.0] * n
            for di, d in enumerate(dirs):
                order, caches = runs[l][di]
                da = np.zeros((H, 1))
                dc = np.zeros((H, 1))
                for t in reversed(order):
                    dx, da, dc, g = _step_backward(cell, layer[(l, d)], dxs[t][di * H:(di + 1) * H] + da, dc, caches[t])
                    below[t] = below[t] + dx
                    for k, v in g.items():
                        grads[f"l{l}{d}.{k}"] += v
                d_state[l * D + di, 0, b] = da[:, 0]
                if cell == "lstm":
                    d_state[l * D + di, 1, b] = dc[:, 0]
            dxs = below
    return loss / count, grads, d_state
