"""Checkpoints: one self-describing ``.npz`` file, never a pickle.

Arrays: ``param/<name>`` (weights), and for training checkpoints ``optim/<slot>/<name>``
(optimiser moments) and ``train/state`` (the hidden state carried between windows). Metadata is
JSON stored as a uint8 array ``meta``: format and seqgen versions, the model config, the
tokenizer (``Tokenizer.to_dict``) and the training state (step, epoch, data cursor, RNG state,
optimiser settings, loss history, options). Loading uses ``allow_pickle=False``, so a checkpoint
cannot run code. Writing goes to a temporary file in the same directory, then ``os.replace``:
a crash or Ctrl-C mid-write leaves the previous checkpoint intact.
"""

import json
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from seqgen import __version__
from seqgen.errors import CheckpointError, ConfigError, SeqgenError, ShapeError
from seqgen.storage.atomic import write_atomically

FORMAT = "seqgen-checkpoint"
FORMAT_VERSION = 1


class Checkpoint(NamedTuple):
    model: object  # seqgen.engine.model.Model
    tokenizer: object  # seqgen.plugins.tokenizer.Tokenizer
    training: dict | None  # training metadata, None for a weights-only checkpoint
    arrays: dict  # the non-parameter arrays (optimiser slots, carried state)
    summary: dict | None = None  # provenance of a weights-only export


def save(path, model, tokenizer, training=None, arrays=None, summary=None):
    """Write a checkpoint atomically. ``arrays``: extra arrays by name (e.g. "optim/m1/Wya");
    ``summary``: JSON-able provenance of a weights-only export (e.g. its training history)."""
    path = Path(path)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seqgen_version": __version__,
        "model": model.config_dict(),
        "tokenizer": tokenizer.to_dict(),
        "training": training,
        "summary": summary,
    }
    content = {f"param/{k}": v for k, v in model.params.items()}
    content.update(arrays or {})
    content["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **content)

    write_atomically(path, write)


def read(path):
    """The raw checkpoint: (metadata dict, arrays dict). CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):  # else numpy tries (and refuses) to read it as a pickle
        raise CheckpointError(f"{path}: not a seqgen checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except KeyError:
        raise CheckpointError(f"{path}: not a seqgen checkpoint (no metadata)") from None
    except ValueError as e:
        if "pickle" in str(e):  # numpy's message suggests loading it unsafely; seqgen never does
            raise CheckpointError(f"{path}: refused: it holds pickled objects, which seqgen never loads") from None
        raise CheckpointError(f"{path}: not a readable seqgen checkpoint ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable seqgen checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a seqgen checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')} is not supported by seqgen "
            f"{__version__} (expects {FORMAT_VERSION})")
    return meta, arrays


def load(path, pm=None):
    """A ``Checkpoint``: the model, its tokenizer, training metadata and extra arrays."""
    from seqgen.engine.model import Model, ModelConfig
    from seqgen.plugins.host import tokenizer_from_dict

    meta, arrays = read(path)
    try:
        config = ModelConfig(**meta["model"])
        params = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("param/")}
        model = Model(config, params)
    except (TypeError, KeyError, ConfigError, ShapeError) as e:
        raise CheckpointError(f"{path}: corrupt model in checkpoint ({e})") from None
    try:
        tokenizer = tokenizer_from_dict(meta["tokenizer"], pm=pm)
    except SeqgenError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: corrupt tokenizer in checkpoint ({e})") from None
    if len(tokenizer.vocab) != config.vocab_size:
        raise CheckpointError(f"{path}: tokenizer vocabulary ({len(tokenizer.vocab)}) does not match the model "
                              f"({config.vocab_size})")
    extra = {k: v for k, v in arrays.items() if not k.startswith("param/")}
    return Checkpoint(model, tokenizer, meta.get("training"), extra, meta.get("summary"))
