"""Figures used across the chapters: image grids, score histograms, ROC curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from .validate import check_images, check_scores

#: Scores at or below this are drawn at this value on log axes (a score of exactly 0 has no log).
LOG_FLOOR = 1e-8


def image_grid(images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 10,
               size: float = 1.3, suptitle: str | None = None) -> Figure:
    """Show ``images: (B, 1, H, W)`` in ``[0, 1]`` as a grid, optionally one title per image."""
    check_images(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    row_height = size + (0.3 if titles is not None else 0.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, row_height * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def score_histograms(scores: Mapping[str, torch.Tensor | np.ndarray], reference: float | None = None,
                     k: float | None = None, bins: int = 60, xlabel: str = "twin score (nats)",
                     ax: plt.Axes | None = None) -> Figure:
    """Overlaid histograms of a score per dataset on a log x-axis (density per dataset).

    Scores below :data:`LOG_FLOOR` (e.g. exactly 0) are drawn at the floor. Dashed
    lines mark ``reference`` and ``k * reference`` when given.
    """
    if not scores:
        raise ValueError("scores is empty: pass {dataset name: scores}")
    arrays = {name: np.maximum(check_scores(s, name), LOG_FLOOR) for name, s in scores.items()}
    lo = min(a.min() for a in arrays.values())
    hi = max(a.max() for a in arrays.values())
    edges = np.geomspace(lo, hi * 1.0001 if hi > lo else lo * 10, bins + 1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4))
    else:
        fig = ax.figure
    for name, a in arrays.items():
        ax.hist(a, bins=edges, histtype="step", linewidth=1.6, density=False,
                weights=np.full(len(a), 1.0 / len(a)), label=f"{name} (n={len(a)})")
    if reference is not None:
        ax.axvline(reference, color="k", linestyle=":", label=f"reference {reference:.2g}")
        if k is not None:
            ax.axvline(k * reference, color="k", linestyle="--", label=f"{k:g} x reference")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of inputs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_curves(pairs: Mapping[str, tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]],
               ax: plt.Axes | None = None) -> Figure:
    """ROC curves, one per ``name -> (scores_id, scores_ood)``, OOD positive."""
    from .metrics import auroc

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
    else:
        fig = ax.figure
    for name, (s_in, s_out) in pairs.items():
        a_in, a_out = check_scores(s_in, "scores_id"), check_scores(s_out, "scores_ood")
        y = np.r_[np.zeros(len(a_in)), np.ones(len(a_out))]
        fpr, tpr, _ = roc_curve(y, np.r_[a_in, a_out])
        ax.plot(fpr, tpr, label=f"{name} (AUROC {auroc(a_in, a_out):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false-positive rate (ID flagged)")
    ax.set_ylabel("true-positive rate (OOD flagged)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
