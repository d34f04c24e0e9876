"""The default models shipped inside the package (``seqgen models``), listed in
``seqgen/models/catalog.json``: name -> {"file", "description", "recipe", "valid_loss"}."""

import json
from pathlib import Path

MODELS_DIR = Path(__file__).parent.parent / "models"
DEFAULT_TEXT_MODEL = "shakespeare"


def catalog():
    """name -> catalog entry, in the catalog's order."""
    with open(MODELS_DIR / "catalog.json", encoding="utf-8") as f:
        return json.load(f)


def names():
    return list(catalog())


def path(name):
    return MODELS_DIR / catalog()[name]["file"]


def resolve(model=None):
    """A checkpoint path, or the file of a shipped model's name (None: the default text model).
    CheckpointError if it is neither."""
    from seqgen.errors import CheckpointError

    if model is None:
        model = DEFAULT_TEXT_MODEL
    if Path(model).exists():
        return Path(model)
    if str(model) in names():
        return path(str(model))
    known = ", ".join(names()) or "none"
    raise CheckpointError(f"{model}: no such checkpoint file or shipped model (shipped: {known})")
