"""ood_utils: the package behind the Twin-KL book on out-of-distribution detection.

Modules: :mod:`~ood_utils.run` (the run context: profile, device, seed, folders),
:mod:`~ood_utils.profiles` (compute budgets), :mod:`~ood_utils.data` (MNIST and
FashionMNIST in memory), :mod:`~ood_utils.models` (the CNN and the ensemble container),
:mod:`~ood_utils.train` (the joint training of every ensemble, images and text),
:mod:`~ood_utils.configs` (configuration keys), :mod:`~ood_utils.cache` (the model
cache: load, or train and save), :mod:`~ood_utils.scores` (KL scores and the flag
rule), :mod:`~ood_utils.attacks` (the fooling attack), :mod:`~ood_utils.metrics` (AUROC
and friends), :mod:`~ood_utils.detectors` (``pytorch-ood``-style twin and cosine
detectors), :mod:`~ood_utils.benchmark` (the OOD sets of chapters 9-10),
:mod:`~ood_utils.text` (books and twin character models), :mod:`~ood_utils.plots`,
:mod:`~ood_utils.book` (the setup line, computed sentences, saved results),
:mod:`~ood_utils.checks` (the exercises' checks, a module per chapter),
:mod:`~ood_utils.against` (each chapter's closing section) and
:mod:`~ood_utils.replication` (the original's protocol, claims and results)."""

import importlib.metadata

from .book import setup
from .cache import get_ensemble
from .models import Ensemble, MnistCNN
from .profiles import Profile, get_profile
from .run import Run, resolve_device, seed_everything
from .scores import disagreement, flag, pairwise_kl, reference, twin_score
from .train import TrainConfig

# one place sets the version: pyproject.toml, read from the installed package's metadata
try:
    __version__ = importlib.metadata.version("ood-utils")
except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "unknown"

__all__ = [
    "Ensemble",
    "MnistCNN",
    "Profile",
    "Run",
    "TrainConfig",
    "disagreement",
    "flag",
    "get_ensemble",
    "get_profile",
    "pairwise_kl",
    "reference",
    "resolve_device",
    "seed_everything",
    "setup",
    "twin_score",
]
