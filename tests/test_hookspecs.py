"""Every hook: documented, and exercised by a plugin (one test per hook)."""

import inspect
import re
from pathlib import Path

import pytest

from seqgen import hookimpl
from seqgen.plugins import boundary, hookspecs
from seqgen.plugins.host import get_tokenizers, make_plugin_manager
from seqgen.plugins.tokenizer import Tokenizer

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def hookspec_functions():
    return {
        name: f
        for name, f in vars(hookspecs).items()
        if inspect.isfunction(f) and hasattr(f, "seqgen_spec")
    }


def test_there_are_hookspecs():
    assert "register_tokenizers" in hookspec_functions()


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hookspec_is_docstring_only(name):
    f = hookspec_functions()[name]
    assert f.__doc__ and f.__doc__.strip()
    source = inspect.getsource(f)
    body = source.split('"""')[2:]  # after the docstring
    assert "".join(body).strip() == "", f"{name} should have no body besides its docstring"


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hookspec_is_documented(name):
    signature = f"{name}{inspect.signature(hookspec_functions()[name])}"
    headings = re.findall(r"^###\s+`(.+?)`", DOCS.read_text(), re.M)
    assert signature in headings, f"docs/plugins.md needs a '### `{signature}`' section"


def test_hookspecs_match_the_plugin_manager():
    pm = make_plugin_manager(load_entry_points=False)
    assert set(hookspec_functions()) == {
        name for name in vars(pm.hook) if not name.startswith("_")
    }


class Upper(Tokenizer):
    name = "upper_test"

    def read_file(self, path):
        return list(path.read_text().upper())

    def render(self, tokens):
        return "".join(tokens)


def test_register_tokenizers():
    class Plugin:
        @hookimpl
        def register_tokenizers(self, register):
            register(Upper)

    pm = make_plugin_manager(load_entry_points=False)
    assert get_tokenizers(pm) == {}
    pm.register(Plugin(), name="upper-plugin")
    assert get_tokenizers(pm) == {"upper_test": Upper}


@pytest.mark.parametrize("method", sorted(boundary.CHECKED))
def test_boundary_check_is_documented(method):
    table = re.findall(r"^\| `(\w+)\(", DOCS.read_text(), re.M)
    assert method in table, f"docs/plugins.md's 'Checks at the boundary' table needs a row for {method}"


@pytest.mark.parametrize("switch", ["SEQGEN_PLUGINS", "SEQGEN_TRACE_PLUGINS"])
def test_environment_switches_are_documented(switch):
    assert re.search(rf"^###? .*`{switch}", DOCS.read_text(), re.M), f"docs/plugins.md needs a section on {switch}"
