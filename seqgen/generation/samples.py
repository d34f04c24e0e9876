"""Sampling from a checkpoint on option objects: the one path behind ``seqgen sample``,
``seqgen serve`` and ``seqgen.sample``.

    import seqgen
    for s in seqgen.sample("model.npz", n=3, temperature=0.8, prime="ROMEO:"):
        print(s.text, s.logp)

    from seqgen.generation.samples import draw, load_model
    from seqgen.options import SampleOptions
    result = draw(SampleOptions(n=3), load_model("dinos"))     # result.seed: the seed used

``model`` is a checkpoint path, the name of a shipped model (``seqgen models``), a loaded
``Checkpoint``, or None for the default text model.
"""

import secrets
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from seqgen.errors import CorpusError, TokenizerError
from seqgen.generation.rules import rules_for
from seqgen.generation.sampler import Params, beam_search, generate, stream
from seqgen.options import MAX_SEED, SampleOptions
from seqgen.storage import checkpoint, shipped

DEFAULT_TEMPO = 120.0


class Sample(NamedTuple):
    tokens: list  # primer (if included) + generated tokens, without a final separator
    text: str  # tokens rendered by the tokenizer
    logp: float  # log-probability of the generated tokens kept (ids), nats
    ids: np.ndarray  # generated ids kept (int32), the stop token included if reached
    finish: str = "length"  # "stop" (stop token or stop text) or "length"


class SampleResult(NamedTuple):
    seed: int | None  # the seed used (None for beam search, which draws nothing)
    samples: list  # of Sample


def load_model(model=None):
    """A Checkpoint from a path, a shipped model's name, a Checkpoint, or None (default)."""
    if isinstance(model, checkpoint.Checkpoint):
        return model
    return checkpoint.load(shipped.resolve(model))


def fresh_seed():
    """A new random seed, for runs that were not given one."""
    return secrets.randbelow(MAX_SEED + 1)


def with_seed(options):
    """``options`` with its seed set (a fresh one if it had none)."""
    return options if options.seed is not None else options.replace(seed=fresh_seed())


class Plan(NamedTuple):
    """What to feed and when to stop, resolved against a tokenizer."""

    prime_ids: np.ndarray  # fed before sampling; the last one is the first input
    shown_prime: list  # primer tokens to put in front of the output
    stop_id: int  # -1: none
    stop_texts: tuple  # stop strings of several tokens, checked on the rendered text
    params: Params  # per-stream kernel parameters
    length: int


def midi_primer_tokens(tok, data: bytes):
    """(primer tokens, write options such as the primer's tempo) from the bytes of a .mid file
    (the service's primer: never a path). Read from a private temporary file through the
    tokenizer's own bounded reader, so nothing the bytes say can name another file."""
    with tempfile.TemporaryDirectory(prefix="seqgen-primer-") as tmp:
        path = Path(tmp) / "primer.mid"
        path.write_bytes(data)
        try:
            return tok.read_prime(path), tok.prime_write_options(path)
        except (CorpusError, TokenizerError) as e:
            raise type(e)(str(e).replace(str(path), "prime_midi")) from None


def plan(ckpt, options, prime_tokens=None, stops=None):
    """Resolve the primer and the stop condition of ``options`` (SampleOptions, seed set) for a
    checkpoint's tokenizer. ``prime_tokens`` replaces the options' primer (the service's MIDI
    bytes); ``stops`` replaces ``options.stop`` with several stop texts (OpenAI's ``stop`` list)."""
    tok = ckpt.tokenizer
    if prime_tokens is not None:
        tokens = prime_tokens
    elif options.prime_midi is not None:
        tokens = tok.read_prime(options.prime_midi)
    elif options.prime:
        tokens = tok.parse_prime(options.prime)
    else:
        tokens = []
    try:
        ids = tok.encode(tokens, unknown=options.unknown) if tokens else np.empty(0, np.int32)
    except TokenizerError as e:
        raise TokenizerError(f"primer: {e} (use --unknown skip or --unknown unk)") from None
    shown = tok.decode(ids) if options.include_prime else []
    if len(ids) == 0:  # start from "start of item", or a line break, or a random token
        vocab = tok.vocab
        if tok.separator_id is not None:
            start_id = tok.separator_id
        elif "\n" in vocab:
            start_id = vocab.index("\n")
        else:
            start_id = int(np.random.default_rng(options.seed or 0).integers(len(vocab)))
        ids = np.array([start_id], dtype=np.int32)
    stop_id, stop_texts = -1, ()
    texts = [options.stop] if stops is None else [s for s in stops if s]
    if stops is None and options.stop is None:
        stop_id = -1 if tok.separator_id is None else tok.separator_id
    elif len(texts) == 1 and texts[0] != "":
        stop_tokens = tok.parse_prime(texts[0])
        if len(stop_tokens) == 1 and stop_tokens[0] in tok.vocab:
            stop_id = tok.vocab.index(stop_tokens[0])
        else:
            stop_texts = (texts[0],)
    elif len(texts) > 1:
        stop_texts = tuple(texts)
    params = Params(options.temperature, options.top_k, options.top_p, options.greedy, stop_id, rules_for(tok, options))
    return Plan(ids, shown, stop_id, stop_texts, params, options.length)


class Assembler:
    """One stream's tokens -> its text as they arrive, applying the plan's stops.

    ``feed`` takes one id or several and returns the new text to show (rendering once per call,
    so feeding a step's worth of tokens at a time keeps a long stream linear in practice);
    ``finished`` turns true at a stop. With ``strip_stop`` (OpenAI's convention) a stop text is
    left out, so up to len(stop) - 1 characters are held back until they cannot start one."""

    def __init__(self, tok, plan_, strip_stop=False):
        self.tok, self.plan, self.strip = tok, plan_, strip_stop
        self.tokens, self.ids, self.logps = [], [], []
        self.finished, self.finish = False, "length"
        self.holdback = max((len(s) for s in plan_.stop_texts), default=1) - 1 if strip_stop else 0
        self.prime_text = tok.render(list(plan_.shown_prime))
        self.text = self.prime_text  # everything shown so far or held back
        self.sent = 0

    def feed(self, ids, logps=None):
        if self.finished:
            return ""
        ids = [int(ids)] if np.ndim(ids) == 0 else [int(i) for i in ids]
        logps = [0.0] * len(ids) if logps is None else ([float(logps)] if np.ndim(logps) == 0 else list(logps))
        n_tokens, n_ids = len(self.tokens), len(self.ids)
        vocab, stop_id = self.tok.vocab, self.plan.stop_id
        for token_id, lp in zip(ids, logps):
            self.ids.append(token_id)
            self.logps.append(float(lp))
            if token_id == stop_id:
                self.finished, self.finish = True, "stop"
                if vocab[token_id] != self.tok.separator and not self.strip:
                    self.tokens.append(vocab[token_id])
                break
            self.tokens.append(vocab[token_id])
        cut = None
        if self.plan.stop_texts and len(self.tokens) > n_tokens and self._stop_in(self.tokens):
            lo, hi = n_tokens + 1, len(self.tokens)  # the first token count whose text holds a stop
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if self._stop_in(self.tokens[:mid]) else (mid + 1, hi)
            keep_ids = n_ids + (lo - n_tokens)
            del self.tokens[lo:], self.ids[keep_ids:], self.logps[keep_ids:]
            self.finished, self.finish = True, "stop"
            generated = self.tok.render(self.tokens)
            cut = min(i for i in (generated.find(s) for s in self.plan.stop_texts) if i >= 0) - len(generated)
        self.text = self.tok.render(list(self.plan.shown_prime) + self.tokens)
        if cut is not None and self.strip:
            self.text = self.text[: len(self.text) + cut]
        return self._emit(len(self.text) if self.finished else len(self.text) - self.holdback)

    def _stop_in(self, tokens):
        generated = self.tok.render(tokens)
        return any(s in generated for s in self.plan.stop_texts)

    def close(self):
        """The text still held back, at the end of the stream."""
        self.finished = True
        return self._emit(len(self.text))

    def _emit(self, upto):
        upto = max(upto, self.sent)
        piece, self.sent = self.text[self.sent:upto], upto
        return piece

    def sample(self):
        return Sample(list(self.plan.shown_prime) + self.tokens, self.text, float(sum(self.logps)),
                      np.array(self.ids, dtype=np.int32), self.finish)


def _assemble(tok, plan_, ids, token_logp):
    """A whole stream's Sample (the same as feeding its tokens to an Assembler as they come)."""
    a = Assembler(tok, plan_)
    a.feed(ids, token_logp)
    return a.sample()


def draw(options, ckpt=None, prime_tokens=None, stops=None):
    """Draw ``options.n`` samples -> SampleResult(seed used, samples). ``options``: SampleOptions
    (a fresh seed is drawn when it has none); ``ckpt``: a loaded Checkpoint (default: load
    ``options.model``)."""
    ckpt = load_model(options.model) if ckpt is None else ckpt
    p = plan(ckpt, options, prime_tokens, stops)
    if options.beam:
        g = beam_search(ckpt.model, options.beam, options.n, options.length, p.prime_ids, p.stop_id)
        samples = [_assemble(ckpt.tokenizer, p, ids, np.zeros(len(ids)))._replace(logp=float(lp))
                   for ids, lp in zip(g.samples, g.logp)]  # beam scores the whole sequence
        return SampleResult(None, samples)
    options = with_seed(options)
    g = generate(ckpt.model, options.n, options.length, p.prime_ids, *p.params, seed=options.seed)
    return SampleResult(options.seed, [_assemble(ckpt.tokenizer, p, ids, lp) for ids, lp in zip(g.samples,
                                                                                                   g.token_logp)])


def stream_text(options, ckpt=None):
    """One text sample as it is generated (options.n is ignored; the seed must be set): yields
    pieces of text whose concatenation is the ``text`` that ``draw`` returns for n=1."""
    ckpt = load_model(options.model) if ckpt is None else ckpt
    p = plan(ckpt, options)
    a = Assembler(ckpt.tokenizer, p)
    if a.prime_text:
        yield a._emit(len(a.prime_text))
    for step in stream(ckpt.model, 1, options.length, p.prime_ids, *p.params, seed=options.seed):
        piece = a.feed(step[0])
        if piece:
            yield piece
        if a.finished:
            return


def midi_tempo(options, tok):
    """The tempo to write MIDI samples at: the option, else the MIDI primer's, else 120 bpm."""
    if options.tempo is not None:
        return options.tempo
    primed = tok.prime_write_options(options.prime_midi) if options.prime_midi else {}
    return primed.get("tempo") or DEFAULT_TEMPO


def sample(model=None, **options):
    """Draw samples; returns a list of ``Sample``. ``options``: the fields of SampleOptions
    (n, length, prime, temperature, top_k, top_p, greedy, beam, stop, seed, ...). ``stop``: None
    ends at the tokenizer's item separator, "" never stops early, any other text stops once
    the output contains it. Without ``seed`` each call draws a fresh one."""
    ckpt = load_model(model)
    return draw(SampleOptions.parse(options), ckpt).samples


def write_midi(tok, sample_, path, options):
    """Write one sample of a MIDI model to ``path`` with the options' tempo, program, velocity."""
    tok.write(sample_.tokens, path, tempo=midi_tempo(options, tok), program=options.program, velocity=options.velocity)


def midi_bytes(tok, sample_, options):
    """The .mid file of one sample of a MIDI model, as bytes."""
    with tempfile.TemporaryDirectory(prefix="seqgen-midi-") as tmp:
        path = Path(tmp) / "sample.mid"
        write_midi(tok, sample_, path, options)
        return path.read_bytes()
