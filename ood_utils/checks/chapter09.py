"""Chapter 9, the baselines: the energy score, and the Mahalanobis distance."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._base import _as_tensor, _call, _fail, _matches, _ok, _own_work, _with_shape


def check_energy(
    fn: Callable[[torch.Tensor], torch.Tensor], temperature: float = 1.0
) -> bool:
    """Check an energy score ``fn: logits (B, C) -> (B,)`` = ``-T * logsumexp(logits /
    T)``.

    Higher means more out-of-distribution (the convention of ``pytorch_ood``'s
    ``EnergyBased``)."""
    g = torch.Generator().manual_seed(99)
    # large: naive exp overflows in float32
    logits = 4 * torch.randn(64, 10, generator=g, dtype=torch.float64) + 20
    want = -temperature * torch.logsumexp(logits / temperature, -1)
    got = _as_tensor(
        _call(fn, logits.clone(), what="the energy score"), "the energy score"
    )
    got = _with_shape(
        got,
        want,
        f"the energy score should have shape {tuple(want.shape)} for logits of shape "
        f"{tuple(logits.shape)}",
    )
    mistakes = {
        "the sign is flipped: in-distribution inputs have large logits and so *low* "
        "energy; return "
        "-T * logsumexp(logits / T) so that higher = more out-of-distribution": -want,
        "you returned minus the max logit (the MaxLogit score); the energy uses "
        "logsumexp": -logits.max(-1).values,
    }
    if _matches(
        got,
        want,
        f"the energy score matches -T logsumexp(logits / T) with T = {temperature}",
        mistakes,
    ):
        return True
    if not torch.isfinite(got).all():
        _fail(
            "NaN or inf: use torch.logsumexp instead of log(sum(exp(...))), which "
            "overflows"
        )
    _fail(
        f"the energy score differs from -T logsumexp(logits / T) (T = {temperature}) "
        f"by up to {float((got - want).abs().max()):.3g}"
    )


def _class_means(
    train: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted class labels ``(K,)`` and each class's mean feature vector ``(K,
    D)``."""
    classes = labels.unique()
    return classes, torch.stack([train[labels == c].mean(0) for c in classes])


def _mahalanobis_reference(
    train: torch.Tensor, labels: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """Smallest squared Mahalanobis distance to a class mean, with the covariance shared
    by the classes."""
    classes, means = _class_means(train, labels)
    centred = train - means[torch.searchsorted(classes, labels)]
    precision = torch.linalg.pinv(centred.T @ centred / len(train))
    d = x[:, None, :] - means[None]  # (B, K, D)
    return torch.einsum("bkd,de,bke->bk", d, precision, d).min(1).values


def _explain_mahalanobis(
    got: torch.Tensor,
    want: torch.Tensor,
    train: torch.Tensor,
    labels: torch.Tensor,
    x: torch.Tensor,
) -> None:
    """Fail with the likely mistake behind a wrong Mahalanobis score: the sign, the
    Euclidean distance, one mean for all classes, a square root, or none of these."""
    if float((got * want).sum()) < 0:
        _fail(
            "your scores have the wrong sign: higher should mean farther from every "
            "class"
        )
    _, means = _class_means(train, labels)
    euclid = (x[:, None] - means[None]).pow(2).sum(-1).min(1).values
    if torch.allclose(got, euclid, rtol=1e-4) or torch.allclose(
        got.sqrt(), euclid.sqrt(), rtol=1e-4
    ):
        _fail(
            "that is the Euclidean distance to the nearest mean: weigh the directions "
            "with the inverse of the features' covariance"
        )
    one_mean = _mahalanobis_reference(train, torch.zeros_like(labels), x)
    if torch.allclose(
        got / one_mean, (got / one_mean).mean().expand_as(got), rtol=1e-4
    ):
        _fail(
            "you measured the distance to the mean of all training features; take the "
            "nearest *class* mean, with the covariance of the features around their "
            "own class mean"
        )
    root = got / want.sqrt()
    if torch.allclose(root, root.mean().expand_as(root), rtol=1e-4):
        _fail(
            "close: return the *squared* distance (no square root), as pytorch-ood does"
        )
    _fail(
        "your scores are not the Mahalanobis distance to the nearest class mean: "
        "centre each training feature on its class mean, average the outer products "
        "into one covariance, invert it (torch.linalg.pinv), and take the smallest (x "
        "- mean)^T precision (x - mean) over the classes"
    )


def check_mahalanobis(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> bool:
    """Check ``fn(train_features (M, D), train_labels (M,), features (B, D)) -> (B,)``
    (chapter 9): the smallest squared Mahalanobis distance from each feature vector to a
    class mean, with one covariance shared by all classes, fitted on the training
    features (higher = more OOD).

    Tested on fresh, correlated features; a constant factor (dividing the covariance by
    ``M``, ``M - 1`` or ``M - K``) is accepted."""
    _own_work(
        fn, {"Mahalanobis": None}, "fit the class means and the shared covariance"
    )
    g = torch.Generator().manual_seed(15)
    mix = torch.randn(4, 4, generator=g, dtype=torch.float64)  # correlated features
    centres = 3 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(3).repeat_interleave(torch.tensor([60, 90, 150]))
    train = (
        centres[labels] + torch.randn(300, 4, generator=g, dtype=torch.float64) @ mix
    )
    x = torch.cat(
        [centres + 0.1, 4 * torch.randn(20, 4, generator=g, dtype=torch.float64)]
    )
    want = _mahalanobis_reference(train, labels, x)
    got = _as_tensor(
        _call(
            fn, train.clone(), labels.clone(), x.clone(), what="your Mahalanobis score"
        ),
        "your Mahalanobis score",
    )
    got = _with_shape(
        got,
        want,
        f"expected one score per input, shape {tuple(want.shape)} for features of "
        f"shape {tuple(x.shape)}",
    )
    ratio = got / want
    if (
        torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-4)
        and float(ratio.mean()) > 0
    ):
        return _ok(
            "your score matches the Mahalanobis distance to the nearest class mean on "
            "23 unseen inputs (up to the covariance's normalisation, a factor "
            f"{float(ratio.mean()):.4f})"
        )
    _explain_mahalanobis(got, want, train, labels, x)
