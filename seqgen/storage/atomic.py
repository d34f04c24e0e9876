"""Write a file so that readers see the old version or the new one, never half of one."""

import os
import tempfile
from pathlib import Path


def write_atomically(path, write):
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, flush it to disk, then rename
    it over ``path``. On any failure (or Ctrl-C) the temporary file is removed and ``path`` is
    untouched. The new file gets the usual permissions (0666 less the umask)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
