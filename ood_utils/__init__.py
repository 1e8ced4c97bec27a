"""ood_utils: the package behind the Twin-KL book on out-of-distribution detection.

Modules: :mod:`~ood_utils.config` (profiles, paths, device, seeding),
:mod:`~ood_utils.data` (MNIST/FashionMNIST in memory), :mod:`~ood_utils.models`
(the CNN and the ensemble container), :mod:`~ood_utils.train` (joint training
and the checkpoint cache), :mod:`~ood_utils.scores` (KL scores and the flag rule),
:mod:`~ood_utils.attacks` (the fooling attack), :mod:`~ood_utils.metrics`
(AUROC and friends), :mod:`~ood_utils.detectors` (``pytorch-ood``-style twin and cosine
detectors), :mod:`~ood_utils.benchmark` (the OOD sets of chapters 9-10), :mod:`~ood_utils.text` (books and
twin character models), :mod:`~ood_utils.plots`
and :mod:`~ood_utils.book` (computed sentences, saved results).
"""

import importlib.metadata

from .config import Profile, get_device, get_profile, seed_everything
from .models import Ensemble, MnistCNN
from .scores import disagreement, flag, pairwise_kl, reference, twin_score
from .train import TrainConfig, get_ensemble

try:   # one place sets the version: pyproject.toml (read from the installed package's metadata)
    __version__ = importlib.metadata.version("ood-utils")
except importlib.metadata.PackageNotFoundError:   # imported from a source tree that is not installed
    __version__ = "unknown"

__all__ = [
    "Ensemble", "MnistCNN", "Profile", "TrainConfig", "disagreement", "flag", "get_device",
    "get_ensemble", "get_profile", "pairwise_kl", "reference", "seed_everything", "twin_score",
]
