import numpy as np
import pytest

from seqgen import ConfigError, CorpusError
from seqgen.training.data import ItemWindows, StreamWindows, make_windows, split_items, split_validation


def test_stream_windows_continue_each_stream():
    ids = np.arange(101, dtype=np.int32)
    w = StreamWindows(ids, batch_size=4, seq_length=5)
    assert w.windows_in_epoch(0) == 5
    first, second = w.window(0, 0), w.window(0, 1)
    assert first.inputs.shape == (5, 4) and first.reset and not second.reset
    np.testing.assert_array_equal(first.inputs[:, 1], np.arange(25, 30))
    np.testing.assert_array_equal(second.inputs[:, 1], np.arange(30, 35))
    np.testing.assert_array_equal(first.targets, first.inputs + 1)


def test_stream_too_short_is_a_clear_error():
    with pytest.raises(CorpusError, match="too short for one window"):
        StreamWindows(np.arange(50), batch_size=8, seq_length=10)


def test_split_items_keeps_separators_and_drops_empty_items():
    ids = np.array([5, 6, 0, 0, 7, 0, 8], dtype=np.int32)
    items = split_items(ids, 0)
    assert [i.tolist() for i in items] == [[5, 6, 0], [7, 0], [8, 0]]


def test_item_windows_start_from_the_separator_and_pad():
    items = [np.array([3, 4, 0]), np.array([5, 0]), np.array([6, 7, 8, 9, 0])]
    w = ItemWindows(items, 0, batch_size=3, seq_length=3, shuffle=False)
    assert w.windows_in_epoch(0) == 2  # longest item (5) needs two windows of 3
    first, second = w.window(0, 0), w.window(0, 1)
    assert first.reset and not second.reset
    np.testing.assert_array_equal(first.inputs[:, 0], [0, 3, 4])
    np.testing.assert_array_equal(first.targets[:, 0], [3, 4, 0])
    np.testing.assert_array_equal(first.targets[:, 1], [5, 0, -1])
    np.testing.assert_array_equal(second.inputs[:, 2], [8, 9])
    np.testing.assert_array_equal(second.targets[:, 2], [9, 0])
    np.testing.assert_array_equal(second.targets[:, 0], [-1, -1])


def test_item_order_is_seeded_per_epoch():
    items = [np.array([i, 0]) for i in range(1, 30)]
    a = ItemWindows(items, 0, batch_size=1, seq_length=4, seed=3)
    b = ItemWindows(items, 0, batch_size=1, seq_length=4, seed=3)
    def order(w, e):
        return [int(w.window(e, c).targets[0, 0]) for c in range(w.windows_in_epoch(e))]
    assert order(a, 0) == order(b, 0)
    assert order(a, 0) != order(a, 1)
    assert sorted(order(a, 0)) == list(range(1, 30))


def test_validation_split_never_overlaps():
    ids = np.arange(1000, dtype=np.int32)
    train, valid = split_validation(ids, None, "stream", 0.1)
    assert len(valid) == 100 and set(train).isdisjoint(valid)
    items = np.concatenate([[i, i + 1000, 0] for i in range(1, 51)]).astype(np.int32)
    train, valid = split_validation(items, 0, "items", 0.2, seed=1)
    t_items = {tuple(x) for x in train}
    v_items = {tuple(x) for x in valid}
    assert len(v_items) == 10 and len(t_items) == 40 and t_items.isdisjoint(v_items)
    assert all(np.shares_memory(x, items) for x in train + valid)  # views, no copy


def test_items_mode_needs_a_separator():
    with pytest.raises(ConfigError, match="separator"):
        make_windows("items", np.arange(10), None, 2, 4)


def test_encode_corpus_streams_documents_and_spills_to_a_memory_map(tmp_path):
    from seqgen.plugins.host import get_tokenizer
    from seqgen.training.data import encode_corpus

    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(f"file {i}: " + "abc" * (i + 1))
    tok = get_tokenizer("chars")()
    tok.fit(tok.iter_documents(tmp_path))
    in_memory = encode_corpus(tok, tmp_path)
    spilled = encode_corpus(tok, tmp_path, in_memory_tokens=10)
    assert not isinstance(in_memory, np.memmap) and isinstance(spilled, np.memmap)
    np.testing.assert_array_equal(in_memory, spilled)
    expected = np.concatenate([tok.encode(d) for d in tok.read(tmp_path)])
    np.testing.assert_array_equal(in_memory, expected)
    windows = make_windows("stream", spilled, None, 2, 4)
    np.testing.assert_array_equal(windows.window(0, 1).inputs, make_windows("stream", in_memory, None, 2, 4)
                                  .window(0, 1).inputs)
    items = make_windows("items", spilled, tok.vocab.index("\n"), 2, 4)
    assert items.windows_in_epoch(0) > 0


def test_training_on_a_memory_mapped_corpus_is_identical(tmp_path, cli_run, monkeypatch):
    import seqgen.training.data
    from seqgen.storage import checkpoint

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"{i}.txt").write_text(" ".join(f"word{j % 7}" for j in range(i * 50, i * 50 + 120)))
    args = ["train", corpus, "--hidden-size", "8", "--seq-length", "8", "--batch-size", "4", "--steps", "5", "-q"]
    assert cli_run(*args, "-o", tmp_path / "a.npz").exit_code == 0
    original, kinds = seqgen.training.data.encode_corpus, []

    def spilling(tok, path):
        ids = original(tok, path, in_memory_tokens=100)
        kinds.append(type(ids))
        return ids

    monkeypatch.setattr(seqgen.training.data, "encode_corpus", spilling)
    assert cli_run(*args, "-o", tmp_path / "b.npz").exit_code == 0
    assert kinds == [np.memmap]
    a, b = checkpoint.load(tmp_path / "a.npz"), checkpoint.load(tmp_path / "b.npz")
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])


@pytest.mark.parametrize("name", ["chars", "words"])
def test_large_files_are_read_in_pieces_with_the_same_tokens(tmp_path, monkeypatch, name):
    import seqgen.plugins.tokenizer
    from seqgen.plugins.host import get_tokenizer

    text = "\ufeffFirst line, with words.\r\nZweite Zeile — ünïcode!\r\n\r\nthird\tline  ends" * 30
    path = tmp_path / "big.txt"
    path.write_bytes(text.encode("utf-8"))
    tok = get_tokenizer(name)(separator="\n") if name == "chars" else get_tokenizer(name)()
    whole = tok.read(path)
    monkeypatch.setattr(seqgen.plugins.tokenizer, "LARGE_FILE_BYTES", 100)
    monkeypatch.setattr(seqgen.plugins.tokenizer, "TEXT_PIECE_CHARS", 37)
    pieces = tok.read(path)
    assert len(whole) == 1 and len(pieces) > 10
    assert [t for piece in pieces for t in piece] == whole[0]


def test_a_large_binary_file_fails_before_any_piece(tmp_path, monkeypatch):
    import seqgen.plugins.tokenizer
    from seqgen.plugins.host import get_tokenizer

    monkeypatch.setattr(seqgen.plugins.tokenizer, "LARGE_FILE_BYTES", 10)
    (tmp_path / "a.txt").write_bytes(b"fine text " * 10)
    (tmp_path / "b.txt").write_bytes(b"text " * 50 + b"\x00" + b"more " * 10)
    (tmp_path / "c.txt").write_bytes(b"text " * 50 + b"\xff\xfe" + b"more " * 10)
    tok = get_tokenizer("chars")()
    with pytest.warns(UserWarning) as record:
        docs = tok.read(tmp_path)
    assert "".join(t for d in docs for t in d) == "fine text " * 10 + "\n"
    messages = " ".join(str(w.message) for w in record)
    assert "b.txt: binary file" in messages and "c.txt: not UTF-8 text (invalid byte at offset 250)" in messages
