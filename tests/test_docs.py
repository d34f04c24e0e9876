"""Documentation generated from code is current."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_options_reference_is_generated_from_the_option_objects():
    spec = importlib.util.spec_from_file_location("make_options_doc", ROOT / "scripts" / "make_options_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "options.md").read_text() == module.render(), \
        "docs/options.md is stale: run python scripts/make_options_doc.py"
