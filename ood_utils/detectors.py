"""Detectors with `pytorch-ood`'s interface: the twin score, and the weights-only cosine
score.

Both classes subclass :class:`pytorch_ood.api.Detector`, so they behave like the
library's own detectors: construct them from a model, optionally ``fit`` them on a
loader of in-distribution batches ``(x, y)``, and call them on a batch ``x: (B, C, H,
W)`` to get outlier scores ``(B,)`` (higher = more out-of-distribution) on the
detector's device. They plug into :class:`pytorch_ood.metrics.OODMetrics` and plain
``for x, y in loader`` loops::

    detector = TwinDetector(twins).fit(id_loader)      # reference = mean ID score
    metrics = OODMetrics()
    for x, y in test_loader:                           # y < 0 marks OOD inputs
        metrics.update(detector(x), y)
    metrics.compute()["AUROC"]
    detector.flags(x)                                  # the 10x / disagreement rule

:func:`score` runs any detector over a large image tensor in batches, reusing one
forward pass (:func:`forward_outputs`) for the detectors that only need logits or
features."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_ood.api import (
    Detector,
    FeaturesDetector,
    LogitsDetector,
    RequiresFittingException,
)
from torch import nn

from . import scores
from .models import Ensemble, eval_mode
from .progress import progress_bar
from .validate import check_images, check_log_probs

#: Ensemble scores a :class:`TwinDetector` can compute: ``(N, B, C) -> (B,)``, higher =
#: more OOD.
ENSEMBLE_SCORES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "twin": scores.twin_score,  # max directed KL: the book's score
    "symmetric_kl": scores.symmetric_kl,
    "mutual_information": scores.mutual_information,  # deep-ensemble "epistemic" part
    "entropy_of_mean": scores.entropy_of_mean,  # deep-ensemble total uncertainty
}


def _images_of(batch: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``x`` and (if present) ``y`` of a loader batch: a tensor ``x`` or a sequence
    ``(x, y, ...)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if (
        isinstance(batch, (tuple, list))
        and batch
        and isinstance(batch[0], torch.Tensor)
    ):
        y = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], y
    raise ValueError(
        f"expected batches x or (x, y, ...) of tensors, got {type(batch).__name__}"
    )


class TwinDetector(Detector):
    """The twin (ensemble) detector: divergence between the members' predictions.

    Args:
        ensemble: a trained :class:`~ood_utils.models.Ensemble` of ``N >= 2`` members.
        score: one of :data:`ENSEMBLE_SCORES`; ``"twin"`` (default) is
            ``max_{i != j} KL(p_i || p_j)``.
        k: multiplier of the flag rule: flag where ``score > k * reference`` or members
            disagree.

    The ensemble is evaluated in eval mode (its previous mode is restored afterwards),
    under ``torch.no_grad``. Scoring needs no fitting; :meth:`flags` needs the reference
    from :meth:`fit`.

    Shapes: ``x: (B, C, H, W)`` -> scores ``(B,)`` in nats (``entropy_of_mean``: nats of
    entropy)."""

    requires_fit = False  #: scores need no fit; only :meth:`flags` needs the reference

    def __init__(
        self, ensemble: Ensemble, score: str = "twin", k: float = 10.0
    ) -> None:
        if not isinstance(ensemble, Ensemble):
            raise ValueError(
                "ensemble must be an ood_utils.models.Ensemble, got "
                f"{type(ensemble).__name__}"
            )
        if len(ensemble) < 2:
            raise ValueError(
                f"a twin detector needs at least 2 members, got {len(ensemble)}"
            )
        if score not in ENSEMBLE_SCORES:
            raise ValueError(
                f"unknown score {score!r}: expected one of {sorted(ENSEMBLE_SCORES)}"
            )
        if not k > 0:
            raise ValueError(f"k must be positive, got {k}")
        self.ensemble = ensemble
        self.score_name = score
        self.k = float(k)
        self.reference: float | None = (
            None  #: mean score over the data given to :meth:`fit`
        )

    def __repr__(self) -> str:
        ref = (
            "not fitted"
            if self.reference is None
            else f"reference={self.reference:.4g}"
        )
        return (
            f"TwinDetector(N={len(self.ensemble)}, score={self.score_name!r}, "
            f"k={self.k:g}, {ref})"
        )

    @torch.no_grad()
    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """The members' log-probabilities ``(N, B, C)`` for images ``x: (B, C, H,
        W)``."""
        check_images(x)
        device = self.device
        with eval_mode(self.ensemble):
            return self.ensemble(x.to(device) if device is not None else x)

    def predict_log_probs(self, log_probs: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)`` from log-probabilities ``(N, B, C)`` computed elsewhere."""
        return ENSEMBLE_SCORES[self.score_name](
            check_log_probs(log_probs, min_members=2)
        )

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Outlier scores ``(B,)`` for images ``x: (B, C, H, W)``; higher = more
        out-of-distribution."""
        return self.predict_log_probs(self.log_probs(x))

    def fit(self, data_loader: Iterable) -> TwinDetector:
        """Set :attr:`reference` to the mean score over in-distribution data.

        Args:
            data_loader: batches ``(x, y)`` (e.g. a ``DataLoader``) or plain ``x``;
                batches with labels ``y < 0`` (pytorch-ood's mark of OOD inputs) are
                left out. The book calibrates on in-distribution *test* data.
        """
        chunks, n_batches, n_seen = [], 0, 0
        for batch in data_loader:
            x, y = _images_of(batch)
            s = self.predict(x)
            n_batches, n_seen = n_batches + 1, n_seen + len(s)
            chunks.append(s[y.to(s.device) >= 0] if y is not None else s)
        id_scores = torch.cat(chunks) if chunks else torch.empty(0)
        if id_scores.numel() == 0:
            found = (
                "no batch"
                if n_batches == 0
                else f"{n_seen} inputs, all labelled y < 0 (out-of-distribution)"
            )
            raise ValueError(
                "fit needs in-distribution inputs to calibrate on, but the loader "
                f"yielded {found}: pass in-distribution test data (labels >= 0, or "
                "plain x)"
            )
        return self.fit_scores(id_scores)

    def fit_log_probs(self, log_probs: torch.Tensor) -> TwinDetector:
        """:meth:`fit` from in-distribution log-probabilities ``(N, B, C)``."""
        return self.fit_scores(self.predict_log_probs(log_probs))

    def fit_scores(self, id_scores: torch.Tensor) -> TwinDetector:
        """:meth:`fit` from in-distribution scores ``(B,)``."""
        self.reference = scores.reference(id_scores.cpu())
        return self

    def threshold(self) -> float:
        """The score above which an input is flagged: ``k * reference``."""
        if self.reference is None:
            raise RequiresFittingException(
                "call fit() with in-distribution data before flags()"
            )
        return self.k * self.reference

    def flags_log_probs(self, log_probs: torch.Tensor) -> torch.Tensor:
        """:meth:`flags` from log-probabilities ``(N, B, C)``: ``(B,)`` bool."""
        self.threshold()  # raises if not fitted
        return scores.flag(
            self.predict_log_probs(log_probs),
            self.reference,
            self.k,
            scores.disagreement(log_probs),
        )

    def flags(self, x: torch.Tensor) -> torch.Tensor:
        """``True`` where ``score > k * reference`` or any two members predict different
        classes. ``(B,)`` bool."""
        return self.flags_log_probs(self.log_probs(x))


# --- Running detectors over many images
# ----------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    """One forward pass of every member over a set of images.

    Attributes:
        features: ``(N, M, D)`` penultimate activations.
        logits: ``(N, M, C)``.
    """

    features: torch.Tensor
    logits: torch.Tensor

    @property
    def log_probs(self) -> torch.Tensor:
        """``(N, M, C)`` log-softmax of the logits."""
        return F.log_softmax(self.logits, dim=-1)


@torch.inference_mode()
def forward_outputs(
    ensemble: Ensemble, images: torch.Tensor, batch_size: int = 1000
) -> Outputs:
    """Features and logits of every member for ``images: (M, C, H, W)``, in eval mode,
    on the CPU.

    The members must have ``features(x)`` and ``head(features)`` (the book's models do).
    """
    check_images(images)
    for m in ensemble.members:
        if not (hasattr(m, "features") and hasattr(m, "head")):
            raise ValueError(f"{type(m).__name__} has no features()/head() methods")
    device = next(ensemble.parameters()).device
    feats, logits = [], []
    with eval_mode(ensemble):
        for x in images.split(batch_size):
            f = torch.stack([m.features(x.to(device)) for m in ensemble.members])
            feats.append(f.cpu())
            logits.append(
                torch.stack([m.head(fi) for m, fi in zip(ensemble.members, f)]).cpu()
            )
    return Outputs(features=torch.cat(feats, 1), logits=torch.cat(logits, 1))


def score(
    detector: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    outputs: Outputs | None = None,
    member: int = 0,
    batch_size: int = 1000,
    progress: bool = False,
    desc: str | None = None,
) -> torch.Tensor:
    """Outlier scores ``(M,)`` (CPU) of ``detector`` for ``images: (M, C, H, W)``.

    With ``outputs`` (from :func:`forward_outputs` on the same images), detectors that
    work on representations skip the forward pass: a :class:`TwinDetector` scores the
    members' log-probabilities, a pytorch-ood logits (features) detector the logits
    (features) of member ``member``. Any other detector is called on the images in
    batches of ``batch_size``."""
    check_images(images)
    if outputs is not None:
        if outputs.logits.shape[1] != images.shape[0]:
            raise ValueError(
                f"outputs cover {outputs.logits.shape[1]} images, not {images.shape[0]}"
            )
        if isinstance(detector, TwinDetector):
            return detector.predict_log_probs(outputs.log_probs).cpu()
        if isinstance(detector, LogitsDetector):
            return detector.predict_logits(outputs.logits[member]).cpu()
        if isinstance(detector, FeaturesDetector):
            return detector.predict_features(outputs.features[member]).cpu()
    chunks = images.split(batch_size)
    return torch.cat(
        [
            detector(x).detach().cpu()
            for x in progress_bar(chunks, desc=desc, progress=progress)
        ]
    )


# --- The weights-only cosine score
# ---------------------------------------------------------


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of ``(B, D)`` tensors, as float64; exactly 1 where the
    rows are identical, including two zero rows (an activation the perturbation did not
    move at all)."""
    na, nb = a.norm(dim=1).double(), b.norm(dim=1).double()
    cos = (a * b).sum(1).double() / (na * nb).clamp_min(1e-300)
    unmoved = (a == b).all(dim=1)
    return torch.where(unmoved, torch.ones_like(cos), cos.clamp(-1.0, 1.0))


def layer_nodes(model: nn.Module) -> dict[str, str]:
    """The model's named layers for :func:`cosine_scores`: ``{name: torch.fx node}``.

    Uses the model's ``layers`` attribute (the book's models define one); otherwise
    raises ``ValueError`` listing the node names that ``torchvision``'s feature
    extraction accepts."""
    layers = getattr(model, "layers", None)
    if isinstance(layers, dict) and layers:
        return dict(layers)
    from torchvision.models.feature_extraction import get_graph_node_names

    raise ValueError(
        f"{type(model).__name__} defines no `layers`; pass a dict {{name: node}} with "
        f"nodes from {get_graph_node_names(model)[1]}"
    )


@dataclass(frozen=True)
class CosineBudget:
    """What the cosine sweep of chapter 10 spends: ``n`` images per set (``None`` = the
    profile's whole test subset) and ``samples`` random perturbations per image."""

    n: int | None
    samples: int


#: The cosine sweep's budget in each compute profile (:mod:`ood_utils.profiles`).
COSINE_BUDGETS: dict[str, CosineBudget] = {
    "fast": CosineBudget(500, 3),
    "full": CosineBudget(None, 16),
}


@torch.no_grad()
def cosine_scores(
    model: nn.Module,
    images: torch.Tensor,
    layers: dict[str, str] | None = None,
    sigmas: Iterable[float] = (0.05,),
    n_samples: int = 8,
    seed: int = 0,
    batch_size: int = 500,
    progress: bool = False,
) -> dict[tuple[str, float], torch.Tensor]:
    """Mean cosine similarity between a layer's activations for clean and perturbed
    inputs.

    For each image ``x`` and layer ``l``, with ``K = n_samples`` Gaussian perturbations
    ``e_k ~ N(0, I)``: ``score = mean_k cos(f_l(x), f_l(x + sigma * e_k))``. A score
    near 1 means the representation barely moves under the perturbation (the "pinched"
    regions the method expects off-distribution); higher = more out-of-distribution.
    Every sigma reuses the same draws ``e_k``, and all layers come from one forward
    pass.

    Args:
        model: a classifier (evaluated in eval mode; its mode is restored).
        images: ``(M, C, H, W)``.
        layers: ``{name: node}`` (torchvision feature-extraction node names); default
            :func:`layer_nodes` of the model.
        sigmas: perturbation sizes (standard deviation in pixel units; pixels are in [0,
            1]).
        n_samples: perturbations per image ``K``.
        seed: seed of the perturbations (same seed and batch_size: same scores).

    Returns:
        ``{(layer name, sigma): (M,)}`` float64 scores in ``[-1, 1]`` on the CPU.
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    check_images(images)
    layers = layer_nodes(model) if layers is None else dict(layers)
    sigmas = [float(s) for s in sigmas]
    if not layers:
        raise ValueError("layers is empty")
    if not sigmas or any(not (s >= 0 and s == s) for s in sigmas):
        raise ValueError(f"sigmas must be non-negative numbers, got {sigmas}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    totals = {(name, s): [] for name in layers for s in sigmas}
    with eval_mode(model):
        extractor = create_feature_extractor(
            model, {node: name for name, node in layers.items()}
        )
        for x in progress_bar(
            images.split(batch_size), desc="cosine scores", progress=progress
        ):
            x = x.to(device)
            clean = {k: v.flatten(1) for k, v in extractor(x).items()}
            acc = {
                key: torch.zeros(x.shape[0], dtype=torch.float64, device=device)
                for key in totals
            }
            for _ in range(n_samples):
                e = torch.randn(x.shape, generator=gen).to(device)
                for s in sigmas:
                    moved = extractor(x + s * e)
                    for name in layers:
                        acc[name, s] += _cosine(clean[name], moved[name].flatten(1))
            for key in totals:
                totals[key].append((acc[key] / n_samples).cpu())
    return {key: torch.cat(parts) for key, parts in totals.items()}


class CosineDetector(Detector):
    """The weights-only detector of chapter 10: :func:`cosine_scores` of one layer and
    one sigma.

    Needs nothing but the trained model: no data to fit, no labels, no change to
    training, ``n_samples + 1`` forward passes per input.

    Args:
        model: the trained classifier; ``layer`` is one of its :func:`layer_nodes`.
        layer, sigma, n_samples, seed: see :func:`cosine_scores`.
        invert: score ``1 - similarity`` instead, i.e. inputs whose representation moves
            *more* are more out-of-distribution (the opposite of the "pinched" claim).

    Shapes: ``x: (B, C, H, W)`` -> ``(B,)``, higher = more out-of-distribution.
    """

    requires_fit = False

    def __init__(
        self,
        model: nn.Module,
        layer: str = "penultimate",
        sigma: float = 0.05,
        n_samples: int = 8,
        seed: int = 0,
        invert: bool = False,
    ) -> None:
        nodes = layer_nodes(model)
        if layer not in nodes:
            raise ValueError(
                f"unknown layer {layer!r}: expected one of {sorted(nodes)}"
            )
        if not sigma >= 0:
            raise ValueError(f"sigma must be non-negative, got {sigma}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        self.model = model
        self.layer, self.sigma, self.n_samples, self.seed = (
            layer,
            float(sigma),
            n_samples,
            seed,
        )
        self.invert = bool(invert)

    def __repr__(self) -> str:
        return (
            f"CosineDetector(layer={self.layer!r}, sigma={self.sigma:g}, "
            f"n_samples={self.n_samples}, invert={self.invert})"
        )

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Mean cosine similarity ``(B,)`` (``1 -`` it when ``invert``); higher = more
        out-of-distribution."""
        check_images(x)
        layers = {self.layer: layer_nodes(self.model)[self.layer]}
        sim = cosine_scores(
            self.model,
            x,
            layers,
            [self.sigma],
            self.n_samples,
            self.seed,
            batch_size=x.shape[0],
        )[self.layer, self.sigma]
        return (1.0 - sim if self.invert else sim).to(self.device or "cpu")
