"""Train the default models shipped in seqgen/models/ and write their catalog.

    python scripts/make_default_models.py            # all of them
    python scripts/make_default_models.py dinos      # some of them

Each recipe is one `seqgen train` command (below, and in docs/models.md); the best checkpoint
by validation loss is exported without its training state into seqgen/models/NAME.npz, and
seqgen/models/catalog.json records the recipe and the validation loss.
"""

import json
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
        "Bach chorale melodies (soprano line, 16th-note grid): LSTM (1 x 128); writes .mid files",
        "seqgen train corpora/jsb-chorales/melody/train --valid corpora/jsb-chorales/melody/valid -t midi "
        "--mode items --cell lstm --hidden-size 128 --dropout 0 --batch-size 16 --seq-length 64 --lr 0.003 "
        "--clip-norm 5 --clip-value 0 --epochs 60 --eval-every 25 --patience 12 --seed 0 "
        "-o build/models/chorale.npz",
    ),
    "chorale-satb": (
        "Bach chorales in four voices (polyphonic chord-step encoding, 16th-note grid): LSTM (1 x 128)",
        "seqgen train corpora/jsb-chorales/satb/train --valid corpora/jsb-chorales/satb/valid -t midi "
        "-O encoding poly --mode items --cell lstm --hidden-size 128 --batch-size 16 --seq-length 128 --lr 0.003 "
        "--clip-norm 5 --clip-value 0 --epochs 30 --eval-every 50 --patience 8 --seed 0 "
        "-o build/models/chorale-satb.npz",
    ),
}

# A float64 re-run of the first N steps, recorded beside the recipe: float64 training is the same
# to ~1e-15 on any CPU, while float32 results move with the BLAS kernel the CPU gets, so the
# test suite checks the recipe exactly in float64 and only roughly in float32.
FLOAT64_CHECKS = {"dinos": 3000}


def best_valid(path):
    return json.loads(subprocess.run([sys.executable, "-c", (
        "import json, sys; from seqgen.storage import checkpoint; c = checkpoint.load(sys.argv[1]); "
        "t = c.summary or c.training; print(json.dumps({'valid_loss': t['best_valid'], 'step': t['step']}))"),
        str(path)], cwd=ROOT, check=True, capture_output=True, text=True).stdout)


def main(names):
    BUILD.mkdir(parents=True, exist_ok=True)
    catalog_path = MODELS / "catalog.json"
    catalog = json.loads(catalog_path.read_text()) if catalog_path.exists() else {}
    for name in names or RECIPES:
        description, command = RECIPES[name]
        print(f"$ {command}", flush=True)
        seqgen = [sys.executable, "-m", "seqgen"]  # the seqgen of this Python, whatever PATH says
        subprocess.run(seqgen + shlex.split(command)[1:], cwd=ROOT, check=True)
        best = BUILD / f"{name}.best.npz"
        subprocess.run(seqgen + ["export", "--force", str(best), str(MODELS / f"{name}.npz")], cwd=ROOT, check=True)
        catalog[name] = {"file": f"{name}.npz", "description": description, "recipe": command,
                         **best_valid(MODELS / f"{name}.npz")}
        if name in FLOAT64_CHECKS:
            steps, out = FLOAT64_CHECKS[name], BUILD / f"{name}-float64.npz"
            args = shlex.split(command)[1:] + ["--dtype", "float64", "--steps", str(steps), "-o", str(out), "-q"]
            subprocess.run(seqgen + args, cwd=ROOT, check=True)
            catalog[name]["float64_check"] = {"steps": steps, "valid_loss": best_valid(out)["valid_loss"]}
        ordered = {k: catalog[k] for k in RECIPES if k in catalog}
        catalog_path.write_text(json.dumps(ordered, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
