import errno
import json
import os
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from seqgen import CheckpointError, Model
from seqgen.plugins.host import make_plugin_manager
from seqgen.storage import checkpoint
from seqgen.storage.schema import MAX_META_BYTES
from seqgen_plugins.chars import CharTokenizer

TEXT = "hello world\nhow low\nyellow howl\n" * 4


def train_checkpoint(path, cell="gru", layers=2, optimizer="adam", steps=3):
    """A real training checkpoint, written by the Trainer (so its metadata is what training writes)."""
    from seqgen.options import TrainOptions
    from seqgen.training.data import make_windows
    from seqgen.training.trainer import Trainer

    tok = CharTokenizer()
    tok.fit([list(TEXT)])
    ids = np.asarray(tok.encode(list(TEXT)), dtype=np.int32)
    model = Model.create(cell, len(tok.vocab), 6, layers, seed=1)
    trainer = Trainer(model, tok, make_windows("stream", ids, None, 2, 8), None,
                      TrainOptions(steps=steps, optimizer=optimizer, eval_every=steps, batch_size=2, seq_length=8,
                                   output=path))
    trainer.run()
    return model, tok, trainer


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.npz"
    model, tok, trainer = train_checkpoint(path)
    return path, model, tok


def contents(path):
    """(meta dict, arrays dict) read with numpy directly, to build damaged variants."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return json.loads(arrays.pop("meta").tobytes()), arrays


def write_npz(path, meta, arrays):
    np.savez(path, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return path


def set_field(meta, dotted, value):
    *parents, last = dotted.split(".")
    target = meta
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if value is DELETE:
        del target[last]
    else:
        target[int(last) if isinstance(target, list) else last] = value


DELETE = object()


def test_round_trip_keeps_everything(saved):
    path, model, tok = saved
    ckpt = checkpoint.load(path)
    assert ckpt.model.config == model.config
    for name in model.params:
        np.testing.assert_array_equal(ckpt.model.params[name], model.params[name])
    assert ckpt.tokenizer.vocab == tok.vocab
    assert ckpt.training["step"] == 3 and ckpt.training["optimizer"]["name"] == "adam"
    assert sorted(ckpt.arrays) == sorted([f"optim/{s}/{k}" for s in ("m1", "m2") for k in model.params]
                                         + ["train/state"])
    assert ckpt.arrays["train/state"].shape == (2, 1, 2, 6)
    for value in ckpt.arrays.values():  # loaded arrays are fresh and writable (the optimiser updates them)
        assert value.flags.writeable


@pytest.mark.parametrize("cell, optimizer", [("lstm", "sgd"), ("rnn", "rmsprop"), ("gru", "adagrad")])
def test_every_cell_and_optimizer_round_trips(tmp_path, cell, optimizer):
    path = tmp_path / "m.npz"
    model, _, trainer = train_checkpoint(path, cell, 1, optimizer)
    ckpt = checkpoint.load(path)
    assert sorted(ckpt.arrays) == sorted([f"optim/{k}" for k in trainer.optimizer.state_arrays()] + ["train/state"])


def test_shipped_and_exported_checkpoints_load(saved, cli_run, tmp_path):
    from seqgen.storage import shipped

    for name in shipped.names():
        assert checkpoint.load(shipped.path(name)).training is None
    path, _, _ = saved
    assert cli_run("export", path, tmp_path / "small.npz").exit_code == 0
    assert checkpoint.load(tmp_path / "small.npz").summary["step"] == 3


def test_checkpoint_is_a_plain_npz_without_pickles(saved):
    path, _, _ = saved
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "meta.npy" in names and all(n.endswith(".npy") for n in names)
    with np.load(path, allow_pickle=False) as npz:  # would raise on any object array
        assert all(npz[k].dtype != object for k in npz.files)


def test_a_pickled_array_is_refused(saved, tmp_path):
    path, _, _ = saved
    meta, arrays = contents(path)
    arrays["param/by"] = np.array([object()] * len(arrays["param/by"]), dtype=object)
    bad = write_npz(tmp_path / "evil.npz", meta, arrays)
    with pytest.raises(CheckpointError, match=r"evil.npz: param/by.npy: refused: it holds pickled objects") as e:
        checkpoint.load(bad)
    assert "unsafely" not in str(e.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "no_meta", "wrong_shape"])
def test_corrupt_checkpoints_raise_one_clear_error(saved, tmp_path, damage):
    path, _, _ = saved
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"\x00garbage" * 100)
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        with np.load(path) as npz:
            content = {k: npz[k] for k in npz.files}
        if damage == "no_meta":
            del content["meta"]
        else:
            content["param/Wya"] = np.zeros((2, 2), np.float32)
        np.savez(bad, **content)
    with pytest.raises(CheckpointError, match="bad.npz"):
        checkpoint.load(bad)


# field, value, what the one-line error must say
BAD_FIELDS = [
    ("tokenizer", None, "tokenizer: Input should be a valid dictionary"),
    ("tokenizer", 3, "tokenizer: Input should be a valid dictionary"),
    ("tokenizer.vocab", "abc", "tokenizer.vocab: Input should be a valid list"),
    ("tokenizer.vocab.3", 7, "tokenizer.vocab.3: Input should be a valid string"),
    ("tokenizer.options", [1], "tokenizer.options: Input should be a valid dictionary"),
    ("tokenizer.options.lower", {"a": 1}, "tokenizer.options.lower"),
    ("tokenizer.name", DELETE, "tokenizer.name: Field required"),
    ("training", 3, "training: Input should be a valid dictionary"),
    ("training.step", "3", "training.step: Input should be a valid integer"),
    ("training.step", -1, "training.step: Input should be greater than or equal to 0"),
    ("training.step", 3.0, "training.step: Input should be a valid integer"),
    ("training.step", True, "training.step: Input should be a valid integer"),
    ("training.cursor", 10**30, "training.cursor: Input should be less than or equal to"),
    ("training.rng", None, "training.rng: Input should be a valid dictionary"),
    ("training.rng.state.state", 2**200, "training.rng.state.state: Input should be less than"),
    ("training.rng.bit_generator", "MT19937", "training.rng.bit_generator: Input should be 'PCG64'"),
    ("training.history", [1], "training.history.0: Input should be a valid dictionary"),
    ("training.history", {"a": 1}, "training.history: Input should be a valid list"),
    ("training.history.0.train_loss", "low", "training.history.0.train_loss: Input should be a valid number"),
    ("training.history.0.extra", [1, 2], "training.history.0.extra"),
    ("training.optimizer", None, "training.optimizer: Input should be a valid dictionary"),
    ("training.optimizer.name", "lbfgs", "training.optimizer.name: unknown optimizer 'lbfgs'"),
    ("training.optimizer.lr", -1.0, "training.optimizer.lr: Input should be greater than 0"),
    ("training.options", None, "training.options: Input should be a valid dictionary"),
    ("training.options.batch_size", 10**12, "training.options.batch_size: Input should be less than"),
    ("training.options.mode", "both", "training.options.mode: Input should be 'stream' or 'items'"),
    ("training.options.optimizer", "sgd", "training.options.optimizer 'sgd' does not match"),
    ("training.options.seed", -1, "training.options.seed: Input should be greater than or equal to 0"),
    ("training.best_valid", "inf", "training.best_valid: Input should be a valid number"),
    ("training.corpus", 5, "training.corpus: Input should be a valid string"),
    ("training.surprise", {"deep": 1}, "training.surprise"),
    ("model", None, "model: Input should be a valid dictionary"),
    ("model.num_layers", 10**20, "model.num_layers: Input should be less than or equal to 256"),
    ("model.hidden_size", 0, "model.hidden_size: Input should be greater than or equal to 1"),
    ("model.hidden_size", 65536, "model: gru 2x65536 over 10 tokens implies 463,894,216,824 bytes of arrays, but "
                                 "the file holds at most"),
    ("model.vocab_size", 11, "tokenizer.vocab: 10 tokens, but model.vocab_size is 11"),
    ("model.cell", "transformer", "model: unknown cell 'transformer'"),
    ("model.dtype", "float16", "model.dtype: Input should be 'float32' or 'float64'"),
    ("summary", {"step": 1}, "summary: Value error, a summary needs step, epoch and options"),
    ("summary", [], "summary: Input should be a valid dictionary"),
    ("format_version", 2, "checkpoint format version 2 is not supported"),
    ("format", "other", "not a seqgen checkpoint"),
    ("seqgen_version", None, "seqgen_version: Input should be a valid string"),
]


@pytest.mark.parametrize("field, value, message", BAD_FIELDS, ids=[f[0] + "=" + repr(f[1])[:20] for f in BAD_FIELDS])
def test_metadata_fields_of_the_wrong_type_or_range_name_the_field(saved, tmp_path, field, value, message):
    path, _, _ = saved
    meta, arrays = contents(path)
    set_field(meta, field, value)
    bad = write_npz(tmp_path / "bad.npz", meta, arrays)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(bad)
    text = str(e.value)
    assert text.startswith(f"{bad}: ") and message in text and "\n" not in text


def test_deeply_nested_metadata_is_refused(saved, tmp_path):
    meta, arrays = contents(saved[0])
    raw = json.dumps(meta)
    nested = raw[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    np.savez(tmp_path / "deep.npz", meta=np.frombuffer(nested.encode(), dtype=np.uint8), **arrays)
    with pytest.raises(CheckpointError, match="deep.npz: metadata is not JSON .RecursionError"):
        checkpoint.load(tmp_path / "deep.npz")
    meta["training"]["options"]["x"] = [[[[[[[[[[1]]]]]]]]]]
    write_npz(tmp_path / "deep2.npz", meta, arrays)
    with pytest.raises(CheckpointError, match=r"deep2.npz: metadata field training.options.x(\.0)+ is nested too"):
        checkpoint.load(tmp_path / "deep2.npz")


@pytest.mark.parametrize("text, message", [
    (b'{"format": "seqgen-checkpoint", "format_version": 1, "n": 1' + b"0" * 5000 + b"}", "metadata is not JSON"),
    (b"\xff\xfe", "metadata is not JSON .UnicodeDecodeError"),
    (b"[1, 2]", "not a seqgen checkpoint"),
    (b'{"format": "seqgen-checkpoint", "format_version": true}', "checkpoint format version True is not supported"),
])
def test_metadata_that_is_not_the_expected_json(saved, tmp_path, text, message):
    _, arrays = contents(saved[0])
    np.savez(tmp_path / "bad.npz", meta=np.frombuffer(text, dtype=np.uint8), **arrays)
    with pytest.raises(CheckpointError, match=f"bad.npz: {message}"):
        checkpoint.load(tmp_path / "bad.npz")


def npy_bytes(array=None, header=None, data=b""):
    """An .npy member: a real array's bytes, or a hand-written header dict (as text) and data."""
    import io

    if array is not None:
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        return buf.getvalue()
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def rezip(src, dst, replace=None, add=None, drop=(), compression=zipfile.ZIP_STORED):
    """Copy an npz member by member, replacing/adding raw member bytes by name."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)), compression)
        for name, data in add.items():
            zout.writestr(name, data, zipfile.ZIP_DEFLATED)
    return dst


def peak_bytes_of(call):
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("member, header, message", [
    ("param/by.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (10000000000,), }",
     r"param/by.npy: shape \(10000000000,\), expected \(10,\)"),
    ("train/state.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 100000000, 6), }",
     "train/state.npy: 4,800,000,000 bytes, more than the 96 allowed"),
    ("meta.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (10000000000,), }",
     "meta.npy: 10,000,000,000 bytes, more than the"),
    ("param/by.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (12,), }", "param/by.npy: dtype >f4"),
    ("param/by.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (12,), }",
     "param/by.npy: refused: it holds pickled objects or a structured dtype"),
    ("param/by.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), 'x': " + "(" * 150 + ")" * 150 + "}",
     "param/by.npy: unreadable"),
    ("param/by.npy", "not a dict at all", "param/by.npy: unreadable"),
    ("param/by.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }  (",
     "param/by.npy: unreadable .TokenError"),
    ("meta.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", "meta.npy: dtype <f8, expected |u1"),
])
def test_npy_headers_are_checked_before_any_data_is_read(saved, tmp_path, member, header, message):
    path, _, _ = saved
    bad = rezip(path, tmp_path / "bad.npz", replace={member: npy_bytes(header=header, data=b"\0" * 64)})
    peak = peak_bytes_of(lambda: pytest.raises(CheckpointError, checkpoint.load, bad).match(message))
    assert peak < 8 << 20


def test_meta_that_is_not_an_npy_array_is_refused(saved, tmp_path):
    path, _, _ = saved
    meta, _ = contents(path)
    bad = rezip(path, tmp_path / "bad.npz", replace={"meta.npy": json.dumps(meta).encode()})
    with pytest.raises(CheckpointError, match="bad.npz: meta.npy: unreadable"):
        checkpoint.load(bad)
    bad2 = rezip(path, tmp_path / "bad2.npz", replace={"meta.npy": npy_bytes(np.zeros((2, 2), np.uint8))})
    with pytest.raises(CheckpointError, match=r"bad2.npz: meta.npy: shape \(2, 2\), expected \(any,\)"):
        checkpoint.load(bad2)


def test_a_zip_bomb_is_never_inflated(saved, tmp_path):
    path, _, _ = saved
    bomb = np.zeros(200_000_000, np.uint8)  # 200 MB of zeros deflate to ~200 KB
    bomb_npy = npy_bytes(bomb)
    del bomb
    extra = rezip(path, tmp_path / "extra.npz", add={"junk.npy": bomb_npy})
    as_param = rezip(path, tmp_path / "param.npz", replace={"param/by.npy": bomb_npy}, compression=zipfile.ZIP_DEFLATED)
    as_meta = rezip(path, tmp_path / "meta.npz", replace={"meta.npy": bomb_npy}, compression=zipfile.ZIP_DEFLATED)
    del bomb_npy
    for bad, message in [(extra, "unexpected array 'junk'"), (as_param, "param/by.npy: dtype |u1, expected <f4"),
                         (as_meta, "meta.npy: 200,000,000 bytes, more than")]:
        assert bad.stat().st_size < 2 << 20
        peak = peak_bytes_of(lambda b=bad, m=message: pytest.raises(CheckpointError, checkpoint.load, b).match(m))
        assert peak < 8 << 20, (bad.name, peak)


def test_members_outside_the_schema_are_refused(saved, tmp_path):
    path, _, _ = saved
    meta, arrays = contents(path)
    for name, value, message in [("optim/m3/by", arrays["param/by"], "unexpected array 'optim/m3/by'"),
                                 ("notes", np.zeros(3), "unexpected array 'notes'")]:
        bad = write_npz(tmp_path / "bad.npz", meta, {**arrays, name: value})
        with pytest.raises(CheckpointError, match=message):
            checkpoint.load(bad)
    del arrays["optim/m2/by"]
    with pytest.raises(CheckpointError, match="missing array 'optim/m2/by'"):
        checkpoint.load(write_npz(tmp_path / "bad.npz", meta, arrays))
    bad = rezip(path, tmp_path / "txt.npz", add={"readme.txt": b"hi"})
    with pytest.raises(CheckpointError, match="unexpected archive member 'readme.txt'"):
        checkpoint.load(bad)


def test_wrong_dtype_and_state_shape_are_refused(saved, tmp_path):
    path, _, _ = saved
    meta, arrays = contents(path)
    for name, value, message in [
        ("optim/m1/by", arrays["optim/m1/by"].astype(np.float64), "optim/m1/by.npy: dtype <f8, expected <f4"),
        ("optim/m1/by", np.zeros(12, dtype=[("a", "<f4")]), "refused: it holds pickled objects or a structured"),
        ("train/state", np.zeros((2, 1, 3, 6), np.float32), "train/state.npy: 144 bytes, more than the 96 allowed"),
        ("train/state", np.zeros((2, 2, 1, 6), np.float32), r"train/state.npy: shape \(2, 2, 1, 6\), expected \(2, 1, "
                                                            r"any, 6\)"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            checkpoint.load(write_npz(tmp_path / "bad.npz", meta, {**arrays, name: value}))


def patch_compression(data, method):
    """Set the compression method of every zip header (local and central) to ``method``."""
    out = bytearray(data)
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (i := out.find(sig, start)) >= 0:
            out[i + offset:i + offset + 2] = struct.pack("<H", method)
            start = i + 4
    return bytes(out)


@pytest.mark.parametrize("method", [99, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_unknown_compression_methods_are_refused(saved, tmp_path, method):
    path, _, _ = saved
    bad = tmp_path / "bad.npz"
    bad.write_bytes(patch_compression(path.read_bytes(), method))
    with pytest.raises(CheckpointError, match=f"bad.npz: archive member .* uses an unsupported compression method "
                                              f".{method}."):
        checkpoint.load(bad)


def test_compressed_checkpoints_load(saved, tmp_path):
    path, model, _ = saved
    meta, arrays = contents(path)
    np.savez_compressed(tmp_path / "c.npz", meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    ckpt = checkpoint.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(ckpt.model.params["l0.Wax"], model.params["l0.Wax"])


def test_duplicate_members_are_refused(saved, tmp_path):
    path, _, _ = saved
    bad = tmp_path / "dup.npz"
    with zipfile.ZipFile(path) as zin, pytest.warns(UserWarning, match="Duplicate"), \
            zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        zout.writestr("param/by.npy", zin.read("param/by.npy"))
    with pytest.raises(CheckpointError, match="dup.npz: archive member 'param/by.npy' appears twice"):
        checkpoint.load(bad)


def test_a_flipped_data_bit_fails_the_crc(saved, tmp_path):
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("param/l0.Waa.npy")
    data[info.header_offset + 30 + len(info.filename) + 128 + 5] ^= 0x10  # inside the array data
    (tmp_path / "flip.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flip.npz: param/l0.Waa.npy: unreadable .BadZipFile: Bad CRC-32"):
        checkpoint.load(tmp_path / "flip.npz")


def test_non_finite_weights_in_a_file_are_refused(saved, tmp_path):
    path, _, _ = saved
    meta, arrays = contents(path)
    arrays["param/l1.Waa"][0, 0] = np.inf
    with pytest.raises(CheckpointError, match="array param/l1.Waa holds inf or nan values"):
        checkpoint.load(write_npz(tmp_path / "inf.npz", meta, arrays))


def test_a_fifo_or_folder_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo.npz")
    with pytest.raises(CheckpointError, match="fifo.npz: not a regular file"):
        checkpoint.load(tmp_path / "fifo.npz")
    with pytest.raises(CheckpointError, match="not a regular file"):
        checkpoint.load(tmp_path)
    with pytest.raises(CheckpointError, match="nope.npz: no such checkpoint file"):
        checkpoint.load(tmp_path / "nope.npz")


def test_unknown_tokenizer_plugin_names_the_plugin(saved):
    path, _, _ = saved
    empty_pm = make_plugin_manager(load_entry_points=False)
    with pytest.raises(CheckpointError, match="'chars'.*not installed"):
        checkpoint.load(path, pm=empty_pm)


def test_bad_tokenizer_options_are_one_line(saved, tmp_path):
    path, _, _ = saved
    meta, arrays = contents(path)
    meta["tokenizer"]["options"]["lower"] = "perhaps"
    with pytest.raises(CheckpointError, match="bad.npz: option 'lower'"):
        checkpoint.load(write_npz(tmp_path / "bad.npz", meta, arrays))


# ---------------------------------------------------------------------------------- saving

def test_non_finite_weights_are_never_saved(saved):
    path, model, tok = saved
    before = path.read_bytes()
    for bad in (np.inf, np.nan):
        broken = Model(model.config, {k: v.copy() for k, v in model.params.items()})
        broken.params["Wya"][1, 2] = bad
        with pytest.raises(checkpoint.NonFiniteWeightsError,
                           match=f"{path}: not saved: weight Wya holds inf or nan values; the previous checkpoint is "
                                 "kept"):
            checkpoint.save(path, broken, tok)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.npz"]


def test_save_refuses_metadata_that_load_would_refuse(saved):
    path, model, tok = saved
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="not saved: metadata field training.epoch: Field required"):
        checkpoint.save(path, model, tok, {"step": 3})
    with pytest.raises(CheckpointError, match=r"not saved: array optim/m1/Wya float64\[3\] is not in the checkpoint"):
        checkpoint.save(path, model, tok, None, {"optim/m1/Wya": np.ones(3)})
    assert path.read_bytes() == before


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(saved, monkeypatch):
    path, model, tok = saved
    before = path.read_bytes()

    def full_disk_savez(f, **arrays):
        f.write(b"partial data")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full_disk_savez)
    with pytest.raises(CheckpointError) as e:
        checkpoint.save(path, Model.create("rnn", len(tok.vocab), 3), tok)
    assert str(e.value) == f"{path}: cannot write the checkpoint (No space left on device); the previous checkpoint " \
                           f"is kept"
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert checkpoint.load(path).model.config == model.config


def test_a_read_only_folder_is_one_line(saved, monkeypatch):
    import tempfile

    path, model, tok = saved
    before = path.read_bytes()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(CheckpointError, match=r"cannot write the checkpoint \(Read-only file system\); the previous"):
        checkpoint.save(path, model, tok)
    assert path.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions (the tmpfs test in test_faults does it)")
def test_a_folder_without_write_permission_is_one_line(saved):
    path, model, tok = saved
    path.parent.chmod(0o555)
    try:
        with pytest.raises(CheckpointError, match="cannot write the checkpoint .Permission denied"):
            checkpoint.save(path, model, tok)
    finally:
        path.parent.chmod(0o755)


def test_copy_is_atomic_and_one_line(saved, tmp_path):
    path, _, _ = saved
    checkpoint.copy(path, tmp_path / "best.npz")
    assert (tmp_path / "best.npz").read_bytes() == path.read_bytes()
    with pytest.raises(CheckpointError, match="nope/best.npz: cannot write the checkpoint"):
        checkpoint.copy(path, tmp_path / "nope" / "best.npz")


def test_checkpoints_get_the_usual_file_permissions(saved):
    path, _, _ = saved
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_file_that_is_not_an_npz_never_suggests_loading_it_unsafely(tmp_path):
    bad = tmp_path / "notes.npz"
    bad.write_text("garbage")
    with pytest.raises(CheckpointError, match=r"notes.npz: not a seqgen checkpoint \(not an .npz archive\)") as e:
        checkpoint.load(bad)
    assert "allow_pickle" not in str(e.value) and "unsafely" not in str(e.value)


def test_metadata_size_is_bounded(saved, tmp_path):
    _, arrays = contents(saved[0])
    big = np.zeros(MAX_META_BYTES + 1, np.uint8)
    np.savez(tmp_path / "big.npz", meta=big, **arrays)
    with pytest.raises(CheckpointError, match="meta.npy: 33,554,433 bytes, more than the 33,554,432 allowed"):
        checkpoint.load(tmp_path / "big.npz")


def test_declared_sizes_beyond_the_file_are_refused(saved, tmp_path):
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("param/l0.Waa.npy")
    # the central directory's uncompressed size of this member: claim 4 GB in a stored member
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        name_len = struct.unpack("<H", data[central + 28:central + 30])[0]
        if data[central + 46:central + 46 + name_len] == info.filename.encode():
            data[central + 24:central + 28] = struct.pack("<I", 0xFFFFFFF0)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    (tmp_path / "huge.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="param/l0.Waa.npy' declares 4,294,967,280 bytes, more than the file"):
        checkpoint.load(tmp_path / "huge.npz")
