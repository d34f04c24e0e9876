import zipfile

import numpy as np
import pytest

from seqgen import CheckpointError, Model
from seqgen.plugins.host import make_plugin_manager
from seqgen.storage import checkpoint
from seqgen_plugins.chars import CharTokenizer


@pytest.fixture
def saved(tmp_path):
    tok = CharTokenizer()
    tok.fit([list("hello world\n")])
    model = Model.create("gru", len(tok.vocab), 6, 2, seed=1)
    path = tmp_path / "m.npz"
    checkpoint.save(path, model, tok, {"step": 3}, {"optim/m1/Wya": np.ones(3)})
    return path, model, tok


def test_round_trip_keeps_everything(saved):
    path, model, tok = saved
    ckpt = checkpoint.load(path)
    assert ckpt.model.config == model.config
    for name in model.params:
        np.testing.assert_array_equal(ckpt.model.params[name], model.params[name])
    assert ckpt.tokenizer.vocab == tok.vocab
    assert ckpt.training == {"step": 3}
    np.testing.assert_array_equal(ckpt.arrays["optim/m1/Wya"], np.ones(3))


def test_checkpoint_is_a_plain_npz_without_pickles(saved):
    path, _, _ = saved
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "meta.npy" in names and all(n.endswith(".npy") for n in names)
    with np.load(path, allow_pickle=False) as npz:  # would raise on any object array
        assert all(npz[k].dtype != object for k in npz.files)


def test_a_pickled_array_is_refused(saved, tmp_path):
    path, _, _ = saved
    bad = tmp_path / "evil.npz"
    with np.load(path) as npz:
        content = {k: npz[k] for k in npz.files}
    content["param/by"] = np.array([object()], dtype=object)
    np.savez(bad, **content)
    with pytest.raises(CheckpointError, match="evil.npz: refused: it holds pickled objects") as e:
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


def test_unknown_tokenizer_plugin_names_the_plugin(saved):
    path, _, _ = saved
    empty_pm = make_plugin_manager(load_entry_points=False)
    with pytest.raises(CheckpointError, match="'chars'.*not installed"):
        checkpoint.load(path, pm=empty_pm)


def test_a_failed_write_leaves_the_previous_checkpoint(saved, monkeypatch):
    path, model, tok = saved
    before = path.read_bytes()

    def exploding_savez(f, **arrays):
        f.write(b"partial data")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(OSError):
        checkpoint.save(path, Model.create("rnn", len(tok.vocab), 3), tok)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert checkpoint.load(path).model.config == model.config


def test_checkpoints_get_the_usual_file_permissions(saved):
    import os

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
