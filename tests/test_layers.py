"""The architecture's arrows point down (docs/architecture.md): front ends reach the library
only through seqgen.api and the option objects, the engine knows nothing above it, kernels know
only kernels, and tokenizers are reached only through the plugin host. Read from the source, so
a new import that crosses a layer fails here."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "seqgen"

# module prefix -> the seqgen modules it may import (prefixes); seqgen.errors and seqgen._numba
# are shared by all
ALLOWED = {
    "seqgen.cli": ("seqgen.cli", "seqgen.api", "seqgen.options", "seqgen.threads", "seqgen.plots", "seqgen.sweep",
                   "seqgen.service", "seqgen.storage.atomic"),
    "seqgen.service": ("seqgen.service", "seqgen.api", "seqgen.options", "seqgen.generation"),
    "seqgen.sweep": ("seqgen.sweep", "seqgen.api", "seqgen.options", "seqgen.threads", "seqgen.storage.atomic"),
    "seqgen.plots": ("seqgen.plots", "seqgen.plugins.host", "seqgen.storage.atomic"),
    "seqgen.generation": ("seqgen.generation", "seqgen.engine", "seqgen.kernels", "seqgen.storage", "seqgen.options",
                          "seqgen.plugins.tokenizer", "seqgen.threads"),  # generate's stream blocks on threads
    "seqgen.training": ("seqgen.training", "seqgen.engine", "seqgen.kernels", "seqgen.storage", "seqgen.options",
                        "seqgen.plugins"),
    "seqgen.storage": ("seqgen.storage", "seqgen.engine", "seqgen.options", "seqgen.plugins.host"),
    "seqgen.engine": ("seqgen.engine", "seqgen.kernels", "seqgen.threads"),  # training row blocks on threads
    "seqgen.kernels": ("seqgen.kernels",),
    "seqgen.plugins": ("seqgen.plugins",),
    "seqgen.options": ("seqgen.engine.cells", "seqgen.engine.heads"),
}
SHARED = ("seqgen.errors", "seqgen._numba", "seqgen.__version__")


def imports(path):
    """(line, imported module) for every seqgen import in a file, lazy ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "seqgen" else [f"seqgen.{a.name}" for a in node.names]
            for name in names:
                yield node.lineno, name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_rules_cover_real_modules():
    assert len(MODULES) > 40
    for prefix in ALLOWED:
        assert any(module_name(p).startswith(prefix) for p in MODULES), prefix


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_reaches_past_its_neighbours(path):
    name = module_name(path)
    rule = next((prefix for prefix in sorted(ALLOWED, key=len, reverse=True) if name.startswith(prefix)), None)
    if rule is None:  # seqgen/__init__.py, api.py, errors.py, threads.py, _numba.py, __main__.py: the top
        return
    crossing = [(line, target) for line, target in imports(path)
                if (target.startswith("seqgen.") or target.startswith("seqgen_plugins"))
                and not target.startswith(ALLOWED[rule] + SHARED)]
    assert not crossing, f"{name} imports past its layer: {crossing}"
