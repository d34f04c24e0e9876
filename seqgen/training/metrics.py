"""Scores of taggers and classifiers: accuracy, per-label precision/recall/F1 and, for BIO
tags, entity-level F1 counted as the CoNLL evaluation script (conlleval) counts it: an entity is
a maximal span that starts with B-X (or with I-X after anything but X) and continues with I-X;
it is right only if both its boundaries and its type are right."""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple


class Score(NamedTuple):
    precision: float
    recall: float
    f1: float
    support: int  # gold occurrences


def _score(tp, predicted, gold):
    p = tp / predicted if predicted else 0.0
    r = tp / gold if gold else 0.0
    return Score(p, r, 2 * p * r / (p + r) if p + r else 0.0, gold)


def per_label(gold, predicted, labels):
    """Flat sequences of gold and predicted labels -> {label: Score} for ``labels``."""
    tp, n_pred, n_gold = Counter(), Counter(predicted), Counter(gold)
    for g, p in zip(gold, predicted):
        if g == p:
            tp[g] += 1
    return {label: _score(tp[label], n_pred[label], n_gold[label]) for label in labels}


def accuracy(gold, predicted):
    return sum(g == p for g, p in zip(gold, predicted)) / max(len(gold), 1)


def _split(tag):
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def entities(tags):
    """BIO tags of one sentence -> set of (start, end, type) spans, end exclusive."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, t = _split(tag)
        begins = prefix == "B" or (prefix == "I" and (start is None or t != kind))
        if start is not None and (prefix == "O" or begins):
            spans.add((start, i, kind))
            start, kind = None, None
        if begins:
            start, kind = i, t
    return spans


def entity_f1(gold_sentences, predicted_sentences):
    """Entity-level Score over sentences (lists of BIO tags); support = gold entities."""
    tp = n_pred = n_gold = 0
    for gold, pred in zip(gold_sentences, predicted_sentences):
        g, p = entities(gold), entities(pred)
        tp, n_pred, n_gold = tp + len(g & p), n_pred + len(p), n_gold + len(g)
    return _score(tp, n_pred, n_gold)


def is_bio(labels):
    """Whether a label set looks like BIO tags (O, B-X, I-X)."""
    return any(label.startswith(("B-", "I-")) for label in labels) and all(
        label == "O" or label.startswith(("B-", "I-")) for label in labels)
