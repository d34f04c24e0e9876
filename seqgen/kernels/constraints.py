"""Sampling rules: one stream's logits (V,) -> the logits its next token is chosen from.

- Repetition penalty (CTRL, Keskar et al. 2019, arXiv:1909.05858, section 4.1, in the form of
  Hugging Face's ``repetition_penalty``): a token seen in the last ``window`` tokens (0: all of
  them) has its logit divided by the penalty when positive, multiplied when negative.
- No-repeat n-grams (Hugging Face's ``no_repeat_ngram_size``): a token that would complete an
  n-gram already in the history is not drawn. If that would leave no token, the step is not
  blocked (the other rules still hold).
- Token classes (``classes`` (V,) uint8, bits below): BANNED tokens are never drawn; once
  ``max_notes`` NOTE tokens have been drawn since the last STEP_END token, no NOTE token is.

The history holds the stream's primer and every token drawn since; the kernels only read it.
"""

import math

import numpy as np

from seqgen._numba import jit

BANNED, NOTE, STEP_END = 1, 2, 4


@jit
def apply_rules(row, adjusted, classes, max_notes, step_notes, penalty, window, ngram, history, hist_len, mark,
                tick):
    """adjusted (V,) = row (V,) under one stream's rules (-inf: never drawn). history (C,) int32,
    its first hist_len entries used; mark (V,) int64 scratch and tick (1,) int64: a fresh stamp
    per use marks each token once without clearing mark."""
    full = max_notes > 0 and step_notes >= max_notes
    for v in range(row.shape[0]):
        c = classes[v]
        if (c & BANNED) or (full and (c & NOTE)):
            adjusted[v] = -np.inf
        else:
            adjusted[v] = row[v]
    if penalty != 1.0:
        tick[0] += 1
        stamp = tick[0]
        start = 0 if window <= 0 else max(0, hist_len - window)
        for i in range(start, hist_len):
            t = history[i]
            if mark[t] != stamp:
                mark[t] = stamp
                x = adjusted[t]
                adjusted[t] = x / penalty if x > 0 else x * penalty
    if ngram > 0:
        block_ngrams(adjusted, ngram, history, hist_len, mark, tick)


@jit
def block_ngrams(adjusted, n, history, hist_len, mark, tick):
    """Set to -inf every token t such that (the last n-1 tokens of history, t) already occurs
    in history, unless that would leave no token with a finite logit."""
    if hist_len < n - 1:
        return
    tick[0] += 1
    stamp = tick[0]
    prefix = hist_len - n + 1
    newly = 0
    for i in range(0, hist_len - n + 1):
        match = True
        for j in range(n - 1):
            if history[i + j] != history[prefix + j]:
                match = False
                break
        if match:
            t = history[i + n - 1]
            if mark[t] != stamp and adjusted[t] > -np.inf:
                mark[t] = stamp
                newly += 1
    if newly == 0:
        return
    left = 0
    for v in range(adjusted.shape[0]):
        if adjusted[v] > -np.inf:
            left += 1
    if newly < left:
        for v in range(adjusted.shape[0]):
            if mark[v] == stamp:
                adjusted[v] = -np.inf


@jit
def log_prob(row, token):
    """log softmax(row)[token], in float64."""
    m = row[0]
    for v in range(1, row.shape[0]):
        if row[v] > m:
            m = row[v]
    total = 0.0
    for v in range(row.shape[0]):
        total += math.exp(row[v] - m)
    return row[token] - m - math.log(total)


@jit
def notes_after(token, classes, step_notes):
    """The count of NOTE tokens in the current step once ``token`` is drawn."""
    c = classes[token]
    if c & STEP_END:
        return 0
    if c & NOTE:
        return step_notes + 1
    return step_notes
