"""The out-of-distribution sets of chapters 9 and 10, and one loop that scores every
detector on them.

A model trained on one dataset (``id_name``) meets six kinds of input it was not trained
on: the other dataset, uniform noise, the fooling images of chapter 1, the same attack
aimed at the model itself, and its own test images with random strokes or letters drawn
over them."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from . import attacks, cache, data, metrics, train
from .detectors import Outputs, TwinDetector, forward_outputs, score
from .models import Ensemble
from .profiles import Profile
from .progress import progress_bar
from .run import Run
from .validate import check_images


def chapter1_fooling_images(run: Run, progress: bool = False) -> torch.Tensor:
    """The fooling images of chapter 1: its CNN (trained on MNIST with ``run.profile``'s
    budget, cached in ``run.cache_dir``) attacked with its settings.

    Computed once per profile and process (the attack is deterministic; ``progress``
    shows its bars the first time). Returns ``(R, 1, 28, 28)``, R =
    ``run.profile.attack.restarts``."""
    key = (run.profile, run.cache_dir, run.data_root, run.device)
    if key not in _FOOLING_IMAGES:
        _FOOLING_IMAGES[key] = _chapter1_attack(run, progress)
    return _FOOLING_IMAGES[key].clone()


_FOOLING_IMAGES: dict[tuple, torch.Tensor] = {}

#: The kinds of OOD set of :func:`ood_sets` besides the other dataset, in its order.
SYNTHETIC_SETS = (
    "uniform noise",
    "fooling (ch. 1)",
    "fooling (this model)",
    "ID + strokes",
    "ID + text",
)

#: The detectors of :func:`make_detectors` (and :func:`detector_needs`), in their order.
METHODS = (
    "MSP",
    "MaxLogit",
    "Energy",
    "Entropy",
    "ODIN",
    "Mahalanobis",
    "KNN (k=50)",
    "MC dropout",
    "ensemble entropy",
    "mutual information",
    "twin max-KL",
)


def set_names(id_name: str) -> tuple[str, ...]:
    """The names :func:`ood_sets` may give its sets for a model trained on ``id_name``,
    in its order: the other dataset's display name, then :data:`SYNTHETIC_SETS`."""
    return (data.DISPLAY[data.other_dataset(id_name)], *SYNTHETIC_SETS)


def _chapter1_attack(run: Run, progress: bool) -> torch.Tensor:
    cnn = cache.get_ensemble(
        train.TrainConfig.from_profile(run.profile, dataset="mnist", n_members=1),
        run,
        progress=progress,
    )[0][0]
    return _fooling_attack(cnn, run.profile, progress).images


def _fooling_attack(
    model: nn.Module, prof: Profile, progress: bool
) -> attacks.AttackResult:
    """The fooling attack of chapters 1, 9 and 10 on ``model``, with ``prof``'s
    budget."""
    return attacks.fooling_attack(
        model,
        n_restarts=prof.attack.restarts,
        steps=prof.attack.steps,
        threshold=0.8,
        seed=0,
        progress=progress,
    )


def ood_sets(
    run: Run,
    id_name: str,
    model: nn.Module,
    id_images: torch.Tensor,
    n_other: int | None = None,
    n_noise: int | None = None,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """The out-of-distribution sets for ``model``, trained on ``id_name``, each ``(M, 1,
    28, 28)``.

    Args:
        id_name: the training dataset of ``model``.
        model: the classifier under test (the fooling attack is aimed at it).
        id_images: its in-distribution test images; the corrupted sets draw strokes over
            the even-indexed and letters over the odd-indexed ones (seed 0).
        n_other: images of the other dataset's test split (default: as many as
            ``id_images``).
        n_noise: uniform-noise images (default: the profile's ``n_noise``).
        run: the chapter's run context: its profile sets the attacks and defaults, its
            data folder holds the other dataset, its cache chapter 1's CNN.

    Returns:
        ``{name: images}`` with the names ``"<other dataset>"``, ``"uniform noise"``,
        ``"fooling (ch. 1)"``, ``"fooling (this model)"``, ``"ID + strokes"``, ``"ID +
        text"``. When ``model`` is chapter 1's CNN (member 0 of the MNIST twins), its
        own fooling images *are* chapter 1's: the set is listed once, as ``"fooling
        (this model)"``.
    """
    prof = run.profile
    check_images(id_images, channels=1)
    other = data.other_dataset(id_name)
    n_other = id_images.shape[0] if n_other is None else n_other
    attack = _fooling_attack(model, prof, progress)
    chapter1 = chapter1_fooling_images(run, progress)
    sets = {
        data.DISPLAY[other]: data.load(
            other, "test", n=n_other, root=run.data_root
        ).images,
        "uniform noise": data.uniform_noise(n_noise or prof.n_noise, seed=1),
        "fooling (ch. 1)": chapter1,
        "fooling (this model)": attack.images,
        "ID + strokes": data.corrupt(id_images[0::2], "strokes", seed=0),
        "ID + text": data.corrupt(id_images[1::2], "text", seed=0),
    }
    # the model is chapter 1's CNN: one set, not two
    if torch.equal(chapter1, attack.images.cpu()):
        del sets["fooling (ch. 1)"]
    return sets


def evaluate(
    detectors: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    ensemble: Ensemble,
    id_images: torch.Tensor,
    sets: dict[str, torch.Tensor],
    member: int = 0,
    progress: bool = True,
    outputs: dict[str, Outputs] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, torch.Tensor]]]:
    """Score every detector on the in-distribution images and every set; compute the
    metrics.

    One forward pass of the ensemble per set is shared by the detectors that only need
    logits, features or log-probabilities (see :func:`ood_utils.detectors.score`); the
    others (ODIN, MC dropout) run on the images. Pass ``outputs``
    (:func:`forward_outputs` of the ensemble on ``{"ID": id_images, **sets}``) to reuse
    a forward pass made before.

    Returns:
        ``(table, scores)``: ``table`` has one row per (method, set) with AUROC,
        AUPR-IN, AUPR-OUT and FPR@95TPR (out-of-distribution positive);
        ``scores[method][set]`` are the scores ``(M,)``, with the in-distribution ones
        under ``"ID"``.
    """
    images = {"ID": id_images, **sets}
    if outputs is None:
        outputs = {k: forward_outputs(ensemble, v) for k, v in images.items()}
    elif outputs.keys() != images.keys():
        raise ValueError(f"outputs cover {sorted(outputs)}, expected {sorted(images)}")
    all_scores: dict[str, dict[str, torch.Tensor]] = {}
    rows = []
    for method, det in progress_bar(
        detectors.items(), desc="detectors", progress=progress
    ):
        all_scores[method] = {
            k: score(det, v, outputs[k], member=member) for k, v in images.items()
        }
        for name in sets:
            rows.append(
                {
                    "method": method,
                    "OOD set": name,
                    **metrics.ood_metrics(
                        all_scores[method]["ID"], all_scores[method][name]
                    ),
                }
            )
    return pd.DataFrame(rows), all_scores


# --- the contestants of chapter 9, and how the twins rank among them
# ----------------------------------------------


def make_detectors(
    twins: Ensemble, train_set: data.ImageData, mc_samples: int
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Every method of chapter 9 for ``twins``; member 0 is "the model".

    Mahalanobis and KNN are fitted on the penultimate features ``(n_train, D)`` of the
    model's own training images; ODIN keeps ``pytorch-ood``'s defaults; MC dropout
    averages the softmax of ``mc_samples`` passes with dropout on. The ensemble scores
    and the twin score use both members. Names and costs: :func:`detector_needs`."""
    from pytorch_ood.detector import (
        KNN,
        MCD,
        ODIN,
        EnergyBased,
        Entropy,
        Mahalanobis,
        MaxLogit,
        MaxSoftmax,
    )

    model = twins[0]
    feats = forward_outputs(Ensemble([model]), train_set.images).features[0]
    return {
        "MSP": MaxSoftmax(model),
        "MaxLogit": MaxLogit(model),
        "Energy": EnergyBased(model),
        "Entropy": Entropy(model),
        "ODIN": ODIN(model),
        "Mahalanobis": Mahalanobis(model.features).fit_features(
            feats, train_set.labels
        ),
        "KNN (k=50)": KNN(model.features, k=50).fit_features(feats, train_set.labels),
        "MC dropout": MCD(model, samples=mc_samples, mode="mean"),
        "ensemble entropy": TwinDetector(twins, score="entropy_of_mean"),
        "mutual information": TwinDetector(twins, score="mutual_information"),
        "twin max-KL": TwinDetector(twins, score="twin"),
    }


def detector_needs(mc_samples: int) -> dict[str, tuple[str, str]]:
    """Each method of :func:`make_detectors`: ``(implementation, what it needs)``."""
    return {
        "MSP": ("pytorch-ood", "the model only"),
        "MaxLogit": ("pytorch-ood", "the model only"),
        "Energy": ("pytorch-ood", "the model only"),
        "Entropy": ("pytorch-ood", "the model only"),
        "ODIN": ("pytorch-ood", "1 backward + 2 forward passes; T and eps"),
        "Mahalanobis": ("pytorch-ood", "ID training data with labels"),
        "KNN (k=50)": ("pytorch-ood", "ID training data (features); k"),
        "MC dropout": (
            "pytorch-ood",
            f"dropout in training; {mc_samples} forward passes",
        ),
        "ensemble entropy": ("ood_utils", "a second trained network"),
        "mutual information": ("ood_utils", "a second trained network"),
        "twin max-KL": (
            "ood_utils",
            "a second network trained jointly; ID data for the 10x rule",
        ),
    }


def wins_and_losses(long: pd.DataFrame, method: str = "twin max-KL") -> pd.DataFrame:
    """How ``method`` ranks in each (direction, OOD set) case of ``long`` (rows
    ``method``, ``OOD set``, ``direction``, ``AUROC``): its AUROC, MSP's, the best
    method and its AUROC, and ``method``'s rank (1 = best), indexed by (direction, OOD
    set)."""
    rows = []
    for (direction, ood_set), g in long.groupby(["direction", "OOD set"], sort=False):
        g = g.set_index("method")["AUROC"]
        rows.append(
            {
                "direction": direction,
                "OOD set": ood_set,
                method: g[method],
                "MSP": g["MSP"],
                "best method": g.idxmax(),
                "best AUROC": g.max(),
                "twin rank": int((g > g[method]).sum()) + 1,
            }
        )
    return pd.DataFrame(rows).set_index(["direction", "OOD set"])


def bottom_line(label: str, summary: pd.DataFrame, n_methods: int) -> str:
    """One bullet: how often the twin score is the best of ``n_methods`` in the cases
    of ``summary`` (:func:`wins_and_losses`), its median rank, and where it ranks
    highest."""
    ranks = summary["twin rank"]
    top = ranks.min()
    where = "; ".join(
        f"{data.DISPLAY[data.trained_on(d)]} model, {s}"
        for d, s in summary.index[ranks == top]
    )
    return (
        f"- **{label}**: best of {n_methods} methods in **{int((ranks == 1).sum())}** "
        f"of **{len(summary)}** cases, median rank **{ranks.median():.0f}**; "
        + (
            f"it wins on {where}."
            if top == 1
            else f"its best rank, **{top}**, on {where}."
        )
    )
