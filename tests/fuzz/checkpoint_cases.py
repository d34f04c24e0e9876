"""Malformed checkpoints for fuzzing: seeded mutations of real checkpoint files.

``mutate(rng, base)`` -> (kind, bytes of a damaged .npz). ``Base.of(path)`` reads a real checkpoint
once. Shared by tests/fuzz/test_fuzz_checkpoint.py and benchmarks/fuzz_checkpoints.py.
"""

import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np


@dataclass
class Base:
    name: str
    data: bytes
    meta: dict
    arrays: dict

    @classmethod
    def of(cls, path):
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("meta").tobytes())
        return cls(str(path), open(path, "rb").read(), meta, arrays)


HOSTILE = [None, 0, -1, 1, 10**20, -(10**20), 2**64, 2**128, 1e308, float("nan"), float("inf"), 0.5, True, "",
           "x", "a" * 5000, [], {}, [1, "a", None], {"a": {"b": {"c": 1}}}, [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]],
           "../../etc/passwd", "\x00", list(range(200))]


def _npz(meta, arrays, compressed=False):
    buf = io.BytesIO()
    content = dict(arrays)
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode("utf-8", "surrogatepass")
    content["meta"] = np.frombuffer(raw, dtype=np.uint8)
    (np.savez_compressed if compressed else np.savez)(buf, **content)
    return buf.getvalue()


def _paths(value, prefix=()):
    """Every (path) into nested dicts/lists of the metadata."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from _paths(v, prefix + (i,))


def _copy(meta):
    return json.loads(json.dumps(meta))


def _set(meta, path, value, delete=False):
    target = meta
    for p in path[:-1]:
        target = target[p]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value


def _rezip(data, replace=None, add=None, drop=(), compression=zipfile.ZIP_STORED):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            if info.filename not in drop:
                zout.writestr(info.filename, (replace or {}).get(info.filename, zin.read(info.filename)), compression)
        for name, body in (add or {}).items():
            zout.writestr(name, body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _npy_header(descr, shape, fortran=False, version=1, data=b"", raw=None):
    text = (raw if raw is not None else
            f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}").encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    length = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + length + text + data


# ------------------------------------------------------------------ mutators: (rng, base) -> bytes

def bit_flips(rng, b):
    data = bytearray(b.data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncation(rng, b):
    return b.data[: rng.randrange(len(b.data))]


def garbage_splice(rng, b):
    data = bytearray(b.data)
    i = rng.randrange(len(data))
    n = rng.randint(1, 64)
    data[i:i + n] = bytes(rng.randrange(256) for _ in range(n))
    return bytes(data)


def zip_header_fields(rng, b):
    """Corrupt a size, offset, count or method field of a local/central/end record."""
    data = bytearray(b.data)
    sig, fields = rng.choice([(b"PK\x03\x04", [(8, "H"), (18, "I"), (22, "I"), (26, "H")]),
                              (b"PK\x01\x02", [(10, "H"), (20, "I"), (24, "I"), (28, "H"), (42, "I")]),
                              (b"PK\x05\x06", [(8, "H"), (10, "H"), (12, "I"), (16, "I")])])
    hits, i = [], data.find(sig)
    while i >= 0 and len(hits) < 64:
        hits.append(i)
        i = data.find(sig, i + 4)
    if not hits:
        return bytes(data)
    i = rng.choice(hits)
    offset, fmt = rng.choice(fields)
    big = 0xFFFF if fmt == "H" else 0xFFFFFFFF
    value = rng.choice([0, 1, big, big - 1, rng.randrange(big), 99, 12, 14])
    data[i + offset:i + offset + struct.calcsize(fmt)] = struct.pack("<" + fmt, value)
    return bytes(data)


def meta_field(rng, b):
    meta = _copy(b.meta)
    path = rng.choice([p for p in _paths(meta) if p])
    _set(meta, path, rng.choice(HOSTILE))
    return _npz(meta, b.arrays)


def meta_delete(rng, b):
    meta = _copy(b.meta)
    path = rng.choice([p for p in _paths(meta) if p])
    _set(meta, path, None, delete=True)
    return _npz(meta, b.arrays)


def meta_model_size(rng, b):
    meta = _copy(b.meta)
    field = rng.choice(["num_layers", "hidden_size", "vocab_size"])
    meta["model"][field] = rng.choice([10**20, 2**31, 2**16, 4096, 255, 3, 0, -5])
    return _npz(meta, b.arrays)


def meta_text(rng, b):
    text = json.dumps(b.meta).encode()
    raw = rng.choice([
        text[: rng.randrange(len(text))],
        b"[" * 100_000 + b"]" * 100_000,
        text[:-1] + b', "x": ' + b"{\"a\": " * 5000 + b"1" + b"}" * 5000 + b"}",
        text[:-1] + b', "n": 1' + b"0" * 100_000 + b"}",
        b"\xff\xfe\x00garbage",
        b"null",
        b'"seqgen-checkpoint"',
        text.replace(b'"format_version": 1', b'"format_version": 1e400'),
        b"",
    ])
    return _npz(raw, b.arrays)


def npy_header(rng, b):
    names = [f"{k}.npy" for k in b.arrays] + ["meta.npy"]
    member = rng.choice(names)
    header = rng.choice([
        _npy_header("<f4", (10**10,)),
        _npy_header("<f8", (2**40, 2**40)),
        _npy_header("|O", (3,)),
        _npy_header([("a", "<f4"), ("b", "<i8")], (3,)),
        _npy_header("<f4", (3,), data=b"\0" * 5),
        _npy_header(">f4", (3,)),
        _npy_header("<f2", (3,)),
        _npy_header("|u1", (-1,)),
        _npy_header("<f4", (3, 4), fortran=True, data=b"\0" * 48),
        _npy_header("<f4", (3,), version=2),
        _npy_header("<f4", (3,), version=9),
        _npy_header(None, None, raw="{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 300 + ")" * 300
                    + "}"),
        _npy_header(None, None, raw="__import__('os').system('echo pwned')"),
        _npy_header(None, None, raw="{'descr': 'V1000000000000', 'fortran_order': False, 'shape': (1,), }"),
        b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 100,
        b"not an npy member at all",
    ])
    return _rezip(b.data, replace={member: header})


def bad_arrays(rng, b):
    arrays = dict(b.arrays)
    name = rng.choice(list(arrays))
    value = arrays[name]
    arrays[name] = rng.choice([
        value.astype(np.float64) if value.dtype == np.float32 else value.astype(np.float32),
        value.astype(">f4"),
        np.zeros(value.shape, dtype=[("a", "<f4")]),
        np.zeros(value.size + 1, value.dtype),
        np.asfortranarray(np.zeros(value.shape[::-1], value.dtype)) if value.ndim == 2 else np.zeros((), value.dtype),
        np.full(value.shape, np.inf, value.dtype),
        np.full(value.shape, np.nan, value.dtype),
        np.array([{"x": 1}], dtype=object),
    ])
    if rng.random() < 0.3:
        del arrays[rng.choice(list(arrays))]
    if rng.random() < 0.3:
        arrays[rng.choice(["extra", "optim/m9/by", "train/other", "param/../../x"])] = np.zeros(3, np.float32)
    return _npz(b.meta, arrays, compressed=rng.random() < 0.2)


_BOMB = {}
BOMB_MB = (50, 200)  # inflated sizes of the zip bombs


def _bomb(size):
    """(crc, raw deflate stream) of an .npy of ``size`` zero bytes, compressed once."""
    if size not in _BOMB:
        buf = io.BytesIO()
        np.save(buf, np.zeros(size, np.uint8))
        npy = buf.getvalue()
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        _BOMB[size] = (zlib.crc32(npy), len(npy), c.compress(npy) + c.flush())
    return _BOMB[size]


def _build_zip(entries):
    """A zip from (name, method, crc, size, compressed bytes) entries, written by hand so that
    precompressed data can be used."""
    out, central = bytearray(), bytearray()
    for name, method, crc, size, data in entries:
        n = name.encode()
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data), size,
                               len(n), 0, 0, 0, 0, 0, len(out)) + n
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size, len(n), 0) + n + data
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + end)


def zip_bomb(rng, b):
    """~100 KB archives with a member that inflates to ``BOMB_MB`` megabytes."""
    crc, size, stream = _bomb(rng.choice(BOMB_MB) << 20)
    with zipfile.ZipFile(io.BytesIO(b.data)) as z:
        entries = [(i.filename, 0, zlib.crc32(body), len(body), body)
                   for i in z.infolist() for body in [z.read(i)]]
    where = rng.choice(["extra", "param", "meta"])
    if where == "extra":
        entries.append((rng.choice(["junk.npy", "bomb.npy", "param/zzz.npy"]), 8, crc, size, stream))
    else:
        member = "meta.npy" if where == "meta" else f"{rng.choice(list(b.arrays))}.npy"
        entries = [(name, 8, crc, size, stream) if name == member else e for e in entries for name in [e[0]]]
    return _build_zip(entries)


def zip_structure(rng, b):
    kind = rng.randrange(5)
    if kind == 0:  # compression method nobody supports, or one seqgen refuses
        data = bytearray(b.data)
        method = rng.choice([1, 6, 12, 14, 93, 99, 0xFFFF])
        for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
            i = data.find(sig)
            while i >= 0:
                data[i + offset:i + offset + 2] = struct.pack("<H", method)
                i = data.find(sig, i + 4)
        return bytes(data)
    if kind == 1:  # a member twice
        name = rng.choice([f"{k}.npy" for k in b.arrays] + ["meta.npy"])
        with zipfile.ZipFile(io.BytesIO(b.data)) as z:
            body = z.read(name)
        out = io.BytesIO(b.data)
        import warnings

        with warnings.catch_warnings(), zipfile.ZipFile(out, "a") as z:
            warnings.simplefilter("ignore")
            z.writestr(name, body)
        return out.getvalue()
    if kind == 2:  # a member missing
        return _rezip(b.data, drop={rng.choice([f"{k}.npy" for k in b.arrays] + ["meta.npy"])})
    if kind == 3:  # a member that is not .npy, or a folder
        return _rezip(b.data, add={rng.choice(["readme.txt", "dir/", "meta", "param/by"]): b"hello"})
    # an encrypted-flag member
    data = bytearray(b.data)
    i = data.find(b"PK\x01\x02")
    data[i + 8] |= 1
    return bytes(data)


MUTATORS = [bit_flips, truncation, garbage_splice, zip_header_fields, meta_field, meta_field, meta_delete,
            meta_model_size, meta_text, npy_header, npy_header, bad_arrays, bad_arrays, zip_structure, zip_bomb]


def mutate(rng, base, exclude=()):
    """(mutator name, damaged bytes) from a random mutator applied to ``base``."""
    mutator = rng.choice([m for m in MUTATORS if m.__name__ not in exclude])
    return mutator.__name__, mutator(rng, base)
