"""Train the tagging and classification examples, each bidirectional and unidirectional, and
record their validation and test figures in docs/task-figures.json (docs/tasks.md quotes them):

    python scripts/make_task_corpora.py            # the labelled corpora, from corpora/
    nice -n 10 python scripts/make_task_models.py [NAME ...] [--out models/tasks] [--check]

``--check`` trains again and compares with the recorded figures instead of writing them:
the same seed, data and command give the same model on one machine; across machines the BLAS
kernels may round differently, so figures are compared within TOLERANCE.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seqgen import api  # noqa: E402
from seqgen.options import EvalOptions, TrainOptions  # noqa: E402

TASKS = ROOT / "corpora" / "tasks"
FIGURES = ROOT / "docs" / "task-figures.json"
TOLERANCE = 0.02  # absolute, on accuracy and F1 (float32 training; BLAS rounding differs by CPU)

COMMON = {"cell": "lstm", "hidden_size": 64, "layers": 2, "dropout": 0.3, "patience": 3, "seed": 0, "threads": 1}
RECIPES = {
    "punctuation": dict(corpus=TASKS / "punctuation/train.conll", valid=TASKS / "punctuation/valid.conll",
                        test=TASKS / "punctuation/test.conll", tokenizer="conll", tokenizer_options={"min_count": 2},
                        task="tag", batch_size=32, seq_length=30, steps=2500, eval_every=250),
    "books": dict(corpus=TASKS / "books/train.tsv", valid=TASKS / "books/valid.tsv", test=TASKS / "books/test.tsv",
                  tokenizer="labelled", tokenizer_options={"min_count": 2}, task="classify", batch_size=32,
                  seq_length=40, steps=1500, eval_every=150),
    "chorale-bass": dict(corpus=TASKS / "chorale-bass/train.conll", valid=TASKS / "chorale-bass/valid.conll",
                         test=TASKS / "chorale-bass/test.conll", tokenizer="conll", task="tag", batch_size=16,
                         seq_length=64, steps=1500, eval_every=150),
}


def run(name, bidirectional, out):
    recipe = {**COMMON, **RECIPES[name]}
    threads = recipe.pop("threads")
    test = recipe.pop("test")
    from seqgen.threads import limit_threads

    limit_threads(threads)
    output = out / f"{name}-{'bi' if bidirectional else 'uni'}.npz"
    options = TrainOptions(**recipe, bidirectional=bidirectional, output=output)
    result = api.train(options)
    best = result.best_output
    figures = {"steps": result.step, "best_valid_loss": round(result.best_valid, 4),
               "train_seconds": round(result.trainer.elapsed, 1)}
    for split, path in (("valid", recipe["valid"]), ("test", test)):
        e = api.evaluate(EvalOptions(model=str(best), corpus=path))
        figures[f"{split}_accuracy"] = round(e.accuracy, 4)
        figures[f"{split}_macro_f1"] = round(sum(s.f1 for s in e.labels.values()) / len(e.labels), 4)
        if e.entity is not None:
            figures[f"{split}_entity_f1"] = round(e.entity.f1, 4)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(RECIPES))
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "tasks")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    recorded = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    failed = False
    for name in args.names:
        for bidirectional in (True, False):
            key = f"{name}-{'bi' if bidirectional else 'uni'}"
            figures = run(name, bidirectional, args.out)
            print(key, json.dumps(figures), flush=True)
            if args.check:
                for k, v in recorded[key].items():
                    if k.endswith(("accuracy", "f1")) and abs(figures[k] - v) > TOLERANCE:
                        print(f"  {k}: {figures[k]} differs from the recorded {v} by more than {TOLERANCE}")
                        failed = True
            else:
                recorded[key] = figures
                FIGURES.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
