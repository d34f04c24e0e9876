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
