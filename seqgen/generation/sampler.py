"""Token-level generation: the public, validated front of the sampler kernel.

``generate`` draws N samples at once; ``stream`` yields one step at a time (for printing as it
goes) and draws the same tokens for the same seed, because the uniforms come from one seeded
generator in the same order either way.
"""

from typing import NamedTuple

import numpy as np

from seqgen.errors import ConfigError, ShapeError
from seqgen.kernels.sample import sample_steps

CELL_CODES = {"rnn": 0, "lstm": 1, "gru": 2}


class Generation(NamedTuple):
    samples: list  # one int32 array of generated ids per sample (stop token included if reached)
    logp: np.ndarray  # (n,) log-probability of each sample's tokens under the model, nats


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


def _checked_prime(model, prime):
    """A non-empty 1-d array of valid token ids, or ShapeError (ConfigError for a tagger or
    classifier, which cannot generate)."""
    model.check_generative()
    prime = np.asarray(prime)
    if prime.ndim != 1 or prime.size == 0 or not np.issubdtype(prime.dtype, np.integer):
        raise ShapeError("the primer must be a non-empty 1-d array of token ids")
    if prime.min() < 0 or prime.max() >= model.config.vocab_size:
        raise ShapeError(f"primer ids must be in [0, {model.config.vocab_size})")
    return prime


class _Sampler:
    """Kernel arguments for one model and one batch of streams (options already checked)."""

    def __init__(self, model, n, prime, temperature, top_k, top_p, greedy, stop_id, seed):
        c, p = model.config, model.params
        prime = _checked_prime(model, prime)
        H, GH, L, dt = c.hidden_size, c.gates * c.hidden_size, c.num_layers, model.dtype
        self.cell = CELL_CODES[c.cell]
        self.WaxT0 = p["l0.Wax"].T
        self.WxT = np.stack([p[f"l{l}.Wax"].T for l in range(1, L)]) if L > 1 else np.empty((0, H, GH), dt)
        self.WaaT = np.stack([p[f"l{l}.Waa"].T for l in range(L)])
        self.ba = np.stack([p[f"l{l}.ba"] for l in range(L)])
        self.bn = np.stack([p[f"l{l}.bn"] for l in range(L)]) if c.cell == "gru" else np.zeros((L, H), dt)
        self.WyaT, self.by = p["Wya"].T, p["by"]
        self.state = model.initial_state(n)
        if prime.size > 1:
            self.state = model.run(np.repeat(prime[:-1, None], n, axis=1), self.state)
        self.ids = np.full(n, prime[-1], dtype=np.int32)
        self.rng = np.random.default_rng(seed)
        self.inv_temperature = 1.0 / temperature
        self.top_k, self.top_p, self.greedy, self.stop_id = int(top_k), float(top_p), bool(greedy), int(stop_id)
        self.done = np.zeros(n, dtype=np.bool_)
        self.logp = np.zeros(n)

    def steps(self, k):
        """Advance every stream k steps; returns (k, n) int32 tokens, -1 for finished streams."""
        uniforms = self.rng.random((k, self.ids.shape[0]))
        out = np.empty((k, self.ids.shape[0]), dtype=np.int32)
        sample_steps(self.cell, self.WaxT0, self.WxT, self.WaaT, self.ba, self.bn, self.WyaT, self.by,
                     self.state, self.ids, uniforms, self.inv_temperature, self.top_k, self.top_p,
                     self.greedy, self.stop_id, self.done, out, self.logp)
        return out


def generate(model, n=1, length=100, prime=(0,), temperature=1.0, top_k=0, top_p=1.0, greedy=False,
             stop_id=-1, seed=0):
    """Draw n samples of at most ``length`` tokens after the primer ids (fed in first; the last
    primer token is the first input). A sample ends after ``stop_id`` (if >= 0)."""
    check_sampling_options(n, length, temperature, top_k, top_p)
    sampler = _Sampler(model, n, prime, temperature, top_k, top_p, greedy, stop_id, seed)
    out = sampler.steps(length)
    samples = [col[col >= 0] for col in out.T]
    return Generation(samples, sampler.logp.copy())


def stream(model, n=1, length=100, prime=(0,), temperature=1.0, top_k=0, top_p=1.0, greedy=False,
           stop_id=-1, seed=0):
    """Like ``generate``, but yields the (n,) tokens of each step as soon as it is drawn
    (-1 for finished streams); stops when every stream is done."""
    check_sampling_options(n, length, temperature, top_k, top_p)
    sampler = _Sampler(model, n, prime, temperature, top_k, top_p, greedy, stop_id, seed)
    for _ in range(length):
        tokens = sampler.steps(1)[0]
        if (tokens < 0).all():
            return
        yield tokens


def beam_search(model, beam=4, n=1, length=100, prime=(0,), stop_id=-1):
    """The ``n`` most likely continuations found by a beam of width ``beam`` (n <= beam), in
    descending order of log-probability. A sequence ends after ``stop_id`` or at ``length``."""
    check_sampling_options(n, length, 1.0, 0, 1.0)
    if not (isinstance(beam, (int, np.integer)) and beam >= 1):
        raise ConfigError(f"beam width must be >= 1, got {beam}")
    if n > beam:
        raise ConfigError(f"cannot return {n} samples from a beam of {beam}; use --beam >= -n")
    prime = _checked_prime(model, prime)
    state = model.run(prime[:-1, None]) if prime.size > 1 else model.initial_state(1)
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
    return Generation([np.array(s, dtype=np.int32) for s, _ in best], np.array([q for _, q in best]))
