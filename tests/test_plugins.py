"""The plugin manager: entry points, clashes, broken plugins, and the docs' worked example."""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from seqgen import hookimpl
from seqgen.errors import PluginError
from seqgen.plugins.host import (
    get_plugin_manager,
    get_tokenizer,
    get_tokenizers,
    list_plugins,
    make_plugin_manager,
    tokenizer_from_dict,
)
from seqgen.plugins.tokenizer import Tokenizer

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def fake_install(site, dist, entry_points, modules):
    """Make `site` look like an installed distribution with `seqgen` entry points
    (name -> module) and module sources (module name -> code)."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[seqgen]\n{lines}")
    for module, code in modules.items():
        (site / f"{module}.py").write_text(code)


PLUGIN_CODE = '''
from seqgen import hookimpl
from seqgen.plugins.tokenizer import Tokenizer

class {cls}(Tokenizer):
    name = "{tok}"
    def read_file(self, path):
        return list(path.read_text())
    def render(self, tokens):
        return "".join(tokens)

@hookimpl
def register_tokenizers(register):
    register({cls})
'''


def test_builtin_tokenizers_come_from_entry_points():
    pm = make_plugin_manager()
    tokenizers = get_tokenizers(pm)
    assert {"chars", "words", "midi"} <= set(tokenizers)
    assert tokenizers["midi"].__module__ == "seqgen_plugins.midi"
    infos = {info.name: info for info in list_plugins(pm)}
    assert infos["words"].version == version("seqgen")
    assert infos["chars"].tokenizers == ("chars",)


def test_without_entry_points_there_are_no_tokenizers():
    assert get_tokenizers(make_plugin_manager(load_entry_points=False)) == {}


def test_get_plugin_manager_is_cached():
    assert get_plugin_manager() is get_plugin_manager()


def test_installed_third_party_plugin_is_loaded(tmp_path, monkeypatch):
    fake_install(tmp_path, "seqgen-rev", {"rev": "seqgen_rev_mod"},
                 {"seqgen_rev_mod": PLUGIN_CODE.format(cls="Rev", tok="rev")})
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = make_plugin_manager()
    assert get_tokenizer("rev", pm).__name__ == "Rev"
    assert {i.name: i.version for i in list_plugins(pm)}["rev"] == "1.0"


def test_duplicate_tokenizer_name_names_both_plugins(tmp_path, monkeypatch):
    fake_install(tmp_path, "seqgen-dup", {"dup-plugin": "seqgen_dup_mod"},
                 {"seqgen_dup_mod": PLUGIN_CODE.format(cls="Chars2", tok="chars")})
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = make_plugin_manager()
    with pytest.raises(PluginError, match=r"'chars'.*two plugins: '(chars' and 'dup-plugin|dup-plugin' and 'chars)'"):
        get_tokenizers(pm)


def test_plugin_that_fails_to_import_warns_and_others_work(tmp_path, monkeypatch):
    fake_install(tmp_path, "seqgen-broken", {"broken": "seqgen_broken_mod"},
                 {"seqgen_broken_mod": "import no_such_module_xyz\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match=r"plugin 'broken' .*failed to load: ModuleNotFoundError"):
        pm = make_plugin_manager()
    assert {"chars", "words", "midi"} <= set(get_tokenizers(pm))
    assert "broken" not in {info.name for info in list_plugins(pm)}


def test_plugin_whose_hook_raises_warns_and_others_work():
    class Broken:
        @hookimpl
        def register_tokenizers(self, register):
            raise RuntimeError("boom")

    pm = make_plugin_manager()
    pm.register(Broken(), name="broken-hook")
    with pytest.warns(UserWarning, match=r"'broken-hook' failed in register_tokenizers: RuntimeError: boom"):
        tokenizers = get_tokenizers(pm)
    assert "chars" in tokenizers


@pytest.mark.parametrize("thing", [str, object(), Tokenizer])
def test_registering_a_non_tokenizer_is_an_error(thing):
    class Bad:
        @hookimpl
        def register_tokenizers(self, register):
            register(thing)

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Bad(), name="bad-plugin")
    with pytest.raises(PluginError, match="bad-plugin"):
        get_tokenizers(pm)


def test_unknown_tokenizer_lists_known_ones():
    with pytest.raises(PluginError, match=r"unknown tokenizer 'nope' \(known: chars, conll, labelled, midi, words\)"):
        get_tokenizer("nope", make_plugin_manager())


def test_tokenizer_from_dict_round_trips_through_json():
    tok = get_tokenizer("chars")(lower=True)
    tok.fit([list("hello\nworld\n")])
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert type(again) is type(tok)
    assert again.config == tok.config and again.vocab == tok.vocab


def test_tokenizer_from_dict_unknown_says_what_to_install():
    d = {"name": "fasta", "module": "seqgen_fasta", "options": {}, "vocab": ["A"]}
    with pytest.raises(PluginError, match=r"'fasta' \(module seqgen_fasta\) is not installed; install"):
        tokenizer_from_dict(d, make_plugin_manager())


def doc_files():
    """docs/plugins.md's worked example: file path -> contents."""
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", DOCS.read_text(), re.S))


def test_docs_worked_example_installs_tokenizes_trains_and_samples_end_to_end(tmp_path):
    pytest.importorskip("setuptools", reason="pip --no-build-isolation needs setuptools")
    files = doc_files()
    assert {"pyproject.toml", "seqgen_fasta.py", "tests/test_fasta.py"} <= set(files)
    pkg, site = tmp_path / "seqgen-fasta", tmp_path / "site"
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(pkg)],
        check=True, capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    (tmp_path / "seqs.fa").write_text(">a\nACGTTA\n>b\nGGC\n")

    def seqgen(*args):
        return subprocess.run([sys.executable, "-m", "seqgen", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True)

    listed = seqgen("plugins")
    assert listed.returncode == 0, listed.stderr
    assert "fasta 0.1.0: fasta" in listed.stdout.splitlines()
    report = seqgen("tokenize", "seqs.fa", "--tokenizer", "fasta")
    assert report.returncode == 0, report.stderr
    assert "tokens: 11" in report.stdout and "vocabulary: 5" in report.stdout
    records = "".join(f">r{i}\n{'ACGT' * (i % 3 + 1)}{'GC' * (i % 2)}\n" for i in range(12))
    (tmp_path / "train.fa").write_text(records)
    trained = seqgen("train", "train.fa", "-t", "fasta", "--mode", "items", "--batch-size", "4", "--seq-length", "8",
                     "--hidden-size", "8", "--steps", "6", "--valid-fraction", "0", "-o", "fasta.npz", "-q")
    assert trained.returncode == 0, trained.stderr
    sampled = seqgen("sample", "-m", "fasta.npz", "-n", "4", "--seed", "1", "--length", "30")
    assert sampled.returncode == 0, sampled.stderr
    lines = sampled.stdout.splitlines()
    assert len(lines) == 4 and all(set(line) <= set("ACGT") for line in lines)
    info = seqgen("info", "fasta.npz")
    assert "tokenizer: fasta" in info.stdout
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")],
                           env=env, cwd=pkg, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
