"""The model cache: configuration keys, atomic writes, and checkpoints verified on load.

A checkpoint is a ``torch.save``\\ d dict: a *header* (format version, configuration,
seeds, vocabulary...) that must match what the caller expects, a training history, and a
state dict.
:func:`cached` loads one if it is usable and trains (then saves) otherwise; both the
image ensembles (:mod:`ood_utils.train`) and the text twins (:mod:`ood_utils.text`) use
it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, TypeVar

import torch

T = TypeVar("T")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it into
    place.

    A reader never sees a half-written file; if ``write`` fails (or is interrupted), the
    temporary file is removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_fields(config: object) -> dict[str, object]:
    """A dataclass's fields that differ from their defaults: what identifies the
    configuration.

    Leaving defaults out means that a field added later, whose default keeps the old
    behaviour, changes no existing key (a changed default must bump the format version).
    """
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if value != default or type(value) is not type(default):
            out[f.name] = value
    return out


def config_key(config: object, version: int) -> str:
    """A short hash of a dataclass's non-default fields (:func:`config_fields`) plus a
    format
    ``version``: a checkpoint's cache key."""
    payload = json.dumps({"format": version, **config_fields(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def save_checkpoint(
    path: Path, header: Mapping[str, object], history: object, state: Mapping
) -> None:
    """Write ``{**header, "history": asdict(history), "state_dict": state}`` atomically
    (CPU tensors)."""
    payload = {
        **header,
        "history": dataclasses.asdict(history),  # type: ignore[call-overload]
        "state_dict": {k: v.detach().cpu() for k, v in state.items()},
    }
    atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(path: Path, header: Mapping[str, object]) -> tuple[dict, dict]:
    """``(state dict, history fields)`` of a checkpoint, loaded with
    ``weights_only=True``.

    Raises:
        ValueError: the file's header differs from ``header`` (another configuration,
            member, vocabulary or format version).
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if {k: payload.get(k) for k in header} != dict(header):
        raise ValueError(
            f"checkpoint {path} was saved for another config, format or vocabulary"
        )
    return payload["state_dict"], payload["history"]


def load_or_report(path: Path, load: Callable[[Path], T]) -> T | None:
    """``load(path)``; ``None`` if the file is missing, or unusable (then say so: it
    will be retrained)."""
    if not path.exists():
        return None
    try:
        return load(path)
    except Exception as err:  # corrupted, truncated, stale or unsafe: retrain
        print(
            f"cached checkpoint {path.name} is unusable ({type(err).__name__}: {err}); "
            "retraining"
        )
        return None


def cached(
    path: Path,
    load: Callable[[Path], T],
    train: Callable[[], T],
    save: Callable[[T, Path], None],
    retrain: bool = False,
    progress: bool = True,
) -> T:
    """Load ``path`` if usable, else train, save (atomically) and return the result.

    ``load`` must raise on a checkpoint it cannot use (unreadable, truncated, saved by
    another configuration or format version, or refused by
    ``torch.load(weights_only=True)``); such a file is reported and replaced by a fresh
    training run. Training that is interrupted (``KeyboardInterrupt``) or fails leaves
    no file behind: ``save`` runs only once ``train`` has returned, and writes through a
    temporary file (:func:`atomic_write`)."""
    if not retrain:
        result = load_or_report(path, load)
        if result is not None:
            if progress:
                print(f"loaded cached {path.name}")
            return result
    result = train()
    save(result, path)
    return result
