"""Validation NLL of a `midi` model per token and per 16th-note (grid) step.

    python scripts/step_nll.py MODEL CORPUS [--json]

MODEL is a checkpoint path or a shipped model name, CORPUS a directory of .mid files (e.g.
corpora/jsb-chorales/satb/valid). Per-token losses compare only models with the same
vocabulary; the loss per grid step compares encodings and vocabularies: the total NLL of the
corpus (every token scored, <END> included, as `seqgen eval` scores it) divided by the number
of grid steps the corpus lasts in the model's encoding — the <STEP> tokens for `poly`, the sum
of the note and rest durations for `melody`.
"""

import argparse
import json
import sys

from seqgen import api
from seqgen.options import EvalOptions
from seqgen.plugins.tokenizer import Tokenizer

STEP = "<STEP>"


def grid_steps(tok: Tokenizer, corpus) -> int:
    """How many grid steps the corpus lasts, as the model's midi tokenizer reads it."""
    if tok.name != "midi":
        raise SystemExit(f"error: {tok.name!r} model: steps are defined for midi models only")
    steps = 0
    for doc in tok.iter_documents(corpus):
        if tok.config["encoding"] == "poly":
            steps += doc.count(STEP)
        else:  # "n60_d4", "r_d2": the duration follows "_d"
            steps += sum(int(t.rsplit("_d", 1)[1]) for t in doc if "_d" in t)
    return steps


def step_nll(model, corpus) -> dict:
    """{"tokens", "nll_per_token", "steps", "nll_per_step", "total_nll"} of a midi model on a corpus."""
    ckpt = api.load(model)
    result = api.evaluate(EvalOptions(model=str(model), corpus=corpus))
    total = result.loss * result.tokens
    steps = grid_steps(ckpt.tokenizer, corpus)
    return {"model": str(model), "corpus": str(corpus), "tokens": result.tokens, "nll_per_token": result.loss,
            "steps": steps, "nll_per_step": total / steps, "total_nll": total}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("corpus")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    r = step_nll(args.model, args.corpus)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{r['model']} on {r['corpus']}: {r['nll_per_token']:.4f} nats/token over {r['tokens']:,} tokens, "
              f"{r['nll_per_step']:.4f} nats/step over {r['steps']:,} grid steps")


if __name__ == "__main__":
    sys.exit(main())
