"""Compute profiles, paths, device selection and seeding.

Everything that differs between "a laptop CPU in a few minutes" and "the
original experiment on a GPU" lives in one :class:`Profile`. The active profile
is chosen by the environment variable ``OOD_PROFILE`` (``fast`` by default), so
the same notebook runs in CI, on a laptop and in Colab.

Environment variables
---------------------
``OOD_PROFILE``
    ``fast`` (default) or ``full``.
``OOD_DATA_ROOT``
    Folder that holds ``MNIST/raw/...`` and ``FashionMNIST/raw/...`` (torchvision's
    layout). Defaults to ``<user cache>/twin-kl/data``; missing files are downloaded
    there when a network is available.
``OOD_CACHE_DIR``
    Folder for trained-model checkpoints. Defaults to ``<user cache>/twin-kl/models``.
``OOD_DEVICE``
    Force a device (``cpu``, ``cuda``, ``cuda:1``...). Defaults to CUDA when present.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import torch

T = TypeVar("T")

PROFILE_ENV = "OOD_PROFILE"
DATA_ENV = "OOD_DATA_ROOT"
CACHE_ENV = "OOD_CACHE_DIR"
DEVICE_ENV = "OOD_DEVICE"


@dataclass(frozen=True)
class Profile:
    """How much compute a chapter spends.

    Attributes:
        name: ``"fast"`` or ``"full"``.
        n_train: training images per dataset (``None`` = all 60 000).
        n_test: test images per dataset used for evaluation (``None`` = all 10 000).
        epochs: training epochs.
        batch_size: training batch size (PyTorch's MNIST example uses 64).
        attack_restarts: random restarts of the fooling attack.
        attack_steps: optimisation steps per restart.
        ladder_restarts: restarts of each attack in the ladders from the original's protocol to
            the book's (the chapter's first ones; the original ran 100).
        n_noise: uniform-noise images used as an out-of-distribution set.
        sweep_n_train: training images for chapters that train many ensembles or a bigger
            network (the "sweep" budget); ``None`` = all.
        sweep_epochs: training epochs of the sweep budget.
        mc_samples: stochastic forward passes of MC dropout (chapter 9).
        cosine_n: images per set in the cosine-similarity sweep of chapter 10 (``None`` = all).
        cosine_samples: random perturbations per image in that sweep.
        text_context, text_d_model, text_layers, text_heads: the character transformer of the
            text chapter (context length, width, depth, attention heads).
        text_steps, text_batch: its training steps and batch size (windows per step).
        text_chars: characters of each evaluation text that the text chapter scores.
    """

    name: str
    n_train: int | None
    n_test: int | None
    epochs: int
    batch_size: int = 64
    attack_restarts: int = 100
    attack_steps: int = 300
    ladder_restarts: int = 100
    n_noise: int = 1000
    sweep_n_train: int | None = 4_000
    sweep_epochs: int = 2
    mc_samples: int = 5
    cosine_n: int | None = 500
    cosine_samples: int = 3
    text_context: int = 64
    text_d_model: int = 96
    text_layers: int = 2
    text_heads: int = 4
    text_steps: int = 1200
    text_batch: int = 16
    text_chars: int = 20_000

    def replace(self, **changes: object) -> "Profile":
        """Return a copy with some fields changed (e.g. ``epochs=1`` for a quick test)."""
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    # A chapter in a few minutes on 2 CPU cores.
    "fast": Profile(name="fast", n_train=10_000, n_test=2_000, epochs=3, attack_steps=300,
                    ladder_restarts=20),
    # The original experiments: full datasets, 14 epochs (PyTorch's MNIST example).
    "full": Profile(name="full", n_train=None, n_test=None, epochs=14, attack_steps=1000,
                    n_noise=10_000, sweep_n_train=None, sweep_epochs=14, mc_samples=30,
                    cosine_n=None, cosine_samples=16, text_context=256, text_d_model=384,
                    text_layers=6, text_heads=6, text_steps=10_000, text_batch=64, text_chars=200_000),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name``, else the one named by ``$OOD_PROFILE``, else ``fast``.

    Raises:
        ValueError: the name is not one of :data:`PROFILES`.
    """
    if name is None:
        name = os.environ.get(PROFILE_ENV, "").strip() or "fast"
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}: expected one of {sorted(PROFILES)} "
            f"(set ${PROFILE_ENV} or pass the name)"
        )
    return PROFILES[key]


def user_cache() -> Path:
    """``$XDG_CACHE_HOME/twin-kl`` or ``~/.cache/twin-kl``: the default home of data, models, results."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "twin-kl"


def env_path(variable: str, default: Path) -> Path:
    """The folder named by environment ``variable`` (expanded, absolute), else ``default``."""
    env = os.environ.get(variable, "").strip()
    return Path(env).expanduser().resolve() if env else default


def data_root() -> Path:
    """Folder holding the datasets: ``$OOD_DATA_ROOT`` or ``<user cache>/twin-kl/data``."""
    return env_path(DATA_ENV, user_cache() / "data")


def cache_dir() -> Path:
    """Folder for trained checkpoints: ``$OOD_CACHE_DIR`` or ``<user cache>/twin-kl/models``."""
    return env_path(CACHE_ENV, user_cache() / "models")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it into place.

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


def cached(path: Path, load: Callable[[Path], T], train: Callable[[], T],
           save: Callable[[T, Path], None], retrain: bool = False, progress: bool = True) -> T:
    """Load ``path`` if usable, else train, save (atomically) and return the result.

    ``load`` must raise on a checkpoint it cannot use (unreadable, truncated, saved by
    another configuration or format version, or refused by ``torch.load(weights_only=True)``);
    such a file is reported and replaced by a fresh training run. Training that is
    interrupted (``KeyboardInterrupt``) or fails leaves no file behind: ``save`` runs only
    once ``train`` has returned, and writes through a temporary file (:func:`atomic_write`).
    """
    if not retrain:
        result = load_or_report(path, load)
        if result is not None:
            if progress:
                print(f"loaded cached {path.name}")
            return result
    result = train()
    save(result, path)
    return result


def load_or_report(path: Path, load: Callable[[Path], T]) -> T | None:
    """``load(path)``; ``None`` if the file is missing, or unusable (then say so: it will be retrained)."""
    if not path.exists():
        return None
    try:
        return load(path)
    except Exception as err:  # corrupted, truncated, stale or unsafe: retrain
        print(f"cached checkpoint {path.name} is unusable ({type(err).__name__}: {err}); retraining")
        return None


def config_fields(config: object) -> dict[str, object]:
    """A dataclass's fields that differ from their defaults: what identifies the configuration.

    Leaving defaults out means that a field added later, whose default keeps the old
    behaviour, changes no existing key (a changed default must bump the format version).
    """
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else dataclasses.MISSING)
        if value != default or type(value) is not type(default):
            out[f.name] = value
    return out


def config_key(config: object, version: int) -> str:
    """A short hash of a dataclass's non-default fields (:func:`config_fields`) plus a format
    ``version``: a checkpoint's cache key."""
    payload = json.dumps({"format": version, **config_fields(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def get_device(name: str | None = None) -> torch.device:
    """The device to compute on: ``name``, else ``$OOD_DEVICE``, else CUDA when present, else CPU."""
    name = name or os.environ.get(DEVICE_ENV, "").strip() or None
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}: use 'cpu', 'cuda', 'cuda:1' or 'mps'") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available: choose a GPU "
                         f"runtime (Colab: Runtime > Change runtime type), or unset ${DEVICE_ENV} to "
                         f"run on the CPU")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a fresh CPU generator with that seed.

    Use the returned generator for anything that should not depend on what ran
    before (subset choice, batch order), and the global seed for model inits.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
