"""Reading an ``.npz`` archive without trusting it.

The zip directory is checked first (names, duplicates, compression methods, declared sizes
against the file's size), then each ``.npy`` member's header (dtype, shape, order) is read and
checked against what the caller expects before a byte of its data is read or decompressed. A
member is read only up to the size its header declares, so a zip bomb is never inflated, and
nothing is unpickled. Every problem is an ``ArchiveError`` (a ``CheckpointError``) naming the
member; callers add the file name.
"""

import os
import stat
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from seqgen.errors import CheckpointError

# deflate cannot expand data by more than about 1032:1, so a member claiming more is a lie
MAX_DEFLATE_RATIO = 1032
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
MAX_MEMBERS = 4096
MAX_HEADER_BYTES = 4096  # an .npy header of a plain array is ~128 bytes
CHUNK = 1 << 20  # bytes read at a time, so a member is never held twice in memory
# what reading a member can raise when its bytes are corrupt
READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError, SyntaxError, TypeError,
               RecursionError, NotImplementedError, RuntimeError, OverflowError,
               tokenize.TokenError)  # numpy tokenizes the header before parsing it


class ArchiveError(CheckpointError):
    """The archive or one of its members is malformed (the message does not name the file)."""


def open_archive(path):
    """A ``zipfile.ZipFile`` on a regular file; ArchiveError for anything else."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ArchiveError("no such checkpoint file") from None
    except OSError as e:
        raise ArchiveError(f"cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ArchiveError("not a regular file")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ArchiveError("not a seqgen checkpoint (not an .npz archive)") from None
    except READ_ERRORS as e:
        raise ArchiveError(f"not a readable .npz archive ({type(e).__name__}: {e})") from None


def members(zf, file_size):
    """Array name -> ZipInfo of every ``NAME.npy`` member, after checking the zip directory."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"too many archive members ({len(infos)})")
    out = {}
    for info in infos:
        name = info.filename
        if not name.endswith(".npy") or info.is_dir():
            raise ArchiveError(f"unexpected archive member {name[:80]!r}")
        if name[:-4] in out:
            raise ArchiveError(f"archive member {name[:80]!r} appears twice")
        if info.compress_type not in COMPRESSIONS:
            raise ArchiveError(f"archive member {name[:80]!r} uses an unsupported compression method "
                               f"({info.compress_type})")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"archive member {name[:80]!r} is encrypted")
        if info.compress_size > file_size or info.file_size > capacity(info):
            raise ArchiveError(f"archive member {name[:80]!r} declares {info.file_size:,} bytes, more than "
                               f"the file can hold")
        out[name[:-4]] = info
    return out


def capacity(info):
    """The most bytes a member's compressed data can really hold."""
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size
    return info.compress_size * MAX_DEFLATE_RATIO + 1024


def read_array(zf, info, dtype, shape, max_bytes=None):
    """Read one ``.npy`` member whose header must declare exactly ``dtype`` and ``shape`` (a
    tuple; a ``None`` dimension may take any size, up to ``max_bytes`` of data in all). The
    header is checked before the data is read; the data goes into a fresh, writable array."""
    name = info.filename
    dtype = np.dtype(dtype)
    try:
        with zf.open(info) as f:
            version = npy.read_magic(f)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ArchiveError(f"{name}: unsupported .npy version {version}")
            reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            got_shape, fortran, got_dtype = reader(f, max_header_size=MAX_HEADER_BYTES)
            if got_dtype.hasobject or got_dtype.fields is not None or got_dtype.subdtype is not None:
                raise ArchiveError(f"{name}: refused: it holds pickled objects or a structured dtype "
                                   f"({' '.join(str(got_dtype).split())[:80]}), which seqgen never loads")
            if got_dtype != dtype:
                raise ArchiveError(f"{name}: dtype {got_dtype.str}, expected {dtype.str}")
            if len(got_shape) != len(shape) or any(s is not None and g != s for g, s in zip(got_shape, shape)):
                want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "")
                raise ArchiveError(f"{name}: shape {tuple(got_shape)}, expected {want})")
            count = int(np.prod(got_shape, dtype=object))
            nbytes = count * dtype.itemsize
            if max_bytes is not None and nbytes > max_bytes:
                raise ArchiveError(f"{name}: {nbytes:,} bytes, more than the {max_bytes:,} allowed")
            header = f.tell()
            if header + nbytes != info.file_size:
                raise ArchiveError(f"{name}: header declares {nbytes:,} data bytes but the member holds "
                                   f"{info.file_size - header:,}")
            data = np.empty(count, dtype=dtype)
            view = memoryview(data).cast("B")
            done = 0
            while done < nbytes:  # reaching the member's end makes zipfile check its CRC
                n = f.readinto(view[done:done + CHUNK])
                if not n:
                    raise ArchiveError(f"{name}: truncated")
                done += n
    except ArchiveError:
        raise
    except READ_ERRORS as e:
        raise ArchiveError(f"{name}: unreadable ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    if fortran:
        return data.reshape(got_shape[::-1]).T
    return data.reshape(got_shape)
