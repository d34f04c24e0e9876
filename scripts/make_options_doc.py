"""Write docs/options.md from the option objects in seqgen.options, so the reference cannot
drift from the code (tests/test_docs.py checks the file is current).

    python scripts/make_options_doc.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seqgen.options import EvalOptions, PredictOptions, SampleOptions, TrainOptions  # noqa: E402

INTRO = """# Options

Every setting of `seqgen train`, `seqgen eval` and `seqgen sample` is a field of one typed
option object in `seqgen/options.py`. The command line, `--config` files, the HTTP service and
sweeps all fill the same objects, so a value gets the same checks whichever way it arrives, and
an error names the field (`--hidden-size` on the command line, `hidden_size` in a file or JSON).
This page is generated from those objects by `scripts/make_options_doc.py`.

## Config files

`seqgen train --config train.toml` reads any `TrainOptions` field from a TOML file (keys with
dashes or underscores); flags given on the command line win. Tokenizer options go in an
`[option]` table (the `-O KEY VALUE` flags). `quiet = true` is also accepted. A config file must
be a regular file of at most 1 MB; every value is checked as a flag would be, and an error names
the file and the field.

```toml
# train.toml
corpus = "corpora/dinos.txt"
mode = "items"
cell = "rnn"
hidden-size = 50
steps = 22000

[option]
lower = true
```

## Threads

Every command takes `--threads N` (also before the command: `seqgen --threads 1 train ...`),
or reads `SEQGEN_THREADS`. It caps the BLAS thread pools through threadpoolctl, so it works
whenever it is applied. Give each of several concurrent runs a share of the cores: BLAS threads
that outnumber the cores spin against each other.

## Defaults worth knowing

- Training uses `seed = 0` unless told otherwise: the same command trains the same model.
- Sampling draws a fresh seed each run unless `--seed` is given, and reports the one it used;
  each sample has its own random stream, so sample 1 of a seed is the same whatever `-n` is.
- Outputs are never overwritten silently: `--force` (or a new name) is needed.
- Losses are mean negative log-likelihoods in nats per token; the training loss in logs and
  `seqgen info` is the mean over the steps since the previous evaluation.
"""


FLAGS = {"corpus": "CORPUS", "tokenizer_options": "-O KEY VALUE", "n": "-n", "include_prime": "--no-prime-in-output",
         "model": "--model", "stop": "--stop / --no-stop", "file": "FILE"}
POSITIONAL = {"EvalOptions": {"model": "MODEL", "corpus": "CORPUS"}, "PredictOptions": {"model": "MODEL"}}


def table(cls):
    rows = ["| field | flag | type | default | meaning |", "|---|---|---|---|---|"]
    for name, field in cls.model_fields.items():
        kind = getattr(field.annotation, "__name__", None) if isinstance(field.annotation, type) else None
        kind = kind or str(field.annotation).replace("typing.", "").replace("pathlib.", "").replace("|", "or")
        default = "required" if field.is_required() else field.get_default(call_default_factory=True)
        default = "—" if default is None else default if default == "required" else f"`{default}`"
        flag = POSITIONAL.get(cls.__name__, {}).get(name) or FLAGS.get(name, "--" + name.replace("_", "-"))
        rows.append(f"| `{name}` | `{flag}` | {kind} | {default} | {field.description or ''} |")
    return "\n".join(rows)


def render():
    parts = [INTRO]
    for title, cls in (("Training (`TrainOptions`)", TrainOptions), ("Evaluation (`EvalOptions`)", EvalOptions),
                       ("Prediction (`PredictOptions`)", PredictOptions),
                       ("Sampling (`SampleOptions`)", SampleOptions)):
        parts.append(f"## {title}\n\n{(cls.__doc__ or '').strip()}\n\n{table(cls)}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    (ROOT / "docs" / "options.md").write_text(render())
