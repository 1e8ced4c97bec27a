"""Concept diagrams: what each chapter does, drawn as boxes and arrows.

A diagram is data: :data:`CONCEPTS` lists, per chapter, its stages from left to right;
a stage is one box or a column of boxes (two twins side by side, say), and every box of
a stage points to every box of the next. :func:`concept_diagram` draws one. Schematics,
not results: no model runs and no number is shown.
"""

from __future__ import annotations

from typing import NamedTuple

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

#: The colour of each kind of box: inputs, one network or another, a computation on
#: their outputs, and the question the chapter answers.
KIND_COLOURS = {
    "data": "#7f7f7f",
    "twin 1": "#1f77b4",
    "twin 2": "#ff7f0e",
    "step": "#9467bd",
    "score": "#2ca02c",
    "question": "#d62728",
}


class Box(NamedTuple):
    """One box of a diagram: its text (lines split by ``\\n``) and its kind, a key of
    :data:`KIND_COLOURS`."""

    text: str
    kind: str


Stage = tuple[Box, ...]

#: Each chapter's diagram, keyed by its number ("01".."11"): stages, left to right.
CONCEPTS: dict[str, tuple[Stage, ...]] = {
    "01": (
        (Box("random noise\nin [0, 1]", "data"),),
        (Box("trained CNN", "twin 1"),),
        (Box("gradient step on the pixels:\nraise the top class", "step"),),
        (Box("repeat until the CNN\nis over 80% sure", "question"),),
    ),
    "02": (
        (Box("one batch of\nMNIST digits", "data"),),
        (
            Box("twin 1\n(init seed a)", "twin 1"),
            Box("twin 2\n(init seed b)", "twin 2"),
        ),
        (Box("loss 1 + loss 2:\none optimiser step", "step"),),
        (Box("where do the\ntwins disagree?", "question"),),
    ),
    "03": (
        (Box("an input", "data"),),
        (Box("twin 1: softmax p1", "twin 1"), Box("twin 2: softmax p2", "twin 2")),
        (Box("twin score:\nmax of KL(p1 || p2)\nand KL(p2 || p1)", "score"),),
        (Box("divided by the mean\non MNIST test digits", "score"),),
        (Box("above 10:\nflag the input", "question"),),
    ),
    "04": (
        (Box("random noise", "data"),),
        (Box("attack twin 1 alone,\nor both twins jointly", "step"),),
        (Box("twin 1", "twin 1"), Box("twin 2", "twin 2")),
        (Box("confident, and\nnot flagged?", "question"),),
    ),
    "05": (
        (Box("twins trained on MNIST\n(or FashionMNIST)", "data"),),
        (
            Box("its own test set", "twin 1"),
            Box("the other dataset's\ntest set", "twin 2"),
        ),
        (Box("twin scores", "score"),),
        (Box("AUROC, and the\nshares flagged", "question"),),
    ),
    "06": (
        (Box("one set of\ninitial weights", "data"),),
        (Box("twin 1", "twin 1"), Box("twin 2: a copy", "twin 2")),
        (Box("same batches; dropout\nmasks shared or not", "step"),),
        (Box("does the score\nstill detect anything?", "question"),),
    ),
    "07": (
        (Box("the same batches", "data"),),
        (
            Box("member 1", "twin 1"),
            Box("member 2", "twin 2"),
            Box("... member N", "twin 2"),
        ),
        (
            Box("max pairwise KL", "score"),
            Box("mutual information", "score"),
            Box("entropy of the mean", "score"),
        ),
        (Box("AUROC for\nN = 2, 4 and 8", "question"),),
    ),
    "08": (
        (
            Box(
                "six training schemes:\ndropout, batch norm,\nweight decay, ...", "data"
            ),
        ),
        (Box("one pair of twins\nper scheme", "twin 1"),),
        (Box("test accuracy", "score"), Box("AUROC", "score")),
        (Box("does accuracy\npredict AUROC?", "question"),),
    ),
    "09": (
        (Box("member 1 of the twins:\nthe model", "twin 1"),),
        (
            Box(
                "standard detectors:\nMSP, energy, ODIN,\nMahalanobis, KNN, ...",
                "score",
            ),
            Box("twin score\n(also member 2)", "twin 2"),
        ),
        (Box("AUROC on six kinds\nof strange input", "question"),),
    ),
    "10": (
        (Box("input x", "data"), Box("x + small noise", "data")),
        (Box("one network:\na layer's activations", "twin 1"),),
        (Box("cosine similarity\nof the two", "score"),),
        (Box("does it tell\nstrange inputs apart?", "question"),),
    ),
    "11": (
        (Box("one English book", "data"),),
        (
            Box("character model 1", "twin 1"),
            Box("character model 2", "twin 2"),
        ),
        (Box("twin score per\ncharacter, per paragraph", "score"),),
        (Box("do other languages\nscore higher?", "question"),),
    ),
}


def _stage_boxes(
    stage: Stage, x: float, width: float
) -> list[tuple[float, float, float, float]]:
    """``(x, y, w, h)`` of each box of a stage, stacked and centred vertically."""
    gap, height = 0.06, min(0.34, (0.9 - 0.06 * (len(stage) - 1)) / len(stage))
    top = 0.5 + (len(stage) * height + (len(stage) - 1) * gap) / 2
    return [
        (x, top - (k + 1) * height - k * gap, width, height) for k in range(len(stage))
    ]


def concept_diagram(chapter: str) -> Figure:
    """Draw chapter ``chapter``'s diagram (a key of :data:`CONCEPTS`, e.g. ``"03"``).

    Raises:
        ValueError: for a chapter without a diagram.
    """
    if chapter not in CONCEPTS:
        raise ValueError(
            f"no diagram for chapter {chapter!r}; there are {sorted(CONCEPTS)}"
        )
    stages = CONCEPTS[chapter]
    fig, ax = plt.subplots(figsize=(10, 2.4))
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    pitch = 1 / len(stages)
    width = pitch * 0.74
    placed = [
        _stage_boxes(stage, i * pitch + (pitch - width) / 2, width)
        for i, stage in enumerate(stages)
    ]
    for stage, rects in zip(stages, placed):
        for box, (x, y, w, h) in zip(stage, rects):
            colour = KIND_COLOURS[box.kind]
            ax.add_patch(
                FancyBboxPatch(
                    (x, y),
                    w,
                    h,
                    boxstyle="round,pad=0.01",
                    fc=colour,
                    ec=colour,
                    alpha=0.2,
                )
            )
            ax.text(
                x + w / 2, y + h / 2, box.text, ha="center", va="center", fontsize=10
            )
    for left, right in zip(placed, placed[1:]):
        for x0, y0, w0, h0 in left:
            for x1, y1, _, h1 in right:
                ax.add_patch(
                    FancyArrowPatch(
                        (x0 + w0 + 0.005, y0 + h0 / 2),
                        (x1 - 0.005, y1 + h1 / 2),
                        arrowstyle="-|>",
                        mutation_scale=10,
                        color="#555555",
                        lw=1,
                    )
                )
    fig.tight_layout()
    return fig
