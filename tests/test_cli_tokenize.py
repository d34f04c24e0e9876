
"""`seqgen plugins` and `seqgen tokenize`, including every bad input: one line, exit 1, no traceback."""

import os
import subprocess
import sys

import pytest
from conftest import build_midi


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_plugins_lists_plugins_versions_and_tokenizers(cli_run):
    result = cli_run("plugins")
    assert result.exit_code == 0
    assert {"chars 0.1.0: chars", "midi 0.1.0: midi", "words 0.1.0: words"} <= set(result.stdout.splitlines())


def test_tokenize_reports_statistics(cli_run, tmp_path):
    (tmp_path / "dinos.txt").write_text("Aa\nAb\nBa\n")
    result = cli_run("tokenize", tmp_path / "dinos.txt", "--tokenizer", "chars", "-O", "lower", "true", "--top", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "documents: 1" in lines and "tokens: 9" in lines
    assert "vocabulary: 3 (distinct in corpus: 3)" in lines
    assert "<UNK> rate: n/a (no <UNK> token)" in lines
    top = lines[lines.index("most frequent tokens (top 2):") + 1:]
    assert [line.split()[:2] for line in top] == [["'a'", "4"], ["'\\n'", "3"]]


def test_tokenize_unk_rate(cli_run, tmp_path):
    (tmp_path / "t.txt").write_text("a a a b c\n")
    result = cli_run("tokenize", tmp_path / "t.txt", "-t", "words", "-O", "max_vocab", "3")
    assert result.exit_code == 0, result.output
    assert "<UNK> rate: 33.33%" in result.stdout.splitlines()  # b and c of 6 tokens


def test_tokenize_midi_directory_with_some_bad_files(cli_run, tmp_path):
    build_midi(tmp_path / "a.mid", [[(60, 0, 480, 0), (62, 480, 960, 0)]])
    (tmp_path / "b.mid").write_bytes(b"MThd\x00\x00")
    result = cli_run("tokenize", tmp_path, "-t", "midi", "-O", "encoding", "poly")
    assert result.exit_code == 0, result.output
    assert "documents: 1" in result.stdout
    assert f"warning: skipping {tmp_path / 'b.mid'}: not a valid MIDI file (truncated)" in result.stderr
    assert f"warning: {tmp_path}: skipped 1 of 2 files" in result.stderr


def bad_midi(tmp_path):
    build_midi(tmp_path / "ok.mid", [[(60, 0, 480, 0)]])
    return (tmp_path / "ok.mid").read_bytes()


@pytest.mark.parametrize("name, content, tokenizer, problem", [
    ("cut.mid", lambda tmp: bad_midi(tmp)[:25], "midi", "not a valid MIDI file (truncated"),
    ("junk.mid", lambda tmp: b"\x00\xff" * 40, "midi", "not a valid MIDI file (MThd not found"),
    ("silent.mid", lambda tmp: build_midi(tmp / "s.mid", [[]]).read_bytes(), "midi", "no notes"),
    ("empty.txt", lambda tmp: b"", "chars", "empty"),
    ("blank.txt", lambda tmp: b"\n \n", "words", "empty"),
    ("song.mid", lambda tmp: bad_midi(tmp), "chars", "binary file"),
    ("latin1.txt", lambda tmp: "café".encode("latin-1"), "words", "not UTF-8 text"),
])
def test_bad_corpus_file(cli_run, tmp_path, name, content, tokenizer, problem):
    path = tmp_path / "corpus" / name
    path.parent.mkdir()
    path.write_bytes(content(tmp_path))
    result = cli_run("tokenize", path, "-t", tokenizer)
    assert_one_line_error(result, f"Error: {path}: {problem}")


def test_directory_with_no_usable_file(cli_run, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\x00")
    (tmp_path / "b.txt").write_text("   ")
    result = cli_run("tokenize", tmp_path, "-t", "chars")
    assert_one_line_error(result, f"{tmp_path}: no usable files (2 skipped)")
    assert result.stderr.count("warning: skipping") == 2


def test_empty_directory(cli_run, tmp_path):
    assert_one_line_error(cli_run("tokenize", tmp_path, "-t", "midi"), "directory has no .mid or .midi files")


def test_unknown_tokenizer_lists_known_ones(cli_run, tmp_path):
    (tmp_path / "t.txt").write_text("x")
    assert_one_line_error(cli_run("tokenize", tmp_path / "t.txt", "-t", "bytes"),
                          "unknown tokenizer 'bytes' (known: chars, conll, labelled, midi, words)")


@pytest.mark.parametrize("key, value, problem", [
    ("colour", "red", "unknown option(s) colour (valid: lower, separator, unk)"),
    ("lower", "perhaps", "option 'lower' must be true or false"),
])
def test_bad_tokenizer_option(cli_run, tmp_path, key, value, problem):
    (tmp_path / "t.txt").write_text("x")
    assert_one_line_error(cli_run("tokenize", tmp_path / "t.txt", "-t", "chars", "-O", key, value), problem)


def test_missing_corpus_is_a_usage_error(cli_run, tmp_path):
    result = cli_run("tokenize", tmp_path / "nope.txt", "-t", "chars")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_commands_do_not_import_numba(tmp_path):
    (tmp_path / "t.txt").write_text("hello\n")
    code = (
        "import sys\n"
        "from seqgen.cli import cli\n"
        "for args in (['plugins'], ['tokenize', sys.argv[1], '-t', 'words']):\n"
        "    cli(args, standalone_mode=False)\n"
        "assert 'numba' not in sys.modules, 'numba was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.txt")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "tokens: 2" in result.stdout


def test_threads_before_or_after_the_command_caps_blas_even_after_numpy_loaded(tmp_path):
    """It used to set OPENBLAS_NUM_THREADS, which does nothing once numpy is loaded, and only
    as a group option (`seqgen sample --threads 1` was refused)."""
    code = (
        "import sys\n"
        "import numpy, scipy.linalg.cython_blas\n"
        "from threadpoolctl import threadpool_info\n"
        "from seqgen.cli import cli\n"
        "for argv in (['--threads', '1', 'models'], ['models', '--threads', '1']):\n"
        "    sys.argv = ['seqgen', *argv]\n"
        "    try:\n        cli()\n    except SystemExit as e:\n        assert not e.code, e.code\n"
        "    blas = [p for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "    assert blas and all(p['num_threads'] == 1 for p in blas), blas\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SEQGEN_THREADS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
