"""Draw the introduction's schematic of the twin idea: book/figures/twin_idea.svg.

    python tools/intro_figure.py

A diagram, not a result: the bar heights are illustrative (no model is run). The
chapters compute the real distributions and scores.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "book" / "figures" / "twin_idea.svg"
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#555555"


def box(ax, xy, w, h, text, color):
    ax.add_patch(
        FancyBboxPatch(
            xy, w, h, boxstyle="round,pad=0.02", fc=color, ec="none", alpha=0.18
        )
    )
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=10)


def arrow(ax, a, b):
    ax.add_patch(
        FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color=GREY, lw=1.2)
    )


def bars(ax, x0, y0, probs, color, w=0.028):
    for k, p in enumerate(probs):
        ax.add_patch(plt.Rectangle((x0 + k * w, y0), w * 0.8, 0.16 * p, color=color))


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "twin-kl"
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.0)
    ax.axis("off")
    # training: one stream of batches, two initialisations
    box(ax, (0.01, 0.42), 0.15, 0.16, "the same\nbatches", "#999999")
    box(ax, (0.24, 0.66), 0.17, 0.18, "network A\ninit seed 0", BLUE)
    box(ax, (0.24, 0.16), 0.17, 0.18, "network B\ninit seed 1", ORANGE)
    arrow(ax, (0.165, 0.52), (0.235, 0.73))
    arrow(ax, (0.165, 0.48), (0.235, 0.27))
    ax.text(0.2, 0.95, "train together", ha="center", fontsize=11, weight="bold")
    # on familiar input: the softmax outputs agree
    ax.text(
        0.59, 0.95, "a digit (in-distribution)", ha="center", fontsize=11, weight="bold"
    )
    agree = np.array([0.02, 0.01, 0.03, 0.85, 0.01, 0.03, 0.01, 0.02, 0.01, 0.01])
    bars(ax, 0.46, 0.66, agree / agree.max(), BLUE)
    bars(ax, 0.46, 0.16, (agree + 0.01) / (agree + 0.01).max(), ORANGE)
    ax.text(
        0.6,
        0.5,
        "KL(A||B) small: the twins agree",
        ha="center",
        va="center",
        fontsize=10,
    )
    # on unfamiliar input: they extrapolate differently
    ax.text(
        0.9,
        0.95,
        "a shoe (out of distribution)",
        ha="center",
        fontsize=11,
        weight="bold",
    )
    a = np.array([0.05, 0.02, 0.6, 0.05, 0.03, 0.1, 0.05, 0.04, 0.03, 0.03])
    b = np.array([0.03, 0.04, 0.05, 0.04, 0.05, 0.06, 0.03, 0.5, 0.1, 0.1])
    bars(ax, 0.835, 0.66, a / a.max(), BLUE, w=0.016)
    bars(ax, 0.835, 0.16, b / b.max(), ORANGE, w=0.016)
    ax.text(
        0.9,
        0.5,
        "KL large: flag it",
        ha="center",
        va="center",
        fontsize=10,
        color="#b00020",
    )
    ax.text(
        0.5,
        0.02,
        "softmax outputs over the 10 classes (schematic)",
        ha="center",
        fontsize=9,
        color=GREY,
    )
    for x in (0.44, 0.815):
        ax.plot([x, x], [0.1, 0.9], color="#dddddd", lw=1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, bbox_inches="tight", metadata={"Date": None})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
