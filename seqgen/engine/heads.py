"""Output layers of the three tasks, on the top layer's outputs X (T, B, D·n_a), D = 2 when
bidirectional (forward half first, the backward half mapped back to input positions).

- ``lm`` (the language model) and ``tag`` (many-to-many, Tx = Ty): ŷ⟨t⟩ = softmax(Wya·x⟨t⟩ + by)
  at every step; targets (T, B), -1 = no label (padding).
- ``classify`` (many-to-one): one ŷ per item from a pooled vector p (B, D·n_a), then
  softmax(Wya·p + by). ``pooling="last"``: the final state of each direction, that is the
  forward half at the item's last step and the backward half at its first step (where the
  backward recurrence ends); ``"mean"``: the mean of x⟨t⟩ over the item's steps.

Item lengths (B,) come from the targets: an item runs to its last labelled step, and a
classification target (T, B) holds the item's label at that step and -1 elsewhere, so every
task fits the (inputs, targets) windows of ``seqgen.training.data``.
"""

import numpy as np

TASKS = ("lm", "tag", "classify")
POOLINGS = ("last", "mean")


def lengths_from_targets(targets):
    """(T, B) targets -> (B,) item lengths: one past the last labelled step (T if none)."""
    T = targets.shape[0]
    valid = targets >= 0
    last = T - 1 - np.argmax(valid[::-1], axis=0)
    return np.where(valid.any(axis=0), last + 1, T).astype(np.int64)


def item_labels(targets, lengths):
    """A classification target (T, B) -> the label of each item (B,), -1 where none."""
    return np.ascontiguousarray(targets[lengths - 1, np.arange(targets.shape[1])], dtype=np.int32)


def reversal(lengths, T):
    """Time indices (T, B) that reverse each column within its own length and leave its
    padding in place: rev[t, b] = len_b − 1 − t for t < len_b, else t. Its own inverse, so
    one gather maps inputs into the backward recurrence's time and its outputs back."""
    t = np.arange(T)[:, None]
    lengths = np.asarray(lengths)[None, :]
    return np.where(t < lengths, lengths - 1 - t, t)


def pool(X, lengths, pooling, H, bidirectional):
    """X (T, B, D·n_a) -> (B, D·n_a) by ``pooling`` (see the module docstring)."""
    T, B, _ = X.shape
    cols = np.arange(B)
    if pooling == "mean":
        mask = (np.arange(T)[:, None] < lengths[None, :]).astype(X.dtype)
        return np.einsum("tbk,tb->bk", X, mask) / lengths[:, None].astype(X.dtype)
    P = np.array(X[lengths - 1, cols])
    if bidirectional:
        P[:, H:] = X[0, :, H:]
    return P


def pool_backward(dP, lengths, pooling, H, bidirectional, T):
    """d loss / d pooled (B, D·n_a) -> d loss / d X (T, B, D·n_a)."""
    B, K = dP.shape
    dX = np.zeros((T, B, K), dtype=dP.dtype)
    cols = np.arange(B)
    if pooling == "mean":
        mask = (np.arange(T)[:, None] < lengths[None, :]).astype(dP.dtype)
        return mask[:, :, None] * (dP / lengths[:, None].astype(dP.dtype))[None]
    if bidirectional:
        dX[lengths - 1, cols, :H] = dP[:, :H]
        dX[0, :, H:] += dP[:, H:]
    else:
        dX[lengths - 1, cols] = dP
    return dX
