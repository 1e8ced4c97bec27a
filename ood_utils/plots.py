"""Figures used across the chapters: image grids, score histograms, ROC curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from . import data
from .validate import as_numpy, check_images, check_scores

if TYPE_CHECKING:
    import pandas

#: Scores at or below this are drawn at this value on log axes (a score of exactly 0 has
#: no log).
LOG_FLOOR = 1e-8


def image_grid(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 10,
    size: float = 1.3,
    suptitle: str | None = None,
) -> Figure:
    """Show ``images: (B, 1, H, W)`` in ``[0, 1]`` as a grid, optionally one title per
    image."""
    check_images(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    row_height = size + (0.3 if titles is not None else 0.0)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(size * ncols, row_height * nrows + (0.4 if suptitle else 0)),
        squeeze=False,
    )
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


def score_histograms(
    scores: Mapping[str, torch.Tensor | np.ndarray],
    reference: float | None = None,
    k: float | None = None,
    bins: int = 60,
    xlabel: str = "twin score (nats)",
    ax: plt.Axes | None = None,
) -> Figure:
    """Overlaid histograms of a score per dataset on a log x-axis (density per dataset).

    Scores below :data:`LOG_FLOOR` (e.g. exactly 0) are drawn at the floor. Dashed
    lines mark ``reference`` and ``k * reference`` when given.
    """
    if not scores:
        raise ValueError("scores is empty: pass {dataset name: scores}")
    arrays = {
        name: np.maximum(check_scores(s, name), LOG_FLOOR) for name, s in scores.items()
    }
    lo = min(a.min() for a in arrays.values())
    hi = max(a.max() for a in arrays.values())
    edges = np.geomspace(lo, hi * 1.0001 if hi > lo else lo * 10, bins + 1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4))
    else:
        fig = ax.figure
    for name, a in arrays.items():
        ax.hist(
            a,
            bins=edges,
            histtype="step",
            linewidth=1.6,
            density=False,
            weights=np.full(len(a), 1.0 / len(a)),
            label=f"{name} (n={len(a)})",
        )
    if reference is not None:
        ax.axvline(
            reference, color="k", linestyle=":", label=f"reference {reference:.2g}"
        )
        if k is not None:
            ax.axvline(
                k * reference, color="k", linestyle="--", label=f"{k:g} x reference"
            )
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of inputs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_curves(
    pairs: Mapping[str, tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]],
    ax: plt.Axes | None = None,
) -> Figure:
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


def heatmap(
    values: pandas.DataFrame,
    ax: plt.Axes | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "RdYlGn",
    fmt: str = "{:.2f}",
    highlight: str | None = None,
) -> Figure:
    """A table of numbers (rows x columns, e.g. method x OOD set AUROC) as an annotated
    heat map.

    ``highlight`` names a row to draw in bold (e.g. the book's own method).
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"values must be a non-empty 2-D table, got shape {arr.shape}")
    if ax is None:
        fig, ax = plt.subplots(
            figsize=(1.1 * arr.shape[1] + 2.5, 0.42 * arr.shape[0] + 1.2)
        )
    else:
        fig = ax.figure
    im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(
        range(arr.shape[1]), [str(c) for c in values.columns], rotation=30, ha="right"
    )
    ax.set_yticks(range(arr.shape[0]), [str(r) for r in values.index])
    for i in range(arr.shape[0]):
        bold = highlight is not None and str(values.index[i]) == highlight
        for j in range(arr.shape[1]):
            if np.isfinite(arr[i, j]):
                ax.text(
                    j,
                    i,
                    fmt.format(arr[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    fontweight="bold" if bold else "normal",
                )
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    fig.tight_layout()
    return fig


def log_unit(
    values: torch.Tensor | np.ndarray, vmax: float | None = None, floor: float = 1e-3
) -> np.ndarray:
    """Non-negative values mapped to [0, 1] on a log scale from ``floor * vmax`` to
    ``vmax`` (default ``vmax``: the 99th percentile)."""
    v = np.clip(as_numpy(values), 0, None)
    top = (
        vmax if vmax is not None and vmax > 0 else (float(np.quantile(v, 0.99)) or 1.0)
    )
    lo = np.log(floor * top)
    return np.clip((np.log(np.maximum(v, floor * top)) - lo) / (np.log(top) - lo), 0, 1)


def _text_cells(text: str, width: int) -> tuple[list[tuple[int, int, int]], int]:
    """Where each character of ``text`` is drawn: ``(row, col, index into text)``, lines
    wrapped at ``width`` (newlines take no cell), and the number of rows."""
    cells: list[tuple[int, int, int]] = []
    row = col = 0
    for i, ch in enumerate(text):
        if ch == "\n":
            row, col = row + 1, 0
            continue
        if col == width:
            row, col = row + 1, 0
        cells.append((row, col, i))
        col += 1
    return cells, row + 1


def coloured_text(
    text: str,
    values: torch.Tensor | np.ndarray,
    vmax: float | None = None,
    boxes: Sequence[tuple[int, int]] = (),
    width: int = 80,
    title: str | None = None,
    cmap: str = "Reds",
    floor: float = 1e-3,
) -> Figure:
    """``text`` drawn in a monospace grid, each character's cell coloured by ``values``
    (log scale from ``floor * vmax`` to ``vmax``, see :func:`log_unit`).

    Lines longer than ``width`` wrap. Characters inside the ``(start, end)`` spans of
    ``boxes`` are drawn in bold blue with a blue bar in the margin (e.g. spliced-in
    paragraphs)."""
    vals = as_numpy(values)
    if vals.shape != (len(text),):
        raise ValueError(f"{len(text)} characters but values of shape {vals.shape}")
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    cells, nrows = _text_cells(text, width)
    colours = plt.get_cmap(cmap)(log_unit(vals, vmax, floor))
    grid = np.ones((nrows, width, 4))
    boxed = np.zeros(len(text), dtype=bool)
    for a, b in boxes:
        boxed[a:b] = True
    fig, ax = plt.subplots(figsize=(0.11 * width + 0.4, 0.2 * nrows + 0.6))
    for r, c, i in cells:
        grid[r, c] = colours[i]
    ax.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        extent=(-0.5, width - 0.5, nrows - 0.5, -0.5),
    )
    for r, c, i in cells:
        if not text[i].isspace():
            ax.text(
                c,
                r,
                text[i],
                ha="center",
                va="center",
                fontsize=7,
                family="monospace",
                color="blue" if boxed[i] else "black",
                fontweight="bold" if boxed[i] else "normal",
            )
    for r in sorted({r for r, _, i in cells if boxed[i]}):
        ax.plot(
            [-0.9, -0.9], [r - 0.5, r + 0.5], color="blue", linewidth=2, clip_on=False
        )
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def rank_chart(
    summaries: Mapping[str, pandas.DataFrame],
    n_methods: int,
    method: str = "twin max-KL",
) -> Figure:
    """Where ``method`` ranks in each (direction, OOD set) case, one marker series per
    ``label -> summary`` (:func:`ood_utils.benchmark.wins_and_losses` tables, indexed
    by (direction, OOD set), column ``"twin rank"``); rank 1, the best, at the top."""
    widest = max(summaries.values(), key=len)  # its order first, then any others
    cases = list(
        dict.fromkeys(
            [*widest.index, *(c for s in summaries.values() for c in s.index)]
        )
    )
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for (label, summary), marker in zip(summaries.items(), "oD^s"):
        x = [cases.index(c) for c in summary.index]
        ax.plot(x, summary["twin rank"], marker, label=label, ms=8, alpha=0.8)
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.set_ylim(n_methods + 0.5, 0.5)
    ax.set_yticks(range(1, n_methods + 1))
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels(
        [f"{data.DISPLAY[data.trained_on(d)]} model\n{s}" for d, s in cases],
        fontsize=7,
        rotation=30,
    )
    ax.set_ylabel(f"rank of {method}\n(1 = best of {n_methods})")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
