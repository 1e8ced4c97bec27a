"""The model cache: trained networks loaded if they are there, trained and saved if
not, and the atomic writes and verified checkpoints that make it safe.

A checkpoint is a ``torch.save``\\ d dict: a *header* (format version, configuration,
seeds, vocabulary...) that must match what the caller expects, a training history, and a
state dict, in a file named by the configuration's key (:mod:`ood_utils.configs`).
:func:`cached_parts` is the one load-or-train path: it loads the files that are usable
and trains (then saves) the rest. The image ensembles keep one file per member
(:func:`get_ensemble`, trained by :func:`ood_utils.train.train_ensemble`), the text
twins one file for both (:func:`get_text_twins`, trained by
:func:`ood_utils.text.train_twins`)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

import torch

from .configs import config_fields
from .models import Ensemble
from .run import Run
from .text import (
    TEXT_FORMAT_VERSION,
    TextConfig,
    TextCorpus,
    TextHistory,
    make_twins,
    train_twins,
    training_corpus,
)
from .train import (
    FORMAT_VERSION,
    History,
    TrainConfig,
    make_ensemble,
    member_seeds,
    train_ensemble,
)

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


def cached_parts(
    paths: Sequence[Path],
    load: Callable[[int, Path], T],
    train: Callable[[list[int]], list[T]],
    save: Callable[[int, T, Path], None],
    retrain: bool = False,
) -> tuple[list[T], list[int]]:
    """The one load-or-train path: part ``i`` of a result is kept in ``paths[i]``.

    Each file is loaded once, if usable (``load(i, path)`` must raise on a checkpoint it
    cannot use: unreadable, truncated, saved by another configuration or format
    version, or refused by ``torch.load(weights_only=True)``; such a file is reported
    and its parts trained again). A file can hold several parts (an ensemble's
    identical members): it is read, trained and written once, for its first part. The
    missing parts are trained together by one call, ``train(indices) -> [part]``, and
    written (``save(i, part, path)``, atomically: :func:`atomic_write`) only once all
    of them have trained, so training that is interrupted (``KeyboardInterrupt``) or
    fails leaves no file behind.

    Returns:
        ``(parts, loaded)``: every part in the order of ``paths``, and the indices of
        those that were loaded.
    """
    found: dict[Path, T] = {}
    for i, path in enumerate(paths):
        if not retrain and path not in found:
            part = load_or_report(path, lambda p, i=i: load(i, p))
            if part is not None:
                found[path] = part
    loaded = [i for i, p in enumerate(paths) if p in found]
    first_of_file = {p: i for i, p in reversed(list(enumerate(paths)))}
    missing = sorted(i for p, i in first_of_file.items() if p not in found)
    if missing:
        for i, part in zip(missing, train(missing)):
            found[paths[i]] = part
        for i in missing:  # written only once every part has trained
            save(i, found[paths[i]], paths[i])
    return [found[p] for p in paths], loaded


def cached(
    path: Path,
    load: Callable[[Path], T],
    train: Callable[[], T],
    save: Callable[[T, Path], None],
    retrain: bool = False,
    progress: bool = True,
) -> T:
    """Load ``path`` if usable, else train, save (atomically) and return the result:
    :func:`cached_parts` for a result kept whole in one file."""
    (result,), loaded = cached_parts(
        [path],
        lambda _, p: load(p),
        lambda _: [train()],
        lambda _, result, p: save(result, p),
        retrain,
    )
    if progress and loaded:
        print(f"loaded cached {path.name}")
    return result


# --- the image ensembles: one file per member


def member_path(config: TrainConfig, i: int, cache_dir: Path | str) -> Path:
    """Where member ``i`` of ``config`` is cached:
    ``<cache>/<dataset>-<arch>-<key>-i<init>-d<drop>.pt``.

    The key hashes the training settings without the member count and seed rules, and
    the name carries the member's two seeds (:func:`member_seeds`). So every ensemble
    that contains the same member shares its file: the single CNN of chapter 1 is twin 1
    of chapter 2, and identical-init twins with synchronised dropout are one file read
    twice."""
    init, drop = member_seeds(config, i)
    seeds = f"i{init}-shared" if config.shared_module else f"i{init}-d{drop}"
    return (
        Path(cache_dir)
        / f"{config.dataset}-{config.arch}-{_shared(config).key()}-{seeds}.pt"
    )


def _shared(config: TrainConfig) -> TrainConfig:
    """The settings every member of ``config`` trains with (without the count and seed
    rules).

    A shared module is trained by every member's pass, so all of its config matters.
    """
    if config.shared_module:
        return config
    return dataclasses.replace(
        config, n_members=1, identical_init=False, sync_dropout=False
    )


def checkpoint_paths(config: TrainConfig, cache_dir: Path | str) -> list[Path]:
    """The cache files of members ``0 .. n_members - 1`` (a file can appear more than
    once)."""
    return [member_path(config, i, cache_dir) for i in range(config.n_members)]


def _member_payload(config: TrainConfig, i: int) -> dict:
    init, drop = member_seeds(config, i)
    if config.shared_module:  # one file for all members: it records every pass's stream
        drop = [member_seeds(config, j)[1] for j in range(config.n_members)]
    return {
        "format": FORMAT_VERSION,
        "config": config_fields(_shared(config)),
        "init_seed": init,
        "dropout_seed": drop,
    }


def save_member(
    state: dict, hist: History, config: TrainConfig, i: int, path: Path
) -> None:
    """Write member ``i`` (its state dict, on the CPU) atomically: to a temporary file,
    then rename."""
    save_checkpoint(path, _member_payload(config, i), hist, state)


def load_member(config: TrainConfig, i: int, path: Path) -> tuple[dict, History]:
    """Member ``i``'s state dict and history, loaded with ``weights_only=True``.

    Raises ``ValueError`` if the file was saved for another member, config or format.
    """
    state, history = load_checkpoint(path, _member_payload(config, i))
    return state, History(**history)


def load_ensemble(config: TrainConfig, run: Run) -> tuple[Ensemble, History]:
    """The cached ensemble of ``config`` (from ``run.cache_dir``, on ``run.device``);
    raises if a member is missing or unusable."""
    return _assemble(
        config,
        [
            load_member(config, i, p)
            for i, p in enumerate(checkpoint_paths(config, run.cache_dir))
        ],
        run.device,
    )


def _assemble(
    config: TrainConfig, members: list[tuple[dict, History]], device: torch.device
) -> tuple[Ensemble, History]:
    ens = make_ensemble(config)
    for net, (state, _) in zip(ens.members, members):
        net.load_state_dict(state)
    return ens.to(device).eval(), History.join([h for _, h in members])


def get_ensemble(
    config: TrainConfig,
    run: Run,
    retrain: bool = False,
    progress: bool = True,
) -> tuple[Ensemble, History]:
    """The trained ensemble for ``config``: cached members (in ``run.cache_dir``) are
    loaded, the others trained, on ``run.device``.

    Each member is cached on its own (:func:`member_path`), so ensembles share members:
    asking for 8 members after 2 trains only members 3-8, together, on the same batches.
    A checkpoint that cannot be read or belongs to another config is reported and its
    member retrained; training that is interrupted leaves no file behind
    (:func:`ood_utils.cache.cached_parts`, the one load-or-train path)."""

    def train_members(missing: list[int]) -> list[tuple[dict, History]]:
        ens, hist = train_ensemble(config, run, progress=progress, members=missing)
        return [
            (
                {k: v.detach().cpu() for k, v in ens[j].state_dict().items()},
                hist.member(j),
            )
            for j in range(len(missing))
        ]

    members, loaded = cached_parts(
        checkpoint_paths(config, run.cache_dir),
        lambda i, path: load_member(config, i, path),
        train_members,
        lambda i, member, path: save_member(*member, config, i, path),
        retrain,
    )
    if progress and loaded:
        print(
            f"loaded cached {config.dataset} {config.arch} "
            f"member{'s' * (len(loaded) > 1)} {', '.join(str(i + 1) for i in loaded)} "
            f"of {config.n_members}"
        )
    return _assemble(config, members, run.device)


# --- the text twins: one file for both


def get_text_twins(
    config: TextConfig,
    run: Run,
    progress: bool = True,
) -> tuple[Ensemble, TextCorpus, TextHistory]:
    """The trained twins for ``config``: from ``run.cache_dir`` if present, else trained
    and cached.

    The book is read from ``run.data_root`` when a copy is there (:func:`load_book`).
    Checkpoints are written atomically and loaded with ``weights_only=True``; one that
    is unreadable or belongs to another config is reported and retrained
    (:func:`ood_utils.cache.cached`)."""
    corpus = training_corpus(config, run.data_root)
    header = {
        "format": TEXT_FORMAT_VERSION,
        "config": dataclasses.asdict(config),
        "vocab": corpus.tokenizer.chars,
    }

    def load(path: Path) -> tuple[Ensemble, TextHistory]:
        state, history = load_checkpoint(path, header)
        twins = make_twins(config, len(corpus.tokenizer))
        twins.load_state_dict(state)
        return twins.to(run.device).eval(), TextHistory(**history)

    def save(result: tuple[Ensemble, TextHistory], path: Path) -> None:
        save_checkpoint(path, header, result[1], result[0].state_dict())

    twins, history = cached(
        text_checkpoint_path(config, run.cache_dir),
        load,
        lambda: train_twins(config, corpus, run, progress=progress),
        save,
        progress=progress,
    )
    return twins, corpus, history


def text_checkpoint_path(config: TextConfig, cache_dir: Path | str) -> Path:
    """Where the text twins of ``config`` are cached:
    ``<cache_dir>/text-<book>-x<N>-<key>.pt``."""
    return Path(cache_dir) / f"text-{config.book}-x{config.n_members}-{config.key()}.pt"
