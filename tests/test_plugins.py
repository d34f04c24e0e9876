"""The plugin host: entry points, clashes, broken plugins failing narrowly, checks at the
plugin boundary, tracing, and the docs' worked example. Every test builds its own plugin
manager or registers its own test plugins: none depends on what else is installed."""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from seqgen import hookimpl
from seqgen.errors import PluginError, TokenizerError
from seqgen.plugins.host import (
    PLUGINS_ENV,
    TRACE_ENV,
    _process_manager,
    get_plugin_manager,
    get_tokenizer,
    get_tokenizers,
    list_plugins,
    make_plugin_manager,
    tokenizer_from_dict,
)
from seqgen.plugins.tokenizer import Tokenizer

BUILTIN_TOKENIZERS = {"chars", "conll", "labelled", "midi", "words"}

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
    assert {"chars", "words", "midi"} <= set(tokenizers)  # others may be installed too
    assert tokenizers["midi"].__module__ == "seqgen_plugins.midi"
    infos = {info.name: info for info in list_plugins(pm)}
    assert infos["words"].version == version("seqgen")
    assert infos["chars"].tokenizers == ("chars",)
    assert {"chars", "words", "midi"} <= pm.builtin


def test_only_builtin_manager_ignores_installed_plugins(tmp_path, monkeypatch):
    fake_install(tmp_path, "seqgen-extra", {"extra": "seqgen_extra_mod"},
                 {"seqgen_extra_mod": PLUGIN_CODE.format(cls="Extra", tok="extra")})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "extra" in get_tokenizers(make_plugin_manager())
    assert set(get_tokenizers(make_plugin_manager(only_builtin=True))) == BUILTIN_TOKENIZERS


def test_the_suite_sees_only_builtin_plugins(tmp_path, monkeypatch):
    """conftest's autouse fixture sets SEQGEN_PLUGINS=builtin, so what else is installed on
    the machine cannot change what the process-wide manager (or a seqgen subprocess) sees."""
    assert os.environ[PLUGINS_ENV] == "builtin"
    fake_install(tmp_path, "seqgen-iso", {"iso": "seqgen_iso_mod"},
                 {"seqgen_iso_mod": PLUGIN_CODE.format(cls="Iso", tok="iso")})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert set(get_tokenizers(get_plugin_manager())) == BUILTIN_TOKENIZERS
    monkeypatch.setenv(PLUGINS_ENV, "all")
    try:
        assert "iso" in get_tokenizers(get_plugin_manager())
    finally:
        _process_manager.cache_clear()  # forget the manager that saw this test's fake install


def test_bad_seqgen_plugins_value_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(PLUGINS_ENV, "bultin")
    with pytest.raises(PluginError, match=r"^SEQGEN_PLUGINS must be one of all, builtin, got 'bultin'$"):
        get_plugin_manager()


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
    assert "rev" not in pm.builtin


# -- a broken plugin fails narrowly ---------------------------------------------------------


def tokenizer_class(name="echo", **methods):
    """A character tokenizer class called `name`, with `methods` replacing its own."""
    body = {
        "__module__": __name__,
        "name": name,
        "read_file": lambda self, path: list(path.read_text()),
        "parse_prime": lambda self, text: list(text),
        "render": lambda self, tokens: "".join(tokens),
        **methods,
    }
    return type(f"{name.title()}Tokenizer", (Tokenizer,), body)


def plugin_of(*things):
    """A plugin object whose register_tokenizers registers `things`."""

    class Plugin:
        @hookimpl
        def register_tokenizers(self, register):
            for thing in things:
                register(thing)

    return Plugin()


def test_duplicate_of_a_builtin_name_loses_only_that_tokenizer(tmp_path, monkeypatch):
    code = PLUGIN_CODE.format(cls="Chars2", tok="chars") + "    register(Other)\n" + (
        "\nclass Other(Chars2):\n    name = 'other'\n")
    fake_install(tmp_path, "seqgen-dup", {"dup-plugin": "seqgen_dup_mod"}, {"seqgen_dup_mod": code})
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = make_plugin_manager()
    with pytest.warns(UserWarning) as caught:
        tokenizers = get_tokenizers(pm)
    assert [str(w.message) for w in caught] == [
        "seqgen plugin 'dup-plugin': tokenizer 'chars' is not used: the name belongs to built-in plugin 'chars' "
        "(rename it, or uninstall one of the two)"]
    assert tokenizers["chars"].__module__ == "seqgen_plugins.chars"
    assert tokenizers["other"].__name__ == "Other"
    info = {i.name: i for i in list_plugins(pm)}["dup-plugin"]
    assert info.tokenizers == ("other",) and info.disabled is None
    assert "'chars' is not used" in info.problems[0]


def test_clash_between_installed_plugins_goes_to_the_first_by_plugin_name(tmp_path, monkeypatch):
    for dist, ep in (("seqgen-zeta", "zeta"), ("seqgen-alpha", "alpha")):  # zeta is written first
        fake_install(tmp_path, dist, {ep: f"seqgen_{ep}_mod"},
                     {f"seqgen_{ep}_mod": PLUGIN_CODE.format(cls=ep.title(), tok="dna")})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match=r"^seqgen plugin 'zeta': tokenizer 'dna' is not used: the name belongs "
                                         r"to plugin 'alpha'"):
        assert get_tokenizer("dna", make_plugin_manager()).__name__ == "Alpha"


def test_clash_between_registered_plugins_goes_to_the_first_registered():
    first, second = tokenizer_class("same"), tokenizer_class("same")
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(plugin_of(first), name="first")
    pm.register(plugin_of(second), name="second")
    with pytest.warns(UserWarning, match="'second': tokenizer 'same' is not used: the name belongs to plugin 'first'"):
        assert get_tokenizer("same", pm) is first


class Nameless(Tokenizer):
    def read_file(self, path):
        return []

    def render(self, tokens):
        return ""


class NoRender(Tokenizer):
    name = "norender"

    def read_file(self, path):
        return []


@pytest.mark.parametrize(("thing", "problem"), [
    (str, "registered str, which is not a subclass of seqgen.Tokenizer"),
    (object(), "registered <object object at .*>, which is not a subclass of seqgen.Tokenizer"),
    (Tokenizer, "registered Tokenizer, which is not a subclass of seqgen.Tokenizer"),
    (Nameless, r'registered test_plugins.Nameless without a name \(set the class attribute name = "..."\)'),
    (NoRender, "registered test_plugins.NoRender, which does not implement render"),
    (tokenizer_class("badout", output="wav"),
     "test_plugins.BadoutTokenizer.output must be one of text, midi, got 'wav'"),
    (tokenizer_class("badopt", options={"x": 1}),
     r"test_plugins.BadoptTokenizer.options must map option names to seqgen.Option, got \{'x': 1\}"),
    (tokenizer_class("badsuf", suffixes=".txt"),
     "test_plugins.BadsufTokenizer.suffixes must be a tuple of str, got '.txt'"),
])
def test_a_plugin_that_registers_a_non_tokenizer_is_disabled_alone(thing, problem):
    pm = make_plugin_manager(only_builtin=True)
    pm.register(plugin_of(tokenizer_class("fine"), thing), name="bad-plugin")
    with pytest.warns(UserWarning, match=rf"^seqgen plugin 'bad-plugin': disabled, its tokenizers are not "
                                         rf"available: {problem}; fix the plugin$"):
        tokenizers = get_tokenizers(pm)
    assert set(tokenizers) == BUILTIN_TOKENIZERS  # not "fine": the whole plugin is off
    info = {i.name: i for i in list_plugins(pm)}["bad-plugin"]
    assert info.tokenizers == () and info.disabled
    with pytest.raises(PluginError, match=rf"unknown tokenizer 'fine' .*plugin 'bad-plugin' that provides it is "
                                          rf"disabled: {problem}$"):
        get_tokenizer("fine", pm)


def test_plugin_that_fails_to_import_warns_and_others_work(tmp_path, monkeypatch):
    fake_install(tmp_path, "seqgen-broken", {"broken": "seqgen_broken_mod"},
                 {"seqgen_broken_mod": "import no_such_module_xyz\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match=r"plugin 'broken': failed to load .*ModuleNotFoundError"):
        pm = make_plugin_manager()
    assert {"chars", "words", "midi"} <= set(get_tokenizers(pm))
    info = {i.name: i for i in list_plugins(pm)}["broken"]
    assert info.version == "1.0" and info.tokenizers == ()
    assert info.disabled.startswith("failed to load (seqgen_broken_mod, from seqgen-broken 1.0): ModuleNotFound")


def test_plugin_whose_hook_raises_is_disabled_and_others_work():
    class Broken:
        @hookimpl
        def register_tokenizers(self, register):
            raise RuntimeError("boom")

    pm = make_plugin_manager(only_builtin=True)
    pm.register(Broken(), name="broken-hook")
    with pytest.warns(UserWarning, match=r"'broken-hook': disabled, .*: register_tokenizers raised RuntimeError: boom"):
        tokenizers = get_tokenizers(pm)
    assert "chars" in tokenizers


def test_hookimpl_with_wrong_arguments_is_a_one_line_plugin_error():
    class WrongArgs:
        @hookimpl
        def register_tokenizers(self, registry):
            pass

    pm = make_plugin_manager(load_entry_points=False)
    with pytest.raises(PluginError, match=r"^seqgen plugin 'wrong' is not loaded: .*'registry'.* can not be found "
                                          r"in the hookspec \(seqgen's hooks: register_tokenizers\(register\)\)$"):
        pm.register(WrongArgs(), name="wrong")


def test_misspelled_hook_is_reported():
    class Misspelled:
        @hookimpl
        def register_tokenizer(self, register):
            register(tokenizer_class("never"))

    pm = make_plugin_manager(load_entry_points=False)
    with pytest.warns(UserWarning, match=r"^seqgen plugin 'typo': unknown hook 'register_tokenizer' is never "
                                         r"called \(did you mean 'register_tokenizers'\?\)$"):
        pm.register(Misspelled(), name="typo")
    assert get_tokenizers(pm) == {}
    assert "unknown hook" in list_plugins(pm)[0].problems[0]


def test_optional_unknown_hook_is_not_reported(recwarn):
    class Optional:
        @hookimpl(optionalhook=True)
        def some_future_hook(self):
            pass

    make_plugin_manager(load_entry_points=False).register(Optional(), name="optional")
    assert not [w for w in recwarn if "seqgen plugin" in str(w.message)]


def test_undecorated_hook_is_reported():
    class Undecorated:
        def register_tokenizers(self, register):
            register(tokenizer_class("never"))

    pm = make_plugin_manager(load_entry_points=False)
    with pytest.warns(UserWarning, match=r"^seqgen plugin 'plain': register_tokenizers is not decorated with "
                                         r"@seqgen.hookimpl, so it is never called$"):
        pm.register(Undecorated(), name="plain")


def test_hook_that_returns_its_tokenizers_instead_of_registering_is_reported():
    class Returns:
        @hookimpl
        def register_tokenizers(self, register):
            return [tokenizer_class("returned")]

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Returns(), name="returns")
    with pytest.warns(UserWarning, match=r"^seqgen plugin 'returns': register_tokenizers returned "
                                         r"\[ReturnedTokenizer\], which is ignored: it must call register\(cls\) "
                                         r"once for each tokenizer class instead$"):
        assert get_tokenizers(pm) == {}


def test_shipped_model_samples_with_broken_plugins_installed(tmp_path, monkeypatch, cli_run):
    """The newcomer's report: one bad plugin broke every command, even sampling a shipped
    model that does not use it."""
    fake_install(tmp_path, "seqgen-clash", {"clash": "seqgen_clash_mod"},
                 {"seqgen_clash_mod": PLUGIN_CODE.format(cls="Chars3", tok="chars")})
    fake_install(tmp_path, "seqgen-junk", {"junk": "seqgen_junk_mod"},
                 {"seqgen_junk_mod": "from seqgen import hookimpl\n\n@hookimpl\n"
                                     "def register_tokenizers(register):\n    register(str)\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(PLUGINS_ENV, "all")
    _process_manager.cache_clear()
    try:
        r = cli_run("sample", "--model", "dinos", "-n", "2", "--seed", "1")
        listed = cli_run("plugins")
    finally:
        _process_manager.cache_clear()
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 2
    warned = r.stderr.splitlines()
    assert "warning: seqgen plugin 'clash': tokenizer 'chars' is not used: the name belongs to built-in plugin " \
           "'chars' (rename it, or uninstall one of the two)" in warned
    assert "warning: seqgen plugin 'junk': disabled, its tokenizers are not available: registered str, which is " \
           "not a subclass of seqgen.Tokenizer; fix the plugin or uninstall seqgen-junk" in warned
    assert listed.exit_code == 0 and listed.stderr == ""
    lines = listed.stdout.splitlines()
    assert lines[lines.index("clash 1.0: -") + 1].startswith("  tokenizer 'chars' is not used")
    assert lines[lines.index("junk 1.0: disabled") + 1] == (
        "  registered str, which is not a subclass of seqgen.Tokenizer")


# -- what a plugin returns is checked at the boundary ---------------------------------------


@pytest.fixture
def process_plugin():
    """Register plugins on the process-wide manager for one test: process_plugin(obj, name)."""
    pm, added = get_plugin_manager(), []

    def register(plugin, name):
        pm.register(plugin, name=name)
        added.append(plugin)

    yield register
    for plugin in added:
        pm.unregister(plugin)


def registered(cls, name="boundary"):
    """An instance of `cls`, registered by plugin `name` on a fresh manager."""
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(plugin_of(cls), name=name)
    return get_tokenizer(cls.name, pm)()


@pytest.mark.parametrize(("value", "said"), [
    ("ACGT", "returned str 'ACGT', not a list of str tokens"),
    ((1, 2), r"returned tuple \(1, 2\), not a list of str tokens"),
    ([1, 2], "returned a list holding int 1; tokens must be str"),
    (["a", None], "returned a list holding NoneType None; tokens must be str"),
])
def test_read_file_must_return_a_list_of_str(tmp_path, value, said):
    tok = registered(tokenizer_class("wrong", read_file=lambda self, path: value))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(PluginError, match=rf"^plugin 'boundary' \(test_plugins.WrongTokenizer.read_file\) {said}$"):
        tok.read(tmp_path / "a.txt")
    with pytest.raises(PluginError):  # a directory corpus does not skip a plugin's bug as a bad file
        tok.read(tmp_path)


def test_unregistered_tokenizer_errors_name_the_tokenizer():
    tok = tokenizer_class("loose", parse_prime=lambda self, text: text)()
    with pytest.raises(PluginError, match=r"^tokenizer 'loose' \(test_plugins.LooseTokenizer.parse_prime\) "
                                          r"returned str 'x', not a list"):
        tok.parse_prime("x")


def test_read_file_that_cannot_decode_a_file_skips_it_as_a_corpus_error(tmp_path):
    tok = registered(tokenizer_class("naive"))  # path.read_text(): UnicodeDecodeError on bytes
    (tmp_path / "good.txt").write_text("abc")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.warns(UserWarning) as caught:
        assert tok.read(tmp_path) == [list("abc")]
    assert re.fullmatch(r"skipping .*bad.txt: not UTF-8 text \(invalid byte at offset 0\)", str(caught[0].message))


def test_read_file_that_raises_names_plugin_and_method_and_traces_on_request(tmp_path, monkeypatch, capsys):
    def read_file(self, path):
        raise ValueError("bad\nthing")

    tok = registered(tokenizer_class("raiser", read_file=read_file))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(PluginError, match=r"^plugin 'boundary' \(test_plugins.RaiserTokenizer.read_file\) "
                                          r"raised ValueError: bad thing \(set SEQGEN_TRACE_PLUGINS=1 for the "
                                          r"traceback\)$"):
        tok.read(tmp_path / "a.txt")
    monkeypatch.setenv(TRACE_ENV, "1")
    with pytest.raises(PluginError, match=r"raised ValueError: bad thing$"):
        tok.read(tmp_path / "a.txt")
    assert "Traceback" in capsys.readouterr().err


def test_read_file_pieces_are_checked(tmp_path):
    def pieces(self, path):
        yield ["a"]
        yield "b"

    tok = registered(tokenizer_class("pieces", read_file_pieces=pieces))
    it = tok.read_file_pieces(tmp_path / "big.txt")
    assert next(it) == ["a"]
    with pytest.raises(PluginError, match=r"PiecesTokenizer.read_file_pieces\) returned str 'b', not a list"):
        next(it)


@pytest.mark.parametrize(("method", "call", "value"), [
    ("parse_prime", lambda tok, tmp: tok.parse_prime("abc"), "abc"),
    ("parse_prime", lambda tok, tmp: tok.parse_prime("abc"), None),
    ("read_prime", lambda tok, tmp: tok.read_prime(tmp), iter("abc")),
    ("select_vocab", lambda tok, tmp: tok.fit([["a"]]), [1]),
])
def test_prime_and_vocab_methods_must_return_lists_of_str(tmp_path, method, call, value):
    tok = registered(tokenizer_class("primes", **{method: lambda self, arg: value}))
    with pytest.raises(PluginError, match=rf"^plugin 'boundary' \(test_plugins.PrimesTokenizer.{method}\) "
                                          r"returned "):
        call(tok, tmp_path)


@pytest.mark.parametrize(("render", "said"), [
    (lambda self, tokens: 1 / 0, "raised ZeroDivisionError: division by zero"),
    (lambda self, tokens: tokens, "returned list .*, not a str"),
    (lambda self, tokens: b"".join(t.encode() for t in tokens), "returned bytes .*, not a str"),
])
def test_render_is_checked(render, said):
    tok = registered(tokenizer_class("renders", render=render))
    with pytest.raises(PluginError, match=rf"^plugin 'boundary' \(test_plugins.RendersTokenizer.render\) {said}"):
        tok.render(["a"])


def test_write_tokens_that_raises_is_a_plugin_error(tmp_path):
    def write_tokens(self, tokens, path, **config):
        raise KeyError("oops")

    tok = registered(tokenizer_class("writes", write_tokens=write_tokens))
    tok.fit([["a"]])
    with pytest.raises(PluginError, match=r"WritesTokenizer.write_tokens\) raised KeyError: 'oops'"):
        tok.write(["a"], tmp_path / "out.txt")


def test_write_tokens_that_cannot_write_is_still_a_cannot_write_error(tmp_path):
    def write_tokens(self, tokens, path, **config):
        path.write_text("".join(tokens))

    tok = registered(tokenizer_class("writer", write_tokens=write_tokens))
    tok.fit([["a"]])
    with pytest.raises(TokenizerError, match=r"no-such-dir/out.txt: cannot write \(No such file or directory\)"):
        tok.write(["a"], tmp_path / "no-such-dir" / "out.txt")


def test_checks_keep_valid_results_and_wrap_once():
    tok = registered(tokenizer_class("valid"))
    assert tok.parse_prime("ab") == ["a", "b"] and tok.render(["a", "b"]) == "ab"

    class Sub(type(tok)):
        name = "sub"

    assert Sub.render is type(tok).render  # inherited, not wrapped twice
    assert type(tok).render.__wrapped__.__name__ == "<lambda>"


def test_training_on_a_plugin_that_reads_ints_fails_before_writing(tmp_path, cli_run, process_plugin):
    """read_file returning ints used to train a checkpoint that could never be loaded."""
    process_plugin(plugin_of(tokenizer_class("ints", read_file=lambda self, path: [1, 2, 3] * 20)), "ints-plugin")
    (tmp_path / "c.txt").write_text("anything\n")
    r = cli_run("train", tmp_path / "c.txt", "-t", "ints", "--hidden-size", "4", "--seq-length", "4",
                "--batch-size", "2", "--steps", "2", "-q", "-o", tmp_path / "m.npz")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)
    assert r.output.strip() == ("Error: plugin 'ints-plugin' (test_plugins.IntsTokenizer.read_file) "
                                "returned a list holding int 1; tokens must be str")
    assert not (tmp_path / "m.npz").exists()


def test_sampling_through_a_plugin_whose_render_raises_is_one_line(tmp_path, cli_run, process_plugin):
    from seqgen.engine.model import Model
    from seqgen.storage import checkpoint

    def render(self, tokens):
        raise ValueError("cannot render")

    cls = tokenizer_class("unrenderable", render=render)
    process_plugin(plugin_of(cls), "render-plugin")
    tok = cls()
    tok.fit([list("abc\n")])
    checkpoint.save(tmp_path / "m.npz", Model.create("rnn", len(tok.vocab), 4, seed=0), tok)
    r = cli_run("sample", "--model", tmp_path / "m.npz", "-n", "1", "--length", "5")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert r.output.strip() == ("Error: plugin 'render-plugin' (test_plugins.UnrenderableTokenizer.render) "
                                "raised ValueError: cannot render (set SEQGEN_TRACE_PLUGINS=1 for the traceback)")


# -- tracing --------------------------------------------------------------------------------


def test_trace_switch_logs_hook_calls_and_tokenizers(monkeypatch, capsys):
    monkeypatch.setenv(TRACE_ENV, "1")
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(plugin_of(tokenizer_class("traced")), name="tracer")
    get_tokenizers(pm)
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("seqgen-trace: registered plugin 'tracer' ") for line in err)
    assert "seqgen-trace: call register_tokenizers in plugin(s) 'tracer' [hook]" in err
    assert "seqgen-trace: finish register_tokenizers --> [] [hook]" in err
    assert ("seqgen-trace: registered tokenizer 'traced' (test_plugins.TracedTokenizer) from plugin "
            "'tracer' [seqgen]") in err


def test_without_the_trace_switch_nothing_is_logged(monkeypatch, capsys):
    monkeypatch.delenv(TRACE_ENV, raising=False)
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(plugin_of(tokenizer_class("quiet")), name="quiet")
    get_tokenizers(pm)
    assert capsys.readouterr().err == ""


def test_trace_switch_reaches_the_command_line(monkeypatch, cli_run):
    monkeypatch.setenv(TRACE_ENV, "1")
    r = cli_run("plugins")
    assert r.exit_code == 0
    assert "seqgen-trace: registered tokenizer 'midi' (seqgen_plugins.midi.MidiTokenizer) from plugin 'midi' " \
           "[seqgen]" in r.stderr.splitlines()


def test_unknown_tokenizer_lists_known_ones():
    with pytest.raises(PluginError, match=r"unknown tokenizer 'nope' \(known: chars, conll, labelled, midi, words\)$"):
        get_tokenizer("nope", make_plugin_manager(only_builtin=True))


def test_tokenizer_from_dict_round_trips_through_json():
    tok = get_tokenizer("chars")(lower=True)
    tok.fit([list("hello\nworld\n")])
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert type(again) is type(tok)
    assert again.config == tok.config and again.vocab == tok.vocab


def test_tokenizer_from_dict_unknown_says_what_to_install():
    d = {"name": "fasta", "module": "seqgen_fasta", "options": {}, "vocab": ["A"]}
    with pytest.raises(PluginError, match=r"'fasta' \(module seqgen_fasta\) is not installed; install"):
        tokenizer_from_dict(d, make_plugin_manager(only_builtin=True))


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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           PLUGINS_ENV: "all"}
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


def test_documented_messages_are_the_ones_seqgen_prints(tmp_path):
    """docs/plugins.md's table of mistakes quotes seqgen's messages exactly."""
    docs = DOCS.read_text()

    class MyTokenizer(Tokenizer):
        name = "chars"  # taken by the built-in plugin

        def read_file(self, path):
            return []

        def render(self, tokens):
            return ""

    class Plugin:
        @hookimpl
        def register_tokenizer(self, register):
            pass

        @hookimpl
        def register_tokenizers(self, register):
            register(MyTokenizer)
            return [MyTokenizer]

    pm = make_plugin_manager(only_builtin=True)
    with pytest.warns(UserWarning) as caught:
        pm.register(Plugin(), name="PLUGIN")
        get_tokenizers(pm)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    for message in messages:
        assert f"`warning: {message}`" in docs

    def tok_with(method, fn):
        cls = type("Class", (Tokenizer,), {"__module__": "module", "name": "x", "read_file": lambda s, p: [],
                                           "render": lambda s, t: "", method: fn})
        cls._seqgen_plugin = "PLUGIN"
        return cls()

    def raises(self, tokens):
        raise ValueError("bad token")

    for call in (lambda: tok_with("read_file", lambda s, p: ">a\nACGT\n").read_file(tmp_path),
                 lambda: tok_with("read_file", lambda s, p: [1, 2]).read_file(tmp_path),
                 lambda: tok_with("parse_prime", lambda s, t: t).parse_prime("AC"),
                 lambda: tok_with("render", raises).render(["A"]),
                 lambda: tok_with("render", lambda s, t: b"A").render(["A"])):
        with pytest.raises(PluginError) as e:
            call()
        assert f"`Error: {e.value}`" in docs


def test_prime_write_options_must_return_known_write_options(tmp_path):
    from seqgen import Tokenizer
    from seqgen.errors import PluginError

    class Odd(Tokenizer):
        name = "odd-prime-options"

        def read_file(self, path):
            return ["a"]

        def render(self, tokens):
            return "".join(tokens)

        def prime_write_options(self, path):
            return {"colour": "blue"}

    with pytest.raises(PluginError, match="prime_write_options"):
        Odd().prime_write_options(tmp_path / "x.mid")
