"""Token-level generation: the public, validated front of the sampler kernel.

A ``Batch`` holds any number of streams, each with its own sampling parameters, random generator,
length limit and stop token; streams join and leave between steps. ``generate`` and ``stream``
run one batch for n samples; the service's scheduler (``seqgen.generation.batcher``) runs one
batch for many requests. Stream i of a seed draws its uniforms from
``SeedSequence(seed).spawn(n)[i]`` and the kernel's products do not depend on the batch, so a
sample is the same whatever n is and whatever shares its batch.
"""

from typing import NamedTuple

import numpy as np

from seqgen.errors import ConfigError, ShapeError
from seqgen.kernels.constraints import BANNED, NOTE, STEP_END
from seqgen.kernels.sample import sampler_kernel, workspace
from seqgen.threads import parallel_map, workers

UNIFORM_BLOCK = 256  # uniforms drawn per stream at a time (the sequence does not depend on it)
BLOCK_STREAMS = 8  # generate runs its streams on several cores only in blocks of at least this many


class Generation(NamedTuple):
    samples: list  # one int32 array of generated ids per sample (stop token included if reached)
    logp: np.ndarray  # (n,) log-probability of each sample's tokens under the model, nats
    token_logp: list  # per sample, (len,) float64 log-probability of each generated token


class Rules(NamedTuple):
    """One stream's sampling rules (seqgen/kernels/constraints.py); the defaults change nothing.
    ``classes``: (V,) uint8 bits per token (BANNED, NOTE, STEP_END), None: none."""

    repetition_penalty: float = 1.0
    repetition_window: int = 0  # tokens looked back; 0: the whole history (primer included)
    no_repeat_ngram: int = 0
    max_polyphony: int = 0  # NOTE tokens per step at most; 0: no cap
    classes: np.ndarray | None = None

    def check(self, vocab_size):
        if not self.repetition_penalty >= 1.0:
            raise ConfigError(f"repetition_penalty: must be >= 1, got {self.repetition_penalty}",
                              fields=("repetition_penalty",))
        for name in ("repetition_window", "no_repeat_ngram", "max_polyphony"):
            value = getattr(self, name)
            if not (isinstance(value, (int, np.integer)) and value >= 0):
                raise ConfigError(f"{name}: must be a whole number >= 0, got {value}", fields=(name,))
        if self.classes is not None and (np.shape(self.classes) != (vocab_size,)
                                         or np.asarray(self.classes).dtype != np.uint8):
            raise ShapeError(f"token classes must be a ({vocab_size},) uint8 array")
        if self.max_polyphony and self.classes is None:
            raise ConfigError("max_polyphony: needs token classes (which tokens are notes)", fields=("max_polyphony",))

    @property
    def active(self):
        return (self.repetition_penalty != 1.0 or self.no_repeat_ngram > 0 or self.max_polyphony > 0
                or (self.classes is not None and bool((self.classes & BANNED).any())))


class Params(NamedTuple):
    """One stream's sampling parameters."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    greedy: bool = False
    stop_id: int = -1
    rules: Rules | None = None


def check_sampling_options(n, length, temperature, top_k, top_p):
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ConfigError(f"the number of samples must be >= 1, got {n}")
    if not (isinstance(length, (int, np.integer)) and length >= 1):
        raise ConfigError(f"length must be >= 1, got {length}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if not (isinstance(top_k, (int, np.integer)) and top_k >= 0):
        raise ConfigError(f"top-k must be a whole number >= 0 (0 = off), got {top_k}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top-p must be in (0, 1], got {top_p}")


def checked_prime(model, prime):
    """A non-empty 1-d array of valid token ids, or ShapeError (ConfigError for a tagger or
    classifier, which cannot generate)."""
    model.check_generative()
    prime = np.asarray(prime)
    if prime.ndim != 1 or prime.size == 0 or not np.issubdtype(prime.dtype, np.integer):
        raise ShapeError("the primer must be a non-empty 1-d array of token ids")
    if prime.min() < 0 or prime.max() >= model.config.vocab_size:
        raise ShapeError(f"primer ids must be in [0, {model.config.vocab_size})")
    return prime.astype(np.int32)


def primed_state(model, prime):
    """The (L, S, 1, n_a) state after feeding all but the last primer id, one stream wide (the
    same for every batch, so priming does not depend on n either)."""
    prime = checked_prime(model, prime)
    state = model.initial_state(1)
    return model.run(prime[:-1, None], state) if prime.size > 1 else state


def stream_generators(seed, n):
    """The n independent generators of a seed: stream i's does not depend on n."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


class Weights:
    """A model's parameters laid out for the sampler kernel (built once per model)."""

    def __init__(self, model):
        c, p = model.config, model.params
        H, GH, L, dt = c.hidden_size, c.gates * c.hidden_size, c.num_layers, model.dtype
        self.model = model
        self.cell = c.cell_def.code
        self.WaxT0 = np.ascontiguousarray(p["l0.Wax"].T)
        self.WxT = (np.ascontiguousarray(np.stack([p[f"l{l}.Wax"].T for l in range(1, L)])) if L > 1
                    else np.empty((0, H, GH), dt))
        self.WaaT = np.ascontiguousarray(np.stack([p[f"l{l}.Waa"].T for l in range(L)]))
        self.ba = np.stack([p[f"l{l}.ba"] for l in range(L)])
        # the kernel takes every cell's arguments; a cell without bn (not a GRU) gets zeros
        self.bn = np.stack([p[f"l{l}.bn"] for l in range(L)]) if "bn" in c.cell_def.extra_params(H) \
            else np.zeros((L, H), dt)
        self.WyaT, self.by = np.ascontiguousarray(p["Wya"].T), p["by"]


def notes_in_last_step(ids, classes):
    """NOTE tokens of ``ids`` after the last STEP_END token (a primer's open step)."""
    c = classes[np.asarray(ids, np.int64)]
    ends = np.flatnonzero(c & STEP_END)
    return int(np.count_nonzero(c[ends[-1] + 1 if len(ends) else 0:] & NOTE))


# the per-stream arrays of a Batch (rows are streams), in the order they are kept together
_STREAM_ARRAYS = ("ids", "uniforms", "used", "inv_temperature", "top_k", "top_p", "greedy", "stop_id", "done",
                  "remaining", "ruled", "classes", "max_notes", "step_notes", "penalty", "window", "ngram", "history",
                  "hist_len")


class Batch:
    """Streams that advance together; each row of every array is one stream."""

    def __init__(self, weights):
        self.w = weights
        m = weights.model
        V = m.config.vocab_size
        self.state = m.initial_state(0)
        self.ids = np.empty(0, np.int32)
        self.uniforms = np.empty((0, UNIFORM_BLOCK))
        self.used = np.empty(0, np.int64)
        self.inv_temperature = np.empty(0)
        self.top_k = np.empty(0, np.int64)
        self.top_p = np.empty(0)
        self.greedy = np.empty(0, np.bool_)
        self.stop_id = np.empty(0, np.int64)
        self.done = np.empty(0, np.bool_)
        self.remaining = np.empty(0, np.int64)  # tokens each stream may still draw
        # sampling rules (Rules): streams with none skip them in the kernel
        self.ruled = np.empty(0, np.bool_)
        self.classes = np.empty((0, V), np.uint8)
        self.max_notes = np.empty(0, np.int64)
        self.step_notes = np.empty(0, np.int64)  # NOTE tokens drawn in the current step
        self.penalty = np.empty(0)
        self.window = np.empty(0, np.int64)
        self.ngram = np.empty(0, np.int64)
        self.history = np.empty((0, 0), np.int32)  # ruled streams: primer and tokens drawn
        self.hist_len = np.zeros(0, np.int64)
        self.rngs = []
        self.owners = []  # per stream: whatever the caller attached (a request, an index)
        self._work = None  # the kernel's scratch arrays (workspace), kept while N stays the same

    def __len__(self):
        return len(self.rngs)

    def add(self, state, first_id, params, rngs, length, owners, prime=None):
        """Add len(rngs) streams that start from ``state`` (L, S, 1, n_a) and input ``first_id``,
        the last of the ``prime`` ids (their history for ``params.rules``; default: first_id)."""
        k = len(rngs)
        rules = params.rules or Rules()
        V = self.classes.shape[1]
        rules.check(V)
        prime = np.array([first_id] if prime is None else prime, np.int32)
        classes = np.zeros(V, np.uint8) if rules.classes is None else rules.classes
        ruled = rules.active
        self._add_history(np.repeat(prime[None] if ruled else prime[None, :0], k, axis=0))
        self.ruled = np.concatenate([self.ruled, np.full(k, ruled)])
        self.classes = np.concatenate([self.classes, np.repeat(classes[None], k, axis=0)])
        self.max_notes = np.concatenate([self.max_notes, np.full(k, rules.max_polyphony, np.int64)])
        self.step_notes = np.concatenate([self.step_notes, np.full(k, notes_in_last_step(prime, classes), np.int64)])
        self.penalty = np.concatenate([self.penalty, np.full(k, float(rules.repetition_penalty))])
        self.window = np.concatenate([self.window, np.full(k, rules.repetition_window, np.int64)])
        self.ngram = np.concatenate([self.ngram, np.full(k, rules.no_repeat_ngram, np.int64)])
        self.state = np.concatenate([self.state, np.repeat(state, k, axis=2)], axis=2)
        self.ids = np.concatenate([self.ids, np.full(k, first_id, np.int32)])
        self.uniforms = np.concatenate([self.uniforms, np.stack([g.random(UNIFORM_BLOCK) for g in rngs])])
        self.used = np.concatenate([self.used, np.zeros(k, np.int64)])
        self.inv_temperature = np.concatenate([self.inv_temperature, np.full(k, 1.0 / params.temperature)])
        self.top_k = np.concatenate([self.top_k, np.full(k, params.top_k, np.int64)])
        self.top_p = np.concatenate([self.top_p, np.full(k, params.top_p)])
        self.greedy = np.concatenate([self.greedy, np.full(k, params.greedy, np.bool_)])
        self.stop_id = np.concatenate([self.stop_id, np.full(k, params.stop_id, np.int64)])
        self.done = np.concatenate([self.done, np.zeros(k, np.bool_)])
        self.remaining = np.concatenate([self.remaining, np.full(k, length, np.int64)])
        self.rngs += list(rngs)
        self.owners += list(owners)

    def keep(self, mask):
        """Keep only the streams where mask (N,) is true."""
        idx = np.flatnonzero(mask)
        self.state = np.ascontiguousarray(self.state[:, :, idx])
        for name in _STREAM_ARRAYS:
            setattr(self, name, getattr(self, name)[idx])
        if not self.ruled.any():
            self.history = self.history[:, :0]
        self.rngs = [self.rngs[i] for i in idx]
        self.owners = [self.owners[i] for i in idx]

    def _add_history(self, rows):
        """Append streams' histories (k, h) int32, widening the history array as needed."""
        width = max(self.history.shape[1], rows.shape[1])
        grown = np.zeros((len(self.history) + len(rows), width), np.int32)
        grown[:len(self.history), :self.history.shape[1]] = self.history
        grown[len(self.history):, :rows.shape[1]] = rows
        self.history = grown
        self.hist_len = np.concatenate([self.hist_len, np.full(len(rows), rows.shape[1], np.int64)])

    def _make_room(self, k):
        """Room in the history for k more tokens of every ruled stream."""
        if self.ruled.any():
            need = int(self.hist_len[self.ruled].max()) + k
            if need > self.history.shape[1]:
                grown = np.zeros((len(self.history), max(need, 2 * self.history.shape[1])), np.int32)
                grown[:, :self.history.shape[1]] = self.history
                self.history = grown

    def rule_args(self):
        """The rule arrays, in the order sample_steps takes them after out_logp."""
        return (self.ruled, self.classes, self.max_notes, self.step_notes, self.penalty, self.window, self.ngram,
                self.history, self.hist_len)

    def running(self):
        """(N,) bool: streams that may still draw a token."""
        return ~self.done & (self.remaining > 0)

    def steps(self, k):
        """Advance every running stream up to k steps; stops early once none is running.
        Returns tokens (k', N) int32 (-1: finished) and their log-probabilities (k', N)."""
        out = np.empty((k, len(self)), np.int32)
        logp = np.empty((k, len(self)))
        V = self.w.WyaT.shape[1]
        truncate = bool(((self.top_k > 0) & (self.top_k < V)).any() or (self.top_p < 1.0).any())
        # compiles the top-k/top-p and the rules code only when a stream uses them
        sample_steps = sampler_kernel(self.w.cell, truncate, bool(self.ruled.any()))
        if self._work is None or self._work[0].shape[0] != len(self):  # streams joined or left
            self._work = workspace(self.w.WaaT, self.w.WyaT, len(self))
        taken = 0
        self._make_room(k)
        while taken < k:
            taken += sample_steps(self.w.WaxT0, self.w.WxT, self.w.WaaT, self.w.ba, self.w.bn,
                                  self.w.WyaT, self.w.by, self.state, self.ids, self.uniforms, self.used,
                                  self.inv_temperature, self.top_k, self.top_p, self.greedy, self.stop_id,
                                  self.done, self.remaining, out[taken:], logp[taken:], *self.rule_args(), self._work)
            if not self.running().any():
                break
            for n in np.flatnonzero(self.used >= UNIFORM_BLOCK):  # draw the next block of uniforms
                self.uniforms[n] = self.rngs[n].random(UNIFORM_BLOCK)
                self.used[n] = 0
        return out[:taken], logp[:taken]


def _streams(model, n, prime, seed):
    """What every stream of one call starts from: the sampler's weights, the primed state, the
    checked primer and the n streams' generators."""
    prime = checked_prime(model, prime)
    return Weights(model), primed_state(model, prime), prime, stream_generators(seed, n)


def _batch(start, params, length, rows):
    """A Batch of the streams ``rows`` (indices into the call's n) from ``_streams``."""
    weights, state, prime, rngs = start
    batch = Batch(weights)
    batch.add(state, prime[-1], params, [rngs[i] for i in rows], length, rows, prime)
    return batch


def _stream_blocks(n):
    """The streams of one generate call as blocks of rows that run side by side on seqgen's
    threads, at least BLOCK_STREAMS each: one stream's tokens depend only on its own generator and
    state, so the split changes no sample, and the blocks never wait for each other."""
    blocks = max(1, min(workers(), n // BLOCK_STREAMS))
    return np.array_split(np.arange(n), blocks)


def generate(model, n=1, length=100, prime=(0,), temperature=1.0, top_k=0, top_p=1.0, greedy=False,
             stop_id=-1, rules=None, seed=0):
    """Draw n samples of at most ``length`` tokens after the primer ids (fed in first; the last
    primer token is the first input). A sample ends after ``stop_id`` (if >= 0). ``rules``:
    Rules (repetition penalty, n-gram blocking, token classes) or None."""
    check_sampling_options(n, length, temperature, top_k, top_p)
    params = Params(temperature, top_k, top_p, greedy, stop_id, rules)
    start = _streams(model, n, prime, seed)
    samples, token_logp = [], []
    for out, logp in parallel_map(lambda rows: _batch(start, params, length, rows).steps(length), _stream_blocks(n)):
        keep = out >= 0
        samples += [out[keep[:, i], i] for i in range(out.shape[1])]
        token_logp += [logp[keep[:, i], i] for i in range(out.shape[1])]
    return Generation(samples, np.array([lp.sum() for lp in token_logp]), token_logp)


def stream(model, n=1, length=100, prime=(0,), temperature=1.0, top_k=0, top_p=1.0, greedy=False,
           stop_id=-1, rules=None, seed=0):
    """Like ``generate``, but yields the (n,) tokens of each step as soon as it is drawn
    (-1 for finished streams); stops when every stream is done."""
    check_sampling_options(n, length, temperature, top_k, top_p)
    params = Params(temperature, top_k, top_p, greedy, stop_id, rules)
    batch = _batch(_streams(model, n, prime, seed), params, length, range(n))
    while batch.running().any():
        out, _ = batch.steps(1)
        if len(out):
            yield out[0]


def beam_search(model, beam=4, n=1, length=100, prime=(0,), stop_id=-1):
    """The ``n`` most likely continuations found by a beam of width ``beam`` (n <= beam), in
    descending order of log-probability. A sequence ends after ``stop_id`` or at ``length``."""
    check_sampling_options(n, length, 1.0, 0, 1.0)
    if not (isinstance(beam, (int, np.integer)) and beam >= 1):
        raise ConfigError(f"beam width must be >= 1, got {beam}")
    if n > beam:
        raise ConfigError(f"cannot return {n} samples from a beam of {beam}; use --beam >= -n")
    prime = checked_prime(model, prime)
    state = primed_state(model, prime)
    seqs = [[]]
    scores = np.zeros(1)
    last = np.array([prime[-1]])
    finished = []
    V = model.config.vocab_size
    for _ in range(length):
        probs, state = model.step(last, state)
        with np.errstate(divide="ignore"):
            cand = (scores[:, None] + np.log(probs)).ravel()
        width = min(beam, cand.size)
        top = np.argpartition(-cand, width - 1)[:width]
        top = top[np.argsort(-cand[top], kind="mergesort")]
        parents, tokens = top // V, top % V
        seqs = [seqs[p] + [int(t)] for p, t in zip(parents, tokens)]
        scores, state, last = cand[top], state[:, :, parents], tokens
        keep = tokens != stop_id
        finished += [(s, q) for s, q, k in zip(seqs, scores, keep) if not k]
        if len(finished) >= n:
            nth_best = sorted((q for _, q in finished), reverse=True)[n - 1]
            if not keep.any() or nth_best >= scores[keep].max():
                break  # extending can only lower a score, so the n best finished ones are final
        if not keep.any():
            break
        seqs = [s for s, k in zip(seqs, keep) if k]
        scores, state, last = scores[keep], state[:, :, keep], last[keep]
    results = finished + [(s, q) for s, q in zip(seqs, scores) if s[-1:] != [stop_id]]
    results.sort(key=lambda item: -item[1])
    best = results[:n]
    return Generation([np.array(s, dtype=np.int32) for s, _ in best], np.array([q for _, q in best]), None)
