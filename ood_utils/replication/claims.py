"""The original's published numbers, one row per claim.

Each row of :data:`CLAIMS` is flat: the experiment, the group of its numbers (a dataset,
an ensemble size, or none), the metric, the published value, the tolerance within
which this book's number reproduces it, where the published notebook shows it, and
what it claims in words. A claim's key (``"E4 fashionmnist N=8 AUROC"``) is made from
its fields by :func:`claim_key`, the one place keys are made, and never taken apart
again: :func:`find` looks claims up by their fields.

The numbers come from the executed notebook the post was published from,
``_notebooks/2020-02-26-self-kl-models.ipynb`` in the repository
``Narsil/Narsil.github.io`` (last change d08728e, 2020-07-27). A cell is named by its
0-based position in the ``.ipynb`` (not the ``In [n]`` counters): ``"[35]"``, the output
of code cell 35; ``"[23], one example, ..."``, a single case a cell shows;
``"markdown [29], prose ..."``, a sentence of a markdown cell, which no executed code
printed.

Tolerances: an AUROC within 0.02 (different seeds move it by about 0.01 at full scale),
a flagged share within 3 points when small (ID) and 8 when large (OOD), an attack's
success rate within 15 points (100 restarts: a binomial sd of up to 5 points, fewer in
the fast profile), a reference within a factor of 2 (a mean of a heavy-tailed score);
Exp 3's shares within 2 points (round-off flags almost nothing or a few per cent).
Experiment 5, text, has no code and no printed number: three figures of per-paragraph
twin KL (read off them: about 3 on the training book, below 20 on English test text,
about 40 on French); the book compares the ratios to the training text, which do not
depend on units.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass


def claim_key(experiment: str, group: str, metric: str) -> str:
    """The key of the claim with these fields, the one place keys are made:
    ``claim_key("E4", "mnist N=8", "AUROC")`` is ``"E4 mnist N=8 AUROC"``, and
    ``claim_key("E1", "", "joint attack")`` is ``"E1 joint attack"``."""
    return " ".join(p for p in (experiment, group, metric) if p)


@dataclass(frozen=True)
class Claim:
    """One number of the original, as published.

    Attributes:
        experiment: ``"E1"`` to ``"E5"`` (:data:`ood_utils.replication.EXPERIMENTS`
            and the text one).
        group: what the number is of, as the original-scale results group their
            numbers: a dataset (``"mnist"``), an ensemble (``"mnist N=4"``), or ``""``.
        metric: the number's name (``"AUROC"``, ``"ID flagged"``, ``"joint attack"``).
        published: the number (a share as a fraction: 73.34% is 0.7334).
        tolerance: how far this run may land and still reproduce it: absolute, or
            relative (a factor) when ``relative``.
        cell: where it is in the published notebook (see the module's docstring).
        text: what the original claims, in a few words.
        relative: compare ratios instead of differences (for references, which span
            decades).
        at_most: the original gives an upper bound ("below 20"): any value up to
            ``published`` reproduces it (and up to ``tolerance`` above it, or that
            factor with ``relative``).
    """

    experiment: str
    group: str
    metric: str
    published: float
    tolerance: float
    cell: str
    text: str
    relative: bool = False
    at_most: bool = False

    @property
    def key(self) -> str:
        """``"<experiment> <group> <metric>"`` (no group: ``"<experiment> <metric>"``),
        e.g. ``"E2 mnist AUROC"``."""
        return claim_key(self.experiment, self.group, self.metric)

    def matches(self, value: float | None) -> bool:
        """``value`` reproduces the claim within :attr:`tolerance`."""
        if value is None or not math.isfinite(value):
            return False
        if self.at_most and value <= self.published:
            return True
        if self.relative:
            if value == 0 or (value > 0) != (self.published > 0):
                return False
            ratio = value / self.published
            return max(ratio, 1 / ratio) <= self.tolerance
        return abs(value - self.published) <= self.tolerance


# fmt: off
#: Every number of the original: experiment, group, metric, published, tolerance, cell,
#: text (and the comparison, when not absolute).
ROWS: tuple[Claim, ...] = (
    Claim("E1", "", "fooling success", 1.0, 0.15, "[8]",
          "the fooling attack makes the CNN > 80% sure of noise (100 restarts)"),
    Claim("E1", "", "reference", 0.0069, 2.0, "[19]",
          "the attacks' twins: reference (nats)", relative=True),
    Claim("E1", "", "twin-1 attack flagged", 1.0, 0.5, "[23], one example, not a rate",
          "an attack on twin 1 alone is caught by the twins: one example (KL/ref "
          "587.7 and 153.0), read as most such attacks being caught"),
    Claim("E1", "", "joint attack", 0.0, 0.15,
          "markdown [29], prose (\"around 0%\"): the rate loop [28] was never run",
          "the joint attack succeeds with both twins > 80% sure"),
    Claim("E1", "", "joint attack, no confidence", 0.3, 0.15,
          "markdown [29], prose (\"30%\"): the rate loop [28] was never run",
          "the joint attack passes the detector without the confidence condition"),
    Claim("E2", "mnist", "reference", 0.0204, 2.0, "[35]",
          "CNN twins, MNIST -> FashionMNIST: reference (nats)", relative=True),
    Claim("E2", "mnist", "ID flagged", 0.035, 0.03, "[35]",
          "CNN twins, MNIST -> FashionMNIST: share of ID test flagged"),
    Claim("E2", "mnist", "OOD flagged", 0.7334, 0.08, "[35]",
          "CNN twins, MNIST -> FashionMNIST: share of OOD test flagged"),
    Claim("E2", "mnist", "AUROC", 0.9693, 0.02, "[35]",
          "CNN twins, MNIST -> FashionMNIST: AUROC"),
    Claim("E2", "fashionmnist", "reference", 0.049, 2.0, "[35]",
          "CNN twins, FashionMNIST -> MNIST: reference (nats)", relative=True),
    Claim("E2", "fashionmnist", "ID flagged", 0.104, 0.03, "[35]",
          "CNN twins, FashionMNIST -> MNIST: share of ID test flagged"),
    Claim("E2", "fashionmnist", "OOD flagged", 0.6141, 0.08, "[35]",
          "CNN twins, FashionMNIST -> MNIST: share of OOD test flagged"),
    Claim("E2", "fashionmnist", "AUROC", 0.8572, 0.02, "[35]",
          "CNN twins, FashionMNIST -> MNIST: AUROC"),
    Claim("E2bis", "mnist", "reference", 0.0286, 2.0, "[40]",
          "ResNet-18 (224x224) twins, MNIST -> FashionMNIST: reference (nats)",
          relative=True),
    Claim("E2bis", "mnist", "ID flagged", 0.0342, 0.03, "[40]",
          "ResNet-18 (224x224) twins, MNIST -> FashionMNIST: share of ID test flagged"),
    Claim("E2bis", "mnist", "OOD flagged", 0.9416, 0.08, "[40]",
          "ResNet-18 (224x224) twins, MNIST -> FashionMNIST: share of OOD test "
          "flagged"),
    Claim("E2bis", "mnist", "AUROC", 0.992, 0.02, "[40]",
          "ResNet-18 (224x224) twins, MNIST -> FashionMNIST: AUROC"),
    Claim("E2bis", "fashionmnist", "reference", 0.11, 2.0, "[40]",
          "ResNet-18 (224x224) twins, FashionMNIST -> MNIST: reference (nats)",
          relative=True),
    Claim("E2bis", "fashionmnist", "ID flagged", 0.0812, 0.03, "[40]",
          "ResNet-18 (224x224) twins, FashionMNIST -> MNIST: share of ID test flagged"),
    Claim("E2bis", "fashionmnist", "OOD flagged", 0.8693, 0.08, "[40]",
          "ResNet-18 (224x224) twins, FashionMNIST -> MNIST: share of OOD test "
          "flagged"),
    Claim("E2bis", "fashionmnist", "AUROC", 0.9664, 0.02, "[40]",
          "ResNet-18 (224x224) twins, FashionMNIST -> MNIST: AUROC"),
    Claim("E2", "mnist", "accuracy", 0.99, 0.01, "markdown after [35], prose",
          "MNIST test accuracy about 99%"),
    Claim("E2", "fashionmnist", "accuracy", 0.92, 0.02, "markdown after [35], prose",
          "FashionMNIST test accuracy about 92%"),
    Claim("E3", "mnist", "reference", -5.89e-09, 10.0, "[43]",
          "identical twins, MNIST -> FashionMNIST: reference (nats, negative: "
          "round-off)", relative=True),
    Claim("E3", "mnist", "ID flagged", 0.0936, 0.02, "[43]",
          "identical twins, MNIST -> FashionMNIST: share of ID test flagged"),
    Claim("E3", "mnist", "OOD flagged", 0.1036, 0.02, "[43]",
          "identical twins, MNIST -> FashionMNIST: share of OOD test flagged"),
    Claim("E3", "mnist", "AUROC", 0.625, 0.02, "[43]",
          "identical twins, MNIST -> FashionMNIST: AUROC (of round-off divided by a"
          " negative reference)"),
    Claim("E3", "fashionmnist", "reference", -1.06e-08, 10.0, "[43]",
          "identical twins, FashionMNIST -> MNIST: reference (nats, negative: "
          "round-off)", relative=True),
    Claim("E3", "fashionmnist", "ID flagged", 0.0001, 0.02, "[43]",
          "identical twins, FashionMNIST -> MNIST: share of ID test flagged"),
    Claim("E3", "fashionmnist", "OOD flagged", 0.0004, 0.02, "[43]",
          "identical twins, FashionMNIST -> MNIST: share of OOD test flagged"),
    Claim("E3", "fashionmnist", "AUROC", 0.555, 0.02, "[43]",
          "identical twins, FashionMNIST -> MNIST: AUROC (of round-off divided by a"
          " negative reference)"),
    Claim("E4", "mnist N=2", "reference", 0.0221, 2.0, "[46]",
          "ensemble of 2, MNIST -> FashionMNIST: reference (nats)", relative=True),
    Claim("E4", "mnist N=2", "ID flagged", 0.0348, 0.03, "[46]",
          "ensemble of 2, MNIST -> FashionMNIST: share of ID test flagged"),
    Claim("E4", "mnist N=2", "OOD flagged", 0.7453, 0.08, "[46]",
          "ensemble of 2, MNIST -> FashionMNIST: share of OOD test flagged"),
    Claim("E4", "mnist N=2", "AUROC", 0.9681, 0.02, "[46]",
          "ensemble of 2, MNIST -> FashionMNIST: AUROC"),
    Claim("E4", "fashionmnist N=2", "reference", 0.0563, 2.0, "[46]",
          "ensemble of 2, FashionMNIST -> MNIST: reference (nats)", relative=True),
    Claim("E4", "fashionmnist N=2", "ID flagged", 0.1026, 0.03, "[46]",
          "ensemble of 2, FashionMNIST -> MNIST: share of ID test flagged"),
    Claim("E4", "fashionmnist N=2", "OOD flagged", 0.7025, 0.08, "[46]",
          "ensemble of 2, FashionMNIST -> MNIST: share of OOD test flagged"),
    Claim("E4", "fashionmnist N=2", "AUROC", 0.8957, 0.02, "[46]",
          "ensemble of 2, FashionMNIST -> MNIST: AUROC"),
    Claim("E4", "mnist N=4", "reference", 0.0267, 2.0, "[46]",
          "ensemble of 4, MNIST -> FashionMNIST: reference (nats)", relative=True),
    Claim("E4", "mnist N=4", "ID flagged", 0.0572, 0.03, "[46]",
          "ensemble of 4, MNIST -> FashionMNIST: share of ID test flagged"),
    Claim("E4", "mnist N=4", "OOD flagged", 0.9007, 0.08, "[46]",
          "ensemble of 4, MNIST -> FashionMNIST: share of OOD test flagged"),
    Claim("E4", "mnist N=4", "AUROC", 0.9743, 0.02, "[46]",
          "ensemble of 4, MNIST -> FashionMNIST: AUROC"),
    Claim("E4", "fashionmnist N=4", "reference", 0.0542, 2.0, "[46]",
          "ensemble of 4, FashionMNIST -> MNIST: reference (nats)", relative=True),
    Claim("E4", "fashionmnist N=4", "ID flagged", 0.1973, 0.03, "[46]",
          "ensemble of 4, FashionMNIST -> MNIST: share of ID test flagged"),
    Claim("E4", "fashionmnist N=4", "OOD flagged", 0.8587, 0.08, "[46]",
          "ensemble of 4, FashionMNIST -> MNIST: share of OOD test flagged"),
    Claim("E4", "fashionmnist N=4", "AUROC", 0.9285, 0.02, "[46]",
          "ensemble of 4, FashionMNIST -> MNIST: AUROC"),
    Claim("E4", "mnist N=8", "reference", 0.0273, 2.0, "[46]",
          "ensemble of 8, MNIST -> FashionMNIST: reference (nats)", relative=True),
    Claim("E4", "mnist N=8", "ID flagged", 0.0781, 0.03, "[46]",
          "ensemble of 8, MNIST -> FashionMNIST: share of ID test flagged"),
    Claim("E4", "mnist N=8", "OOD flagged", 0.9555, 0.08, "[46]",
          "ensemble of 8, MNIST -> FashionMNIST: share of OOD test flagged"),
    Claim("E4", "mnist N=8", "AUROC", 0.98, 0.02, "[46]",
          "ensemble of 8, MNIST -> FashionMNIST: AUROC"),
    Claim("E4", "fashionmnist N=8", "reference", 0.0565, 2.0, "[46]",
          "ensemble of 8, FashionMNIST -> MNIST: reference (nats)", relative=True),
    Claim("E4", "fashionmnist N=8", "ID flagged", 0.2602, 0.03, "[46]",
          "ensemble of 8, FashionMNIST -> MNIST: share of ID test flagged"),
    Claim("E4", "fashionmnist N=8", "OOD flagged", 0.9203, 0.08, "[46]",
          "ensemble of 8, FashionMNIST -> MNIST: share of OOD test flagged"),
    Claim("E4", "fashionmnist N=8", "AUROC", 0.9508, 0.02, "[46]",
          "ensemble of 8, FashionMNIST -> MNIST: AUROC"),
    Claim("E5", "", "French / training text", 40 / 3, 2.0, "the post's text figures",
          "text twins: French scores about 13 times the training text (about 40 "
          "against 3)", relative=True),
    Claim("E5", "", "English test / training text", 20 / 3, 1.0,
          "the post's text figures",
          "text twins: held-out English scores below 7 times the training text "
          "(below 20 against 3)", at_most=True),
)
# fmt: on

#: The claims by :attr:`Claim.key`, in the order of :data:`ROWS`.
CLAIMS: dict[str, Claim] = {c.key: c for c in ROWS}


def claim(key: str) -> Claim:
    """The claim ``key`` of :data:`CLAIMS` (a ``ValueError`` names the claims of the
    same experiment if it is unknown)."""
    if key not in CLAIMS:
        close = difflib.get_close_matches(key, CLAIMS, n=5, cutoff=0.6)
        raise ValueError(
            f"unknown claim {key!r}"
            + (f"; the closest claims: {close}" if close else "")
        )
    return CLAIMS[key]


def published(key: str) -> float:
    """The original's published number for claim ``key``."""
    return claim(key).published


def find(experiment: str, group: str = "", metric: str | None = None) -> list[Claim]:
    """The claims of ``experiment`` and ``group`` (and ``metric`` if given), in the
    order of :data:`ROWS`."""
    return [
        c
        for c in ROWS
        if (c.experiment, c.group) == (experiment, group) and metric in (None, c.metric)
    ]
