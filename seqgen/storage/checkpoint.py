"""Checkpoints: one self-describing ``.npz`` file, never a pickle.

Arrays: ``param/<name>`` (weights), and for training checkpoints ``optim/<slot>/<name>``
(optimiser moments), ``train/state`` (the hidden state carried between windows) and, when the
run averages its weights (``ema``), ``train/weights/<name>`` (the optimiser's own weights; the
``param/`` arrays are then the average). Metadata is
JSON stored as a uint8 array ``meta``: format and seqgen versions, the model config, the
tokenizer (``Tokenizer.to_dict``) and the training state (step, epoch, data cursor, RNG state,
optimiser settings, loss history, options).

Loading trusts nothing: the zip directory, then the metadata (``seqgen.storage.schema``), then
each array's header are checked before any array is read (``seqgen.storage.archive``), and
nothing is unpickled, so a checkpoint cannot run code or make seqgen allocate more than the file
can hold. Saving refuses non-finite weights and writes atomically: a crash, a full disk or
Ctrl-C mid-write leaves the previous checkpoint intact.

For a run that writes a checkpoint repeatedly (``seqgen.storage.outputs``)::

    check_writable(path)               # before the work starts
    with output_lock(path):            # a second run writing the same path is refused
        remove_stale_temps(path)       # temporaries of an earlier crash
        ... save(path, ...) ...
"""

import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np

from seqgen.errors import CheckpointError, ConfigError, SeqgenError, ShapeError
from seqgen.storage import archive, schema
from seqgen.storage.atomic import write_atomically
from seqgen.storage.outputs import OutputError, check_writable, output_lock, remove_stale_temps  # noqa: F401
from seqgen.storage.schema import FORMAT, FORMAT_VERSION  # noqa: F401


class NonFiniteWeightsError(CheckpointError):
    """A model with inf or nan weights was not saved (the previous checkpoint is kept)."""


class Checkpoint(NamedTuple):
    model: object  # seqgen.engine.model.Model
    tokenizer: object  # seqgen.plugins.tokenizer.Tokenizer
    training: dict | None  # training metadata, None for a weights-only checkpoint
    arrays: dict  # the non-parameter arrays (optimiser slots, carried state)
    summary: dict | None = None  # provenance of a weights-only export


def save(path, model, tokenizer, training=None, arrays=None, summary=None):
    """Write a checkpoint atomically. ``arrays``: extra arrays by name (e.g. "optim/m1/Wya");
    ``summary``: JSON-able provenance of a weights-only export (e.g. its training history).

    CheckpointError (one line) if a weight is not finite (NonFiniteWeightsError), if the
    metadata or arrays break the schema, or if the file cannot be written (full disk, read-only
    folder); in every case the previous file at ``path`` is left as it was."""
    path = Path(path)
    for name, value in model.params.items():
        if not np.isfinite(value).all():
            raise NonFiniteWeightsError(f"{path}: not saved: weight {name} holds inf or nan values; "
                                        f"{_kept(path)}")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seqgen_version": _version(),
        "model": model.config_dict(),
        "tokenizer": tokenizer.to_dict(),
        "training": training,
        "summary": summary,
    }
    content = {f"param/{k}": v for k, v in model.params.items()}
    content.update(arrays or {})
    try:
        meta = json.loads(json.dumps(meta))  # what load will see (tuples become lists, ...)
        specs = schema.validate(meta)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: not saved: metadata is not plain JSON ({e})") from None
    except CheckpointError as e:
        raise CheckpointError(f"{path}: not saved: {e}") from None
    for name, value in content.items():
        spec = specs.get(name)
        if spec is None or value.dtype != spec.dtype or len(value.shape) != len(spec.shape) or any(
                s is not None and v != s for v, s in zip(value.shape, spec.shape)):
            raise CheckpointError(f"{path}: not saved: array {name} {value.dtype}{list(value.shape)} is not in "
                                  f"the checkpoint schema")
    content["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **content)

    _write(path, write)


def _version():
    import seqgen

    return seqgen.__version__


def copy(source, target):
    """Copy a checkpoint file atomically (e.g. to the best-so-far path); CheckpointError if
    the copy cannot be written, the previous ``target`` kept."""
    _write(Path(target), lambda tmp: shutil.copyfile(source, tmp))


def _write(path, write):
    try:
        write_atomically(path, write)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write the checkpoint ({e.strerror or e}); {_kept(path)}") from None


def _kept(path):
    return "the previous checkpoint is kept" if os.path.isfile(path) else "nothing was written"


def read(path):
    """The raw checkpoint: (metadata dict, arrays dict), checked against the schema; arrays by
    name without the ``meta`` member. CheckpointError naming the file and the problem."""
    path = Path(path)
    try:
        return _read(path)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def _read(path):
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise CheckpointError("no such checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"cannot read ({e.strerror or e})") from None
    with archive.open_archive(path) as zf:
        infos = archive.members(zf, size)
        if "meta" not in infos:
            raise CheckpointError("not a seqgen checkpoint (no metadata)")
        raw = archive.read_array(zf, infos.pop("meta"), np.uint8, (None,), schema.MAX_META_BYTES)
        meta = schema.parse(raw)
        specs = schema.validate(meta)
        need = sum(s.nbytes for name, s in specs.items() if s.max_bytes is None)
        room = sum(archive.capacity(info) for info in infos.values())
        if need > room:
            m = meta["model"]
            raise CheckpointError(
                f"metadata field model: {m['cell']} {m['num_layers']}x{m['hidden_size']} over {m['vocab_size']} "
                f"tokens implies {need:,} bytes of arrays, but the file holds at most {room:,}")
        unexpected = sorted(set(infos) - set(specs))
        if unexpected:
            raise CheckpointError(f"unexpected array {unexpected[0][:80]!r} (not in the checkpoint schema)")
        missing = [name for name, s in specs.items() if name not in infos and name != "train/state"]
        if missing:
            raise CheckpointError(f"missing array {missing[0]!r}")
        arrays = {name: archive.read_array(zf, info, *specs[name]) for name, info in infos.items()}
    for name, value in arrays.items():
        if not np.isfinite(value).all():
            raise CheckpointError(f"array {name} holds inf or nan values; the checkpoint is unusable")
    return meta, arrays


def load(path, pm=None):
    """A ``Checkpoint``: the model, its tokenizer, training metadata and extra arrays."""
    from seqgen.engine.model import Model, ModelConfig
    from seqgen.plugins.host import tokenizer_from_dict

    meta, arrays = read(path)
    try:
        tokenizer = tokenizer_from_dict(meta["tokenizer"], pm=pm)
    except SeqgenError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except Exception as e:  # a plugin given untrusted data: whatever it raises is a bad checkpoint
        raise CheckpointError(f"{path}: tokenizer {meta['tokenizer']['name']!r} cannot be rebuilt "
                              f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    if len(tokenizer.vocab) != len(meta["tokenizer"]["vocab"]):
        raise CheckpointError(f"{path}: tokenizer {tokenizer.name!r} rebuilt a vocabulary of {len(tokenizer.vocab)}, "
                              f"not the saved {len(meta['tokenizer']['vocab'])}")
    try:
        params = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("param/")}
        model = Model(ModelConfig(**meta["model"]), params)
    except (ConfigError, ShapeError) as e:  # the schema checks these first
        raise CheckpointError(f"{path}: corrupt model in checkpoint ({e})") from None
    extra = {k: v for k, v in arrays.items() if not k.startswith("param/")}
    return Checkpoint(model, tokenizer, meta["training"], extra, meta["summary"])
