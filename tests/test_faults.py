"""Hard faults around checkpoints: kill -9 mid-training, full and read-only disks, unwritable
output paths, stale temporary files and two writers of one output."""

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from seqgen.storage import checkpoint
from seqgen.storage.outputs import OutputError, check_writable, output_lock, remove_stale_temps, temp_pattern

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ output paths

def test_check_writable_accepts_a_new_or_existing_file_and_leaves_nothing(tmp_path):
    assert check_writable(tmp_path / "m.npz") == tmp_path / "m.npz"
    (tmp_path / "old.npz").write_bytes(b"x")
    check_writable(tmp_path / "old.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npz"]


@pytest.mark.parametrize("make, message", [
    (lambda d: "", "the output path is empty; give a file name"),
    (lambda d: "   ", "the output path is empty"),
    (lambda d: d, "is a folder; give a file name"),
    (lambda d: d / "missing" / "m.npz", "missing/m.npz: folder {d}/missing does not exist"),
    (lambda d: (d / "file").write_text("x") and d / "file" / "m.npz", "file/m.npz: {d}/file is not a folder"),
    (lambda d: os.mkfifo(d / "fifo") or d / "fifo", "fifo: not a regular file (a device, FIFO or socket)"),
    (lambda d: Path("/dev/full"), "/dev/full: not a regular file"),
    (lambda d: d / ("x" * 300), "cannot use as output (File name too long)"),
    (lambda d: d / ("x" * 250), "cannot write in folder {d} (File name too long)"),  # its temporary's name is
])
def test_check_writable_refuses_bad_outputs_in_one_line(tmp_path, make, message):
    with pytest.raises(OutputError) as e:
        check_writable(make(tmp_path))
    assert message.format(d=tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_check_writable_refuses_a_read_only_folder(tmp_path, monkeypatch):
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OutputError, match=r"m.npz: cannot write in folder .* \(Read-only file system\)"):
        check_writable(tmp_path / "m.npz")


# ------------------------------------------------------------------ lock

HOLD_LOCK = "import sys, time; from seqgen.storage.outputs import output_lock\n" \
            "with output_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)\n"


def test_a_second_writer_of_the_same_output_is_refused_until_the_first_dies(tmp_path):
    out = tmp_path / "m.npz"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=rf"m.npz: another seqgen run \(pid {holder.pid}\) is writing this"):
            with output_lock(out):
                pass
        with output_lock(tmp_path / "other.npz"):  # other outputs in the same folder are free
            pass
    finally:
        holder.kill()  # SIGKILL: the kernel drops its lock
        holder.wait()
    with output_lock(out):
        with pytest.raises(OutputError, match="another seqgen run"):  # also within one process
            with output_lock(out):
                pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the lock file goes with the lock


def make_temps(folder):
    names = {
        ".m.npz.abcd1234.tmp": True,  # write_atomically's pattern for m.npz
        ".m.npz.k_9z0aq1.tmp": True,
        ".m.npz.ABCD1234.tmp": False,  # not mkstemp's alphabet
        ".m.npz.abc.tmp": False,
        ".m.npz.abcd1234.tmp.keep": False,
        ".m.best.npz.abcd1234.tmp": False,  # another output's (removed by its own call)
        ".xm.npz.abcd1234.tmp": False,
        "m.npz": False,
        "notes.txt": False,
    }
    for name in names:
        (folder / name).write_bytes(b"x")
    (folder / ".m.npz.dir12345.tmp").mkdir()  # not a regular file
    (folder / "target").write_text("keep me")
    (folder / ".m.npz.link1234.tmp").symlink_to(folder / "target")
    return {name for name, stale in names.items() if stale}


def test_remove_stale_temps_removes_exactly_the_temporaries_of_that_output(tmp_path):
    stale = make_temps(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    removed = remove_stale_temps(tmp_path / "m.npz")
    assert {p.name for p in removed} == stale
    assert {p.name for p in tmp_path.iterdir()} == before - stale
    assert (tmp_path / "target").read_text() == "keep me"
    assert all(temp_pattern(tmp_path / "m.npz").fullmatch(name) for name in stale)


def test_remove_stale_temps_never_touches_the_files_of_a_live_writer(tmp_path):
    stale = make_temps(tmp_path)
    out = tmp_path / "m.npz"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match="another seqgen run"):
            remove_stale_temps(out)
        assert stale <= {p.name for p in tmp_path.iterdir()}
    finally:
        holder.kill()
        holder.wait()
    with output_lock(out):  # under our own lock it cleans (no second lock taken)
        assert {p.name for p in remove_stale_temps(out)} == stale


# ------------------------------------------------------------------ a real full / read-only disk

TMPFS_SCRIPT = textwrap.dedent("""
    import os, subprocess, sys
    import numpy as np
    from seqgen import Model
    from seqgen.errors import CheckpointError
    from seqgen.storage import checkpoint
    from seqgen.storage.outputs import OutputError, check_writable
    from seqgen_plugins.chars import CharTokenizer

    d = sys.argv[1]
    path = os.path.join(d, "m.npz")
    tok = CharTokenizer()
    tok.fit([list("hello world")])
    small = Model.create("rnn", len(tok.vocab), 4)
    checkpoint.save(path, small, tok)
    before = open(path, "rb").read()
    big = Model.create("rnn", len(tok.vocab), 300)  # 360 KB of weights on a 128 KB disk
    try:
        checkpoint.save(path, big, tok)
        sys.exit("saved on a full disk")
    except CheckpointError as e:
        print(e)
    assert open(path, "rb").read() == before
    assert os.listdir(d) == ["m.npz"], os.listdir(d)
    subprocess.run(["mount", "-o", "remount,ro", d], check=True)
    try:
        checkpoint.save(path, small, tok)
        sys.exit("saved on a read-only disk")
    except CheckpointError as e:
        print(e)
    try:
        check_writable(os.path.join(d, "new.npz"))
        sys.exit("check_writable passed on a read-only disk")
    except OutputError as e:
        print(e)
    assert checkpoint.load(path).model.config == small.config
    print("ok")
""")


@pytest.mark.skipif(not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"]).returncode != 0,
                    reason="needs unprivileged user and mount namespaces (unshare -rm)")
def test_a_real_full_and_read_only_disk(tmp_path):
    """A 128 KB tmpfs in a private mount namespace: ENOSPC, then remounted read-only (EROFS)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "script.py"
    script.write_text(TMPFS_SCRIPT)
    r = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=128k tmpfs "$1" && exec "$2" "$3" "$1"',
                        "sh", str(disk), sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    full, ro, check, ok = r.stdout.strip().splitlines()
    assert full == f"{disk}/m.npz: cannot write the checkpoint (No space left on device); the previous checkpoint " \
                   f"is kept"
    assert ro == f"{disk}/m.npz: cannot write the checkpoint (Read-only file system); the previous checkpoint is kept"
    assert check == f"{disk}/new.npz: cannot write in folder {disk} (Read-only file system)"
    assert ok == "ok"


# ------------------------------------------------------------------ kill -9 during training

def train_command(corpus, out, resume=False, steps=100_000):
    if resume:
        args = ["train", "--resume", str(out), "--steps", str(steps)]
    else:
        args = ["train", str(corpus), "-O", "lower", "true", "--mode", "items", "--batch-size", "8",
                "--hidden-size", "16", "--eval-every", "1", "--steps", str(steps), "-o", str(out)]
    return [sys.executable, "-m", "seqgen", *args, "-q"]


def kill_during_training(corpus, out, rng, timeout=120):
    """Start (or resume) a training run, wait for it to be saving, SIGKILL it at a random moment.
    Returns the checkpoint's mtime before the run, to show the run did write."""
    before = out.stat().st_mtime_ns if out.exists() else None
    proc = subprocess.Popen(train_command(corpus, out, resume=before is not None), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not out.exists() or out.stat().st_mtime_ns == before:
            if proc.poll() is not None:
                raise AssertionError(f"training ended by itself: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise AssertionError("training wrote no checkpoint in time")
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.4))  # saves run every step: many kills land mid-write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def leftovers(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


def test_sigkill_at_random_moments_always_leaves_a_checkpoint_that_loads_and_resumes(tmp_path):
    from seqgen.training.trainer import best_path

    rng = random.Random(16)
    corpus = tmp_path / "dinos.txt"
    corpus.write_text("".join((ROOT / "corpora" / "dinos.txt").read_text().splitlines(keepends=True)[:200]))
    out = tmp_path / "m.npz"
    steps, stale = [], 0
    for _ in range(8):  # each run resumes the checkpoint the previous kill left
        kill_during_training(corpus, out, rng)
        ckpt = checkpoint.load(out)
        steps.append(ckpt.training["step"])
        if best_path(out).exists():
            checkpoint.load(best_path(out))
        left = leftovers(out)
        stale += len(left)
        removed = remove_stale_temps(out) + remove_stale_temps(best_path(out))
        assert sorted(p.name for p in removed) == left and leftovers(out) == []
    assert steps == sorted(steps) and steps[0] >= 1
    final = subprocess.run(train_command(corpus, out, resume=True, steps=steps[-1] + 2), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert checkpoint.load(out).training["step"] == steps[-1] + 2
