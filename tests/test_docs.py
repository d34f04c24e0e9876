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


def test_the_readme_python_api_snippet_runs_as_written(tmp_path, monkeypatch):
    """It used names it never defined (inputs, targets, ids)."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Python API"):]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "corpora").symlink_to(ROOT / "corpora")  # the snippet's relative paths, in a scratch folder
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md (Python API)", "exec"), {})
    assert (tmp_path / "dinos-gru.npz").exists()


def test_every_option_of_eval_has_help(cli_run):
    r = cli_run("eval", "--help")
    for flag in ("--batch-size", "--seq-length"):
        line = next(line for line in r.output.splitlines() if line.strip().startswith(flag))
        assert len(line.split(maxsplit=2)) == 3, line  # flag, metavar, help text


def _models_script():
    spec = importlib.util.spec_from_file_location("make_default_models", ROOT / "scripts" / "make_default_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_doc_tables_are_generated_from_the_recipes_and_the_catalog():
    script = _models_script()
    doc = (ROOT / "docs" / "models.md").read_text()
    assert script.render_docs() in doc, "docs/models.md is stale: run python scripts/make_default_models.py --docs"


def test_every_shipped_model_was_made_by_the_recipe_the_docs_show():
    import json

    script = _models_script()
    catalog = json.loads((ROOT / "seqgen" / "models" / "catalog.json").read_text())
    assert set(catalog) == set(script.RECIPES)
    for name, (_, command) in script.RECIPES.items():
        assert catalog[name]["recipe"] == command, name
