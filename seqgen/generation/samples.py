"""Sampling from a checkpoint, with its tokenizer: the Python API behind ``seqgen sample``.

    import seqgen
    for s in seqgen.sample("model.npz", n=3, temperature=0.8, prime="ROMEO:"):
        print(s.text, s.logp)

``model`` is a checkpoint path, the name of a shipped model (``seqgen models``), a loaded
``Checkpoint``, or None for the default text model.
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np

from seqgen.errors import ConfigError, TokenizerError
from seqgen.generation.sampler import beam_search, check_sampling_options, generate, stream
from seqgen.storage import checkpoint, shipped

UNKNOWN_POLICIES = ("error", "skip", "unk")


class Sample(NamedTuple):
    tokens: list  # primer (if included) + generated tokens, without a final separator
    text: str  # tokens rendered by the tokenizer
    logp: float  # log-probability of the generated tokens under the model, nats
    ids: np.ndarray  # generated ids (int32), the stop token included if reached


def load_model(model=None):
    """A Checkpoint from a path, a shipped model's name, a Checkpoint, or None (default)."""
    if isinstance(model, checkpoint.Checkpoint):
        return model
    if model is None:
        model = shipped.DEFAULT_TEXT_MODEL
    path = Path(model)
    if not path.exists() and str(model) in shipped.names():
        path = shipped.path(str(model))
    elif not path.exists():
        known = ", ".join(shipped.names()) or "none"
        raise checkpoint.CheckpointError(f"{model}: no such checkpoint file or shipped model (shipped: {known})")
    return checkpoint.load(path)


class Plan(NamedTuple):
    """What to feed and when to stop, resolved against a tokenizer."""

    prime_ids: np.ndarray  # fed before sampling; the last one is the first input
    shown_prime: list  # primer tokens to put in front of the output
    stop_id: int  # -1: none
    stop_text: str | None  # a stop string of several tokens, checked on the rendered text


def plan(ckpt, prime=None, prime_midi=None, stop=None, unknown="error", include_prime=True, seed=0):
    """Resolve the primer and the stop condition for a checkpoint's tokenizer."""
    tok = ckpt.tokenizer
    if unknown not in UNKNOWN_POLICIES:
        raise ConfigError(f"unknown-token policy must be one of {', '.join(UNKNOWN_POLICIES)}, got {unknown!r}")
    if prime is not None and prime_midi is not None:
        raise ConfigError("give a text primer or a MIDI primer, not both")
    tokens = []
    if prime_midi is not None:
        tokens = tok.read_prime(prime_midi)
    elif prime:
        tokens = tok.parse_prime(prime)
    try:
        ids = tok.encode(tokens, unknown=unknown) if tokens else np.empty(0, np.int32)
    except TokenizerError as e:
        raise TokenizerError(f"primer: {e} (use --unknown skip or --unknown unk)") from None
    shown = tok.decode(ids) if include_prime else []
    if len(ids) == 0:  # start from "start of item", or a line break, or the first token
        vocab = tok.vocab
        if tok.separator_id is not None:
            start_id = tok.separator_id
        elif "\n" in vocab:
            start_id = vocab.index("\n")
        else:
            start_id = int(np.random.default_rng(seed).integers(len(vocab)))
        ids = np.array([start_id], dtype=np.int32)
    stop_id, stop_text = -1, None
    if stop is None:
        stop_id = -1 if tok.separator_id is None else tok.separator_id
    elif stop != "":
        stop_tokens = tok.parse_prime(stop)
        if len(stop_tokens) == 1 and stop_tokens[0] in tok.vocab:
            stop_id = tok.vocab.index(stop_tokens[0])
        else:
            stop_text = stop
    return Plan(ids, shown, stop_id, stop_text)


def _finish(tok, plan_, ids, logp):
    tokens = tok.decode(ids)
    if plan_.stop_text is not None:
        tokens = _cut_at(tok, tokens, plan_.stop_text)
    elif len(ids) and ids[-1] == plan_.stop_id and tokens[-1] == tok.separator:
        tokens = tokens[:-1]
    shown_prime = plan_.shown_prime
    tokens = shown_prime + tokens
    return Sample(tokens, tok.render(tokens), float(logp), ids)


def _cut_at(tok, tokens, stop_text):
    """The shortest prefix whose rendering contains stop_text (render is prefix-stable)."""
    if stop_text not in tok.render(tokens):
        return tokens
    lo, hi = 1, len(tokens)
    while lo < hi:
        mid = (lo + hi) // 2
        if stop_text in tok.render(tokens[:mid]):
            hi = mid
        else:
            lo = mid + 1
    return tokens[:lo]


def sample(model=None, n=1, length=200, prime=None, prime_midi=None, temperature=1.0, top_k=0, top_p=1.0,
           greedy=False, beam=None, stop=None, seed=0, unknown="error", include_prime=True):
    """Draw n samples; returns a list of ``Sample``. ``stop``: None ends at the tokenizer's item
    separator, "" never stops early, any other text stops once the output contains it.
    ``beam``: width of a beam search for the n most likely continuations (ignores the
    randomness options)."""
    check_sampling_options(n, length, temperature, top_k, top_p)
    ckpt = load_model(model)
    p = plan(ckpt, prime, prime_midi, stop, unknown, include_prime, seed)
    if beam:
        g = beam_search(ckpt.model, beam, n, length, p.prime_ids, p.stop_id)
    else:
        g = generate(ckpt.model, n, length, p.prime_ids, temperature, top_k, top_p, greedy, p.stop_id, seed)
    return [_finish(ckpt.tokenizer, p, ids, lp) for ids, lp in zip(g.samples, g.logp)]


def stream_text(model=None, length=200, prime=None, temperature=1.0, top_k=0, top_p=1.0, greedy=False,
                stop=None, seed=0, unknown="error", include_prime=True):
    """One text sample as it is generated: yields pieces of text whose concatenation is the
    ``text`` that ``sample(n=1, ...)`` returns for the same arguments."""
    check_sampling_options(1, length, temperature, top_k, top_p)
    ckpt = load_model(model)
    tok = ckpt.tokenizer
    p = plan(ckpt, prime, None, stop, unknown, include_prime, seed)
    tokens = list(p.shown_prime)
    shown = tok.render(tokens)
    if shown:
        yield shown
    for step in stream(ckpt.model, 1, length, p.prime_ids, temperature, top_k, top_p, greedy, p.stop_id, seed):
        token = tok.vocab[int(step[0])]
        if int(step[0]) == p.stop_id and token == tok.separator:
            return
        tokens.append(token)
        text = tok.render(tokens)
        if p.stop_text is not None and p.stop_text in text:
            text = tok.render(p.shown_prime + _cut_at(tok, tokens[len(p.shown_prime):], p.stop_text))
            yield text[len(shown):]
            return
        yield text[len(shown):]
        shown = text
