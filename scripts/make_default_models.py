"""Train the default models shipped in seqgen/models/ and write their catalog.

    python scripts/make_default_models.py            # all of them
    python scripts/make_default_models.py dinos      # some of them
    python scripts/make_default_models.py --docs     # only rewrite docs/models.md's tables
    python scripts/make_default_models.py --export-only NAME   # ship a run of the recipe made earlier

Each recipe is one `seqgen train` command (RECIPES below); the best checkpoint by validation
loss is exported without its training state into seqgen/models/NAME.npz, and
seqgen/models/catalog.json records the recipe, the validation loss, its step and the training
minutes it took. The model table and the recipes in docs/models.md are generated from RECIPES and
the catalog (a test keeps them current), so the docs show what the shipped files were made with.
"""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "models"
MODELS = ROOT / "seqgen" / "models"

RECIPES = {
    "shakespeare": (
        "character-level LSTM (2 x 192) trained on tinyshakespeare",
        "seqgen train corpora/tinyshakespeare.txt -O separator '' --cell lstm --hidden-size 192 --layers 2 "
        "--dropout 0.1 --seq-length 100 --batch-size 32 --lr 0.002 --decay 0.95 --decay-every 1000 --clip-norm 5 "
        "--clip-value 0 --steps 9000 --eval-every 250 --seed 0 -o build/models/shakespeare.npz",
    ),
    "dinos": (
        "dinosaur names: the Sequence Models notes' tanh RNN (50 units, SGD 0.01, clip 5, one name per step)",
        "seqgen train corpora/dinos.txt -O lower true --mode items --batch-size 1 --cell rnn --hidden-size 50 "
        "--init small --optimizer sgd --lr 0.01 --clip-value 5 --reduction sum --steps 22000 --eval-every 1000 "
        "--seed 0 -o build/models/dinos.npz",
    ),
    "chorale": (
        "Bach chorale melodies (soprano line, 16th-note grid), trained transposed into every key that fits: "
        "LSTM (1 x 128); writes .mid files",
        "seqgen train corpora/jsb-chorales/melody/train --valid corpora/jsb-chorales/melody/valid -t midi "
        "-O transpose all --mode items --cell lstm --hidden-size 128 --batch-size 16 --seq-length 64 --lr 0.003 "
        "--clip-norm 5 --clip-value 0 --epochs 20 --eval-every 50 --patience 12 --seed 0 "
        "-o build/models/chorale.npz",
    ),
    "chorale-satb": (
        "Bach chorales in four voices (polyphonic chord-step encoding, 16th-note grid), trained transposed into "
        "every key that fits: LSTM (1 x 128)",
        "seqgen train corpora/jsb-chorales/satb/train --valid corpora/jsb-chorales/satb/valid -t midi "
        "-O encoding poly -O transpose all --mode items --cell lstm --hidden-size 128 --batch-size 16 "
        "--seq-length 128 --lr 0.003 --clip-norm 5 --clip-value 0 --epochs 8 --eval-every 100 --patience 25 "
        "--seed 0 -o build/models/chorale-satb.npz",
    ),
}

# A float64 re-run of the first N steps, recorded beside the recipe: float64 training is the same
# to ~1e-15 on any CPU, while float32 results move with the BLAS kernel the CPU gets, so the
# test suite checks the recipe exactly in float64 and only roughly in float32.
FLOAT64_CHECKS = {"dinos": 3000}


def best_valid(path):
    return json.loads(subprocess.run([sys.executable, "-c", (
        "import json, sys; from seqgen.storage import checkpoint; c = checkpoint.load(sys.argv[1]); "
        "t = c.summary or c.training; print(json.dumps({'valid_loss': t['best_valid'], 'step': t['step'], "
        "'minutes': round(t.get('elapsed', 0) / 60, 1)}))"),
        str(path)], cwd=ROOT, check=True, capture_output=True, text=True).stdout)


def main(names, train=True):
    BUILD.mkdir(parents=True, exist_ok=True)
    catalog_path = MODELS / "catalog.json"
    catalog = json.loads(catalog_path.read_text()) if catalog_path.exists() else {}
    for name in names or RECIPES:
        description, command = RECIPES[name]
        seqgen = [sys.executable, "-m", "seqgen"]  # the seqgen of this Python, whatever PATH says
        if train:
            print(f"$ {command}", flush=True)
            subprocess.run(seqgen + shlex.split(command)[1:] + ["--force"], cwd=ROOT, check=True)  # a fresh run
        best = BUILD / f"{name}.best.npz"
        subprocess.run(seqgen + ["export", "--force", str(best), str(MODELS / f"{name}.npz")], cwd=ROOT, check=True)
        catalog[name] = {"file": f"{name}.npz", "description": description, "recipe": command,
                         **best_valid(MODELS / f"{name}.npz")}
        if name in FLOAT64_CHECKS:
            steps, out = FLOAT64_CHECKS[name], BUILD / f"{name}-float64.npz"
            args = shlex.split(command)[1:] + ["--dtype", "float64", "--steps", str(steps), "-o", str(out), "-q",
                                               "--force"]
            subprocess.run(seqgen + args, cwd=ROOT, check=True)
            catalog[name]["float64_check"] = {"steps": steps, "valid_loss": best_valid(out)["valid_loss"]}
        ordered = {k: catalog[k] for k in RECIPES if k in catalog}
        catalog_path.write_text(json.dumps(ordered, indent=2) + "\n")


BEGIN, END = "<!-- BEGIN generated by scripts/make_default_models.py -->", "<!-- END generated -->"
ARCHITECTURE = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}


def _size(nbytes):
    return f"{nbytes / 1e6:.2f} MB" if nbytes >= 1e6 else f"{nbytes / 1e3:.0f} kB"


def render_docs():
    """The generated part of docs/models.md: the table of shipped models and their recipes."""
    from seqgen.storage import checkpoint

    catalog = json.loads((MODELS / "catalog.json").read_text())
    rows = ["| name | what | architecture | parameters | file | validation loss (nats/token) | at step "
            "| training minutes |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, (description, _) in RECIPES.items():
        entry, path = catalog[name], MODELS / f"{name}.npz"
        shipped = checkpoint.load(path)
        model, c = shipped.model, shipped.model.config
        options = (shipped.summary or {}).get("options", {})
        regularised = ", ".join(f"{k.replace('_', ' ')} {options[k]:g}" for k in ("dropout", "dropout_output",
                                                                                  "weight_decay") if options.get(k))
        arch = f"{ARCHITECTURE[c.cell]} {c.num_layers} × {c.hidden_size}" + (f", {regularised}" if regularised else "")
        default = " (default)" if name == "shakespeare" else ""
        rows.append(f"| `{name}`{default} | {description} | {arch} | {model.num_params:,} | "
                    f"{_size(path.stat().st_size)} | {entry['valid_loss']:.4f} | {entry['step']:,} | "
                    f"{entry.get('minutes', '—')} |")
    recipes = ["```bash"]
    for _, command in RECIPES.values():
        recipes += [_wrapped(command), ""]
    recipes[-1] = "```"
    return "\n".join([BEGIN, "", *rows, "", "Recipes (`seqgen train` commands, run from the repository root):", "",
                      *recipes, "", END])


def _wrapped(command, width=110):
    """A shell command over several lines (before an option, at most ``width`` characters each)."""
    lines, line = [], ""
    for part in re.split(r" (?=-)", command):
        if line and len(line) + len(part) + 3 > width:
            lines.append(line + " \\")
            line = "    " + part
        else:
            line = f"{line} {part}" if line else part
    return "\n".join(lines + [line])


def write_docs():
    doc = ROOT / "docs" / "models.md"
    text = doc.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    doc.write_text(text[:start] + render_docs() + text[stop:])


if __name__ == "__main__":
    if sys.argv[1:] == ["--docs"]:
        write_docs()
    elif sys.argv[1:2] == ["--export-only"]:  # ship build/models/NAME.best.npz, trained by its recipe before
        main(sys.argv[2:], train=False)
        write_docs()
    else:
        main(sys.argv[1:])
        write_docs()
