"""Training data: token ids cut into (T, B) windows, in two modes.

- ``stream``: the corpus is one long sequence split into B parallel streams; consecutive windows
  of T steps continue each stream, so the hidden state is carried between them (truncated BPTT,
  as char-rnn does). The state is reset at the start of each epoch.
- ``items``: the corpus is a list of items (dinosaur names, tunes), each ending with the
  tokenizer's separator. B items are padded into one batch (padding targets are -1 and carry no
  loss); the state starts at zero for every batch, and an item longer than T is cut into
  windows with the state carried between them. Each item is fed starting from the separator
  token, which marks "start of item". Items are shuffled each epoch with a seeded generator.

Tag and classify models train on ``LabelledWindows``: labelled items (seqgen.plugins.labelled),
a batch of them per window, each from a zero state.

A window is addressed by (epoch, cursor), so training can stop and resume at the same place.
"""

import tempfile
from typing import NamedTuple

import numpy as np

from seqgen.errors import ConfigError, CorpusError, TokenizerError
from seqgen.training import seeds

MODES = ("stream", "items")
IN_MEMORY_TOKENS = 50_000_000  # above this, encoded ids spill to a memory-mapped temporary file


def encode_corpus(tokenizer, path, in_memory_tokens=IN_MEMORY_TOKENS):
    """A corpus (file or directory) -> int32 ids of all its documents, read and encoded one
    document at a time. Up to ``in_memory_tokens`` ids stay in memory; beyond that they go to
    an anonymous temporary file that is memory-mapped, so a corpus of many files larger than
    memory needs memory only for its largest file. Unknown tokens: see Tokenizer.encode."""
    chunks, total, spill = [], 0, None
    for document in tokenizer.iter_documents(path):
        try:
            ids = tokenizer.encode(document)
        except TokenizerError as e:
            raise TokenizerError(f"{path}: {e}") from None
        total += len(ids)
        if spill is None and total > in_memory_tokens:
            spill = tempfile.TemporaryFile()  # unlinked at once: nothing is left behind
            for chunk in chunks:
                chunk.tofile(spill)
            chunks = []
        if spill is None:
            chunks.append(ids)
        else:
            ids.tofile(spill)
    if spill is None:
        return np.concatenate(chunks)
    spill.flush()
    return np.memmap(spill, dtype=np.int32, mode="r+", shape=(total,))


class Window(NamedTuple):
    inputs: np.ndarray  # (T, B) int32
    targets: np.ndarray  # (T, B) int32, -1 = padding
    reset: bool  # start from a zero state


def split_items(ids, separator_id):
    """Concatenated ids -> list of item arrays, each ending with the separator."""
    ends = np.flatnonzero(ids == separator_id) + 1
    starts = np.concatenate([[0], ends[:-1]])
    items = [ids[s:e] for s, e in zip(starts, ends) if e - s > 1]  # drop empty items ("\n\n")
    if len(ends) == 0 or ends[-1] < len(ids):  # trailing item without separator
        tail = ids[ends[-1] if len(ends) else 0 :]
        if len(tail):
            items.append(np.concatenate([tail, [separator_id]]).astype(np.int32))
    return items


class StreamWindows:
    """B parallel streams over ids, cut into windows of T steps."""

    mode = "stream"

    def __init__(self, ids, batch_size, seq_length, what="corpus"):
        ids = np.asarray(ids, dtype=np.int32)
        per_stream = (len(ids) - 1) // batch_size
        if per_stream < seq_length:
            raise CorpusError(
                f"{what} has {len(ids)} tokens: too short for one window of {batch_size} streams x "
                f"{seq_length} steps (needs {batch_size * seq_length + 1}); lower batch_size or seq_length",
                fields=("batch_size", "seq_length"))
        self.inputs = ids[: batch_size * per_stream].reshape(batch_size, per_stream)
        self.targets = ids[1 : batch_size * per_stream + 1].reshape(batch_size, per_stream)
        self.seq_length = seq_length
        self.batch_size = batch_size
        self.num_tokens = batch_size * per_stream

    def windows_in_epoch(self, epoch):
        return self.inputs.shape[1] // self.seq_length

    def window(self, epoch, cursor):
        t0 = cursor * self.seq_length
        sl = slice(t0, t0 + self.seq_length)
        return Window(np.ascontiguousarray(self.inputs[:, sl].T), np.ascontiguousarray(self.targets[:, sl].T),
                      cursor == 0)

    def iter_windows(self):
        """Every window of one pass, in order (for evaluation)."""
        return (self.window(0, c) for c in range(self.windows_in_epoch(0)))


class ItemWindows:
    """Items padded into batches of B, each batch cut into windows of at most T steps."""

    mode = "items"

    def __init__(self, items, separator_id, batch_size, seq_length, seed=0, shuffle=True, what="corpus"):
        if not items:
            raise CorpusError(f"{what} has no items")
        self.items = items
        self.separator_id = separator_id
        self.batch_size = min(batch_size, len(items))
        self.seq_length = seq_length
        self.seed = seed
        self.shuffle = shuffle
        self.num_tokens = sum(len(i) for i in items)
        self._plan = {}

    def _epoch_plan(self, epoch):
        """[(item indices of the batch, window index in the batch)] for one epoch."""
        if epoch not in self._plan:
            n = len(self.items)
            order = seeds.generator(self.seed, "shuffle", epoch).permutation(n) if self.shuffle else np.arange(n)
            plan = []
            for b in range(0, n - self.batch_size + 1, self.batch_size):
                batch = order[b : b + self.batch_size]
                longest = max(len(self.items[i]) for i in batch)
                plan.extend((batch, w) for w in range(-(-longest // self.seq_length)))
            self._plan = {epoch: plan}
        return self._plan[epoch]

    def windows_in_epoch(self, epoch):
        return len(self._epoch_plan(epoch))

    def window(self, epoch, cursor):
        batch, w = self._epoch_plan(epoch)[cursor]
        return self._window(batch, w)

    def _window(self, batch, w):
        T = self.seq_length
        inputs = np.full((T, len(batch)), self.separator_id, dtype=np.int32)
        targets = np.full((T, len(batch)), -1, dtype=np.int32)
        for col, i in enumerate(batch):
            item = self.items[i]
            fed = np.concatenate([[self.separator_id], item[:-1]])
            seg_in, seg_out = fed[w * T : (w + 1) * T], item[w * T : (w + 1) * T]
            inputs[: len(seg_in), col] = seg_in
            targets[: len(seg_out), col] = seg_out
        used = max(1, int((targets >= 0).any(axis=1).nonzero()[0].max(initial=0)) + 1)
        return Window(inputs[:used], targets[:used], w == 0)

    def iter_windows(self):
        """Every window of one pass over all items, in file order (for evaluation)."""
        for b in range(0, len(self.items), self.batch_size):
            batch = np.arange(b, min(b + self.batch_size, len(self.items)))
            longest = max(len(self.items[i]) for i in batch)
            for w in range(-(-longest // self.seq_length)):
                yield self._window(batch, w)


def _checked_separator(separator_id):
    if separator_id is None:
        raise ConfigError("items mode needs a tokenizer with an item separator (e.g. chars with separator '\\n')")
    return separator_id


def make_windows(mode, data, separator_id, batch_size, seq_length, seed=0, shuffle=True, what="corpus"):
    """The window source for a mode ("stream" or "items"). data: ids, or (items mode) a list of
    items as ``split_validation`` returns."""
    if mode == "stream":
        return StreamWindows(data, batch_size, seq_length, what)
    if mode == "items":
        items = split_items(data, _checked_separator(separator_id)) if isinstance(data, np.ndarray) else data
        return ItemWindows(items, separator_id, batch_size, seq_length, seed, shuffle, what)
    raise ConfigError(f"unknown mode {mode!r}; choose stream or items")


def evaluation_windows(mode, data, separator_id, batch_size, seq_length, what="corpus"):
    """Windows for one pass in order (evaluation). In stream mode B and T shrink to fit a short
    text instead of failing."""
    if mode == "stream":
        seq_length = max(1, min(seq_length, len(data) - 1))
        batch_size = max(1, min(batch_size, (len(data) - 1) // seq_length))
    return make_windows(mode, data, separator_id, batch_size, seq_length, shuffle=False, what=what)


def split_validation(ids, separator_id, mode, fraction, seed=0, what="corpus"):
    """(train, valid) data for ``make_windows``: in stream mode the first and the last
    ``fraction`` of the ids; in items mode lists of items, a seeded random ``fraction`` of them
    held out. Both are views into ``ids`` (no copy); they never overlap. valid is None when
    fraction is 0."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"validation fraction must be in [0, 1), got {fraction}")
    if mode == "items":
        return split_labelled(split_items(ids, _checked_separator(separator_id)), fraction, seed, what)
    if fraction == 0:
        return ids, None
    cut = int(len(ids) * (1 - fraction))
    return ids[:cut], ids[cut:]


def augment_training(tokenizer, data, separator_id, mode):
    """Training data as ``split_validation`` returns it -> the same with the tokenizer's
    augmented copies (``Tokenizer.augment``, e.g. midi's transpositions), re-encoded; ``data``
    itself if the tokenizer does not augment. Items mode: a list of items. Stream mode: ids, of
    which the complete items (up to the last separator) are augmented, while the part of an item
    the validation split cut off stays as it is, at the end."""
    if not tokenizer.augments:
        return data
    if mode == "items":
        return [_encode_augmented(tokenizer, doc) for doc in tokenizer.augment([tokenizer.decode(i) for i in data])]
    ids = np.asarray(data)
    ends = np.flatnonzero(ids == separator_id) + 1 if separator_id is not None else np.array([len(ids)])
    starts = np.concatenate([[0], ends[:-1]])
    docs = [tokenizer.decode(ids[s:e]) for s, e in zip(starts, ends)]
    tail = ids[ends[-1] if len(ends) else 0 :]
    return np.concatenate([*(_encode_augmented(tokenizer, doc) for doc in tokenizer.augment(docs)), tail,
                           np.empty(0, np.int32)]).astype(np.int32)


def _encode_augmented(tokenizer, tokens):
    try:
        return tokenizer.encode(tokens)
    except TokenizerError as e:
        raise TokenizerError(f"augmented training data ({tokenizer.name!r} augment): {e}") from None


# ---------------------------------------------------------------- labelled items (tag, classify)
class LabelledItem(NamedTuple):
    ids: np.ndarray  # (n,) int32 input ids
    labels: np.ndarray  # tag: (n,) int32 label ids; classify: (1,) the item's label id; -1: unlabelled
    where: str  # "file:line" of the example it came from


def encode_examples(tokenizer, examples, labels, task, seq_length):
    """``Example``s (seqgen.plugins.labelled) -> ``LabelledItem``s: ids by the tokenizer,
    labels by ``labels`` (the model's label vocabulary; an unknown one is a CorpusError naming
    the file, line and label). Tag items longer than ``seq_length`` are cut into pieces (each
    labelled on its own); classify items keep their first ``seq_length`` tokens."""
    index = {label: i for i, label in enumerate(labels)}
    items = []
    for ex in examples:
        try:
            ids = tokenizer.encode(ex.tokens)
        except TokenizerError as e:
            raise TokenizerError(f"{ex.where}: {e}") from None
        if ex.labels is None:
            y = np.full(len(ids) if task == "tag" else 1, -1, dtype=np.int32)
        else:
            given = ex.labels if task == "tag" else [ex.labels]
            unknown = sorted({label for label in given if label not in index})
            if unknown:
                shown = ", ".join(repr(u) for u in unknown[:5])
                raise CorpusError(f"{ex.where}: label {shown} was not seen in training (the model knows "
                                  f"{len(labels)}: {', '.join(labels[:20])}{' ...' if len(labels) > 20 else ''})")
            y = np.array([index[label] for label in given], dtype=np.int32)
        if task == "tag":
            items.extend(LabelledItem(ids[s:s + seq_length], y[s:s + seq_length], ex.where)
                         for s in range(0, len(ids), seq_length))
        else:
            items.append(LabelledItem(ids[:seq_length], y, ex.where))
    return items


def split_labelled(items, fraction, seed=0, what="corpus"):
    """(train, valid) lists of items: a seeded random ``fraction`` held out (valid None at 0)."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"validation fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return items, None
    n_valid = max(1, int(round(len(items) * fraction)))
    if n_valid >= len(items):
        raise CorpusError(f"{what} has {len(items)} item(s): too few to hold out {fraction:.0%} for validation "
                          "(use valid_fraction 0 or a separate `valid` corpus)", fields=("valid_fraction", "valid"))
    held_out = set(seeds.generator(seed, "split").permutation(len(items))[:n_valid].tolist())
    return ([item for i, item in enumerate(items) if i not in held_out],
            [item for i, item in enumerate(items) if i in held_out])


class LabelledWindows:
    """Labelled items padded into batches of B; one window per batch, as long as its longest
    item, every window from a zero state. Inputs are padded with id 0 and targets with -1; a
    classify item's label sits at its last step (seqgen.engine.heads). Items are shuffled
    each epoch with a generator seeded by (seed, epoch)."""

    mode = "labelled"

    def __init__(self, items, task, batch_size, seed=0, shuffle=True, what="corpus"):
        if not items:
            raise CorpusError(f"{what} has no items")
        self.items, self.task = items, task
        self.batch_size = min(batch_size, len(items))
        self.seed, self.shuffle = seed, shuffle
        self.num_tokens = sum(len(i.ids) for i in items)
        self.seq_length = max(len(i.ids) for i in items)

    def _batches(self, epoch):
        n, B = len(self.items), self.batch_size
        if not self.shuffle:
            return [np.arange(b, min(b + B, n)) for b in range(0, n, B)]
        if getattr(self, "_epoch", None) != epoch:
            order = seeds.generator(self.seed, "shuffle", epoch).permutation(n)
            self._epoch, self._plan = epoch, [order[b:b + B] for b in range(0, n - B + 1, B)]
        return self._plan

    def windows_in_epoch(self, epoch):
        n, B = len(self.items), self.batch_size
        return -(-n // B) if not self.shuffle else n // B

    def window(self, epoch, cursor):
        return self._window(self._batches(epoch)[cursor])

    def _window(self, batch):
        items = [self.items[i] for i in batch]
        T = max(len(i.ids) for i in items)
        inputs = np.zeros((T, len(items)), dtype=np.int32)
        targets = np.full((T, len(items)), -1, dtype=np.int32)
        for col, item in enumerate(items):
            n = len(item.ids)
            inputs[:n, col] = item.ids
            if self.task == "tag":
                targets[:n, col] = item.labels
            else:
                targets[n - 1, col] = item.labels[0]
        return Window(inputs, targets, True)

    def iter_windows(self):
        """Every item once, in order, B at a time (evaluation)."""
        return (self._window(batch) for batch in self._batches(0))
