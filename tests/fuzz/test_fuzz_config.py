"""Fuzzing the --config loader: every malformed, mistyped, huge or hostile TOML file gets one
clear line and a non-zero exit, never a traceback, and nothing is trained from it.

Seeded and bounded; SEQGEN_FUZZ_CONFIGS=N runs more cases (the closing note's long run)."""

import os
import random

import pytest

from seqgen import api
from seqgen.errors import SeqgenError
from seqgen.options import TrainOptions

CASES = int(os.environ.get("SEQGEN_FUZZ_CONFIGS", "300"))

VALID = """corpus = "corpora/dinos.txt"
mode = "items"
cell = "rnn"
hidden-size = 50
layers = 1
steps = 100
lr = 0.01
clip_value = 5.0
seed = 3
output = "model.npz"

[option]
lower = true
"""

HOSTILE_VALUES = ["[1, 2]", "9223372036854775807", "-9223372036854775808", "1e309", "nan", "inf", "-inf", '""',
                  '"x"', "true", "{a = 1}", "[[1], [2]]", "1979-05-27T07:32:00Z", "0", "-1", "0.0", '"\\u0000"',
                  "[" * 60 + "]" * 60, '"' + "a" * 5000 + '"', "3.5", "{}", "[]"]
FIELDS = list(TrainOptions.model_fields) + ["option", "quiet", "colour", "hidden size", "-", "__class__"]


def mutate(rng, text):
    """One malformed variant of a config: a wrong value, a byte flip, a cut, junk, nesting."""
    kind = rng.randrange(7)
    lines = text.splitlines()
    if kind == 0:  # a field with a hostile value
        key = rng.choice(FIELDS).replace("_", rng.choice(["_", "-"]))
        return text + f'\n"{key}" = {rng.choice(HOSTILE_VALUES)}\n' if " " in key else \
            f"{key} = {rng.choice(HOSTILE_VALUES)}\n" + text
    if kind == 1:  # flip bytes
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return data.decode("utf-8", "replace")
    if kind == 2:  # truncate
        return text[: rng.randrange(len(text))]
    if kind == 3:  # junk lines
        junk = ["[[option]]", "[option", "= 3", "steps = ", "cell = rnn", "\x00", "[train]\nx = 1", "a.b.c = 1"]
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(junk))
        return "\n".join(lines)
    if kind == 4:  # deep nesting
        depth = rng.choice([50, 500, 5000])
        return f"steps = {'[' * depth}{']' * depth}\n" + text
    if kind == 5:  # a table where a value belongs, or a value where a table belongs
        return text.replace("[option]", rng.choice(["option = 3", "[option.deep]", "[cell]"]))
    return "\n".join(rng.sample(lines, len(lines)))  # shuffled: duplicate keys, values under tables


@pytest.fixture
def no_training(monkeypatch):
    """A config that parses and validates reaches api.train: stop there, so the fuzz run never
    trains, and count it."""
    reached = []

    def stop(*args, **kwargs):
        reached.append(1)
        raise SeqgenError("reached training")

    monkeypatch.setattr(api, "train", stop)
    monkeypatch.setattr(api, "resume", stop)
    return reached


def test_malformed_configs_are_one_line_never_a_traceback(cli_run, tmp_path, no_training):
    rng = random.Random(1234)
    path = tmp_path / "train.toml"
    outcomes = {"refused": 0, "accepted": 0}
    for i in range(CASES):
        text = mutate(rng, VALID)
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        r = cli_run("train", "--config", path, "-q")
        assert r.exit_code in (1, 2), (i, text[:200], r.output)
        assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit), \
            (i, text[:200], r.output)
        error_lines = [line for line in r.output.splitlines() if line.startswith("Error")]
        assert len(error_lines) == 1, (i, text[:200], r.output)
        outcomes["accepted" if "reached training" in r.output else "refused"] += 1
    assert outcomes["refused"] > CASES // 2  # the mutations really are malformed, mostly
    assert len(no_training) == outcomes["accepted"]


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "fifo", "dir", "huge"])
def test_special_files_are_refused_before_reading(cli_run, tmp_path, no_training, special):
    if special == "fifo":
        path = tmp_path / "config.fifo"
        os.mkfifo(path)
    elif special == "dir":
        path = tmp_path
    elif special == "huge":
        path = tmp_path / "huge.toml"
        path.write_text("# " + "x" * (2 << 20))
    else:
        path = special
    r = cli_run("train", "--config", path)  # a FIFO would block forever if it were opened
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert not no_training
