"""The run context: what a chapter (or a script) runs with, read from the environment
once.

``run = book.setup("02_twin_training")`` at the top of a chapter returns a frozen
:class:`Run` (profile, device, seed, data, cache and results folders) and seeds
Python's, NumPy's and PyTorch's generators. Functions of the package take the run, or
explicit arguments; none reads the environment itself. This module is the only place
that does.

Environment variables
---------------------
``OOD_PROFILE``
    ``fast`` (default) or ``full`` (:mod:`ood_utils.profiles`).
``OOD_DATA_ROOT`` Folder that holds ``MNIST/raw/...`` and ``FashionMNIST/raw/...``
    (torchvision's layout), and optionally ``text/``. Defaults to ``<user
    cache>/twin-kl/data``; missing files are downloaded there when a network is
    available.
``OOD_CACHE_DIR``
    Folder for trained-model checkpoints. Defaults to ``<user cache>/twin-kl/models``.
``OOD_RESULTS_DIR``
    Where chapters save their key numbers. Defaults to ``<user cache>/twin-kl/results``.
``OOD_ORIGINAL_SCALE_DIR``
    The original-scale results (``tools/reproduce.py``); defaults to the repository's
    ``results/original-scale``.
``OOD_DEVICE``
    Force a device (``cpu``, ``cuda``, ``cuda:1``...). Defaults to CUDA when present.
``OOD_SITE_DIR``
    Set by the book's build (``tools/build_book.py``): where a chapter writes files for
    the website (chapter 3's live figure, :mod:`ood_utils.live`). Unset elsewhere: a
    chapter run in Jupyter or Colab writes nothing there.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .profiles import Profile, get_profile

#: The environment variable behind each field of :class:`Run`.
ENV = {
    "profile": "OOD_PROFILE",
    "data_root": "OOD_DATA_ROOT",
    "cache_dir": "OOD_CACHE_DIR",
    "results_dir": "OOD_RESULTS_DIR",
    "original_scale_dir": "OOD_ORIGINAL_SCALE_DIR",
    "device": "OOD_DEVICE",
    "site_dir": "OOD_SITE_DIR",
}

#: The committed original-scale results, relative to the repository's root.
ORIGINAL_SCALE_FOLDER = "results/original-scale"


def bars_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """``TQDM_DISABLE`` is set (``1``, ``true``): tqdm's own switch, which its notebook
    bars ignore; :func:`ood_utils.progress.progress_bar` honours it everywhere (the
    book's build sets it, so that no bar is frozen into a page)."""
    environ = os.environ if environ is None else environ
    return environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")


def user_cache(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/twin-kl`` or ``~/.cache/twin-kl``: the default home of data,
    models, results."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "twin-kl"


def default_folder(kind: str) -> Path:
    """``<user cache>/<kind>``: where ``data``, ``models`` or ``results`` go when nobody
    says."""
    return user_cache() / kind


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """The device called ``name``; ``None``: CUDA when present, else the CPU.

    Raises:
        ValueError: an unknown name, or CUDA asked for where there is none.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(
            f"unknown device {name!r}: use 'cpu', 'cuda', 'cuda:1' or 'mps'"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(name)!r} was requested but CUDA is not available: choose a "
            "GPU runtime (Colab: Runtime > Change runtime type), or unset "
            f"${ENV['device']} to run on the CPU"
        )
    return device


def cpu_model() -> str:
    """The CPU's model name (``"Intel(R) Xeon(R) Platinum 8480C"``, from
    ``/proc/cpuinfo``), else what :mod:`platform` knows: CPU-bound times depend on
    it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> str:
    """What ``device`` is, for a record of where a result was computed: the GPU's name,
    or the CPU's model and core count (``"AMD EPYC 7B13, 2 CPUs"``)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()}, {os.cpu_count()} CPUs"


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a fresh CPU generator with
    that seed."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class Run:
    """Everything a chapter runs with. Build it with :func:`ood_utils.book.setup` (or
    :func:`from_environment`).

    Attributes:
        chapter: the chapter's name (``"02_twin_training"``), under which its results
            are saved.
        profile: the compute budgets (:class:`ood_utils.profiles.Profile`).
        device: where models compute.
        seed: the chapter's seed (the global generators were seeded with it).
        data_root: datasets (``MNIST/raw``, ``FashionMNIST/raw``, ``text/``).
        cache_dir: trained-model checkpoints.
        results_dir: the chapters' saved numbers
            (``<results_dir>/<profile>/<chapter>.json``).
        original_scale_dir: the original-scale results of ``tools/reproduce.py``.
        site_dir: files for the website, during the book's build only (else ``None``).
    """

    chapter: str
    profile: Profile
    device: torch.device
    seed: int
    data_root: Path
    cache_dir: Path
    results_dir: Path
    original_scale_dir: Path
    site_dir: Path | None = None

    def replace(self, **changes: object) -> Run:
        """A copy with some fields changed (``run.replace(cache_dir=tmp)``)."""
        return dataclasses.replace(self, **changes)


def from_environment(
    chapter: str = "script",
    environ: Mapping[str, str] | None = None,
    **overrides: object,
) -> Run:
    """The run context that the environment variables (:data:`ENV`) describe, with
    ``overrides``.

    Reads ``environ`` (default ``os.environ``) once; seeds nothing (a chapter's
    :func:`ood_utils.book.setup` does).
    """
    environ = os.environ if environ is None else environ
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Run)}
    if unknown:
        raise TypeError(
            f"unknown run fields {sorted(unknown)}: expected some of "
            f"{[f.name for f in dataclasses.fields(Run)]}"
        )
    home = user_cache(environ)

    def value(field: str) -> object:
        """The override of ``field``, else its variable (``None`` when unset or empty):
        the environment is read only for what the caller did not give."""
        if field in overrides:
            return overrides[field]
        return environ.get(ENV[field], "").strip() or None

    def path(field: str, default: Path) -> Path:
        if field in overrides:
            return overrides[field]  # type: ignore[return-value]
        given = value(field)
        return Path(given).expanduser().resolve() if given is not None else default

    return Run(
        chapter=chapter,
        profile=get_profile(value("profile") or "fast"),
        device=resolve_device(value("device")),
        seed=overrides.get("seed", 0),  # type: ignore[arg-type]
        data_root=path("data_root", home / "data"),
        cache_dir=path("cache_dir", home / "models"),
        results_dir=path("results_dir", home / "results"),
        original_scale_dir=path(
            "original_scale_dir",
            Path(__file__).resolve().parents[1] / ORIGINAL_SCALE_FOLDER,
        ),
        site_dir=path("site_dir", None),  # type: ignore[arg-type]
    )


def library(device: str | torch.device | None = None) -> Run:
    """The context of a library call made without one: the fast profile, ``device``
    (default: CUDA when present) and the user cache's folders (:func:`user_cache`); no
    ``OOD_*`` variable is read."""
    xdg = {"XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", "")}
    return from_environment(
        "library", environ=xdg, **({} if device is None else {"device": device})
    )
