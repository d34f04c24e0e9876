"""Output paths: checked writable before work starts, locked against a second writer, and
cleaned of the temporary files an earlier crash left behind.

Temporary files are ``.NAME.XXXXXXXX.tmp`` next to ``NAME`` (``write_atomically``); the lock is
``.NAME.lock``, an ``flock`` held for as long as one run writes ``NAME``.
"""

import contextlib
import os
import re
import stat
import tempfile
import threading
from pathlib import Path

from seqgen.errors import SeqgenError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the lock is a no-op there
    fcntl = None

_held = set()  # resolved output paths whose lock this process holds
_held_guard = threading.Lock()


class OutputError(SeqgenError):
    """An output path cannot be written (missing folder, read-only, special file, locked)."""


def temp_pattern(path):
    """The regular expression of ``write_atomically``'s temporary files for ``path``."""
    # tempfile.mkstemp: prefix + 8 characters of [a-z0-9_] + suffix
    return re.compile(rf"\.{re.escape(Path(path).name)}\.[a-z0-9_]{{8}}\.tmp")


def check_writable(path):
    """Raise OutputError (one line) unless a file can be written at ``path`` by replacing it:
    the path is not empty, its folder exists and accepts new files, and it is not a folder or a
    special file (FIFO, device). Returns the path. Call it before work that ends in a write."""
    if path is None or not str(path).strip():
        raise OutputError("the output path is empty; give a file name")
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # a parent is a file: reported below
    except OSError as e:
        raise OutputError(f"{path}: cannot use as output ({e.strerror or e})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: is a folder; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{path}: not a regular file (a device, FIFO or socket); give a file name")
    parent = path.parent
    if not parent.exists():
        raise OutputError(f"{path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"{path}: {parent} is not a folder")
    try:  # the honest test: create a file where write_atomically will (root ignores mode bits)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise OutputError(f"{path}: cannot write in folder {parent} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def lock_path(path):
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def output_lock(path):
    """Hold ``path`` for one writer: ``with output_lock("model.npz"): train...``. A second holder,
    in this process or another, gets OutputError at once (one line naming the holder's pid).
    The lock dies with its process, so a killed run never leaves the path locked."""
    path = Path(path)
    key = _key(path)
    if fcntl is None:
        yield path
        return
    fd = _acquire(path)
    with _held_guard:
        _held.add(key)
    try:
        yield path
    finally:
        with _held_guard:
            _held.discard(key)
        with contextlib.suppress(OSError):
            os.unlink(lock_path(path))  # while still locked, so no one else is using this file
        os.close(fd)


def _acquire(path):
    lock = lock_path(path)
    for _ in range(10):  # retried only if another holder removed the file as we opened it
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the lock file {lock} ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise OutputError(f"{path}: another seqgen run{who} is writing this output; "
                              f"wait for it or choose another output") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)
    raise OutputError(f"{path}: cannot take the lock {lock}")


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None


def _key(path):
    return os.path.realpath(path)


def remove_stale_temps(path):
    """Delete the temporary files of ``path`` left by a crashed or killed writer: only regular
    files named exactly like ``write_atomically``'s temporaries for ``path``, and only while this
    process holds ``output_lock(path)`` (taken here if it is not held already). Returns the
    removed paths."""
    path = Path(path)
    if fcntl is not None and _key(path) not in _held:
        with output_lock(path):
            return remove_stale_temps(path)
    pattern = temp_pattern(path)
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
