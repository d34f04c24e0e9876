"""Fuzzing the MIDI reader: mutated chorales, both encodings, in-process and through the CLI.

Seeded and bounded (a few seconds): whatever the bytes, reading gives tokens or a one-line
CorpusError naming the file, never another exception. benchmarks/fuzz_inputs.py runs the same
mutations over many more files and measures time and memory.
"""

import os
import random
import re
import warnings

import mutations
import pytest
from conftest import call_unblocked

from seqgen.errors import CorpusError, TokenizerError
from seqgen.plugins.host import get_tokenizer

Midi = get_tokenizer("midi")
TOKEN = {"melody": re.compile(r"(n\d+|r)_d\d+|<END>"), "poly": re.compile(r"[ph]\d+|<STEP>|<END>")}
SEEDS = [path.read_bytes() for path in mutations.seed_files(40, random.Random(16))]


def read_or_refuse(path, encoding):
    """-> tokens or the CorpusError/TokenizerError message; any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cut notes, skipped files
        try:
            docs = Midi(encoding=encoding).read(path)
        except (CorpusError, TokenizerError) as e:
            message = str(e)
            assert message.startswith(f"{path}: ") and "\n" not in message, message
            return message
    assert len(docs) == 1 and docs[0][-1] == "<END>"
    bad = [t for t in docs[0] if not TOKEN[encoding].fullmatch(t)]
    assert not bad, bad[:5]
    return docs[0]


@pytest.mark.parametrize("batch", range(4))
def test_mutated_files_give_tokens_or_a_corpus_error(tmp_path, batch):
    rng = random.Random(batch)
    outcomes = {"tokens": 0, "refused": 0}
    for i in range(100):
        raw, _ = mutations.mutate(rng.choice(SEEDS), rng)
        path = tmp_path / f"{i}.mid"
        path.write_bytes(raw)
        for encoding in ("melody", "poly"):
            result = read_or_refuse(path, encoding)
            outcomes["tokens" if isinstance(result, list) else "refused"] += 1
    assert outcomes["tokens"] > 20 and outcomes["refused"] > 20, outcomes  # both paths exercised


@pytest.mark.parametrize("mutation", mutations.BYTE_MUTATIONS + mutations.STRUCTURAL, ids=lambda op: op.__name__)
def test_each_mutation_alone(tmp_path, mutation):
    rng = random.Random(mutation.__name__)
    for i in range(25):
        path = tmp_path / f"{i}.mid"
        path.write_bytes(mutation(rng.choice(SEEDS), rng))
        for encoding in ("melody", "poly"):
            read_or_refuse(path, encoding)


def test_structural_damage_still_reads(tmp_path):
    """Huge delta-times are refused (beyond max_steps) or read; stuck notes are cut and read;
    a meta event mido rejects does not matter: the notes are read."""
    rng = random.Random(7)
    for mutation in (mutations.stuck_notes, mutations.unreleased, mutations.bad_meta):
        path = tmp_path / f"{mutation.__name__}.mid"
        for _ in range(10):
            path.write_bytes(mutation(rng.choice(SEEDS), rng))
            for encoding in ("melody", "poly"):
                tokens = read_or_refuse(path, encoding)
                assert isinstance(tokens, list) or "beyond max_steps" in tokens, tokens


def assert_one_line_error(result, path):
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {path}"), result.stderr


def test_cli_tokenize_nasty_files(cli_run, tmp_path):
    """`seqgen tokenize FILE -t midi`: exit 0 with statistics, or exit 1 with one line."""
    rng = random.Random(3)
    codes = []
    for i in range(40):
        raw, _ = mutations.mutate(rng.choice(SEEDS), rng)
        path = tmp_path / f"{i}.mid"
        path.write_bytes(raw)
        encoding = ("melody", "poly")[i % 2]
        result = cli_run("tokenize", path, "-t", "midi", "-O", "encoding", encoding)
        if result.exit_code == 0:
            assert "documents: 1" in result.stdout
        else:
            assert_one_line_error(result, path)
        codes.append(result.exit_code)
    assert codes.count(0) >= 5 and codes.count(1) >= 5, codes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_cli_tokenize_refuses_a_fifo_and_a_device(cli_run, tmp_path):
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    result = cli_run("tokenize", fifo, "-t", "midi")  # would block forever if it were opened plainly
    assert_one_line_error(result, fifo)
    assert "FIFO" in result.stderr
    result = cli_run("tokenize", "/dev/zero", "-t", "midi")
    assert_one_line_error(result, "/dev/zero")
    assert "character device" in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_cli_sample_refuses_nasty_primers(cli_run, tmp_path):
    """`seqgen sample --model chorale --prime-midi FILE`: a FIFO (blocked forever before), a
    device, a corrupt file: exit 1 and one line each."""
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(SEEDS[0][:40])
    for primer, problem in ((fifo, "FIFO"), ("/dev/zero", "character device"), (corrupt, "not a valid MIDI file")):
        result = call_unblocked(cli_run, "sample", "--model", "chorale", "--prime-midi", primer, fifo=fifo)
        assert_one_line_error(result, primer)
        assert problem in result.stderr
