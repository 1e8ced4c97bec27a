"""The original's experiments: its protocol as settings of the package, its published
numbers, and ladders that walk from its protocol to the book's one change at a time.

The book reproduces N. Patry's post "Self KL-divergence for detecting out of
distribution data" (2020). Its numbers come from the executed notebook it was published
from, ``_notebooks/2020-02-26-self-kl-models.ipynb`` in the repository
``Narsil/Narsil.github.io`` (last change d08728e, 2020-07-27); :data:`CLAIMS` cites the
cell of each.

- :func:`experiment_config` gives the training configuration of an experiment (``"E1"``
  the attacks, ``"E2"`` MNIST <-> FashionMNIST, ``"E2bis"`` ResNet-18, ``"E3"``
  identical initialisation, ``"E4"`` ensembles) under either protocol: the original's
  code or the book's. Both are options of the one training mechanism
  (:class:`ood_utils.train.TrainConfig`).
- :func:`ladder` measures a protocol, then changes one factor per row until it reaches
  the other protocol, so every difference between two numbers is attributed to a named
  change.
- :func:`verdict` compares a claim's published number with this run's under both
  protocols, and :func:`replication_table` does it for every claim (the book's
  Replication page).
- At the original's scale (all 60,000 images, 14 epochs): :func:`experiment_spec` says
  what ``tools/reproduce.py`` trains and measures, :func:`detection_numbers` and
  :func:`attack_numbers` measure it (the chapters use them too), and
  :func:`load_results` reads the committed results back, validated and checked for
  staleness.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import attacks, languages, metrics, scores, text
from .cache import config_fields
from .models import Ensemble
from .profiles import Profile
from .progress import progress_bar
from .run import ORIGINAL_SCALE_FOLDER
from .train import TrainConfig

# the image experiments; E5 is the text one
EXPERIMENTS = (
    "E1",
    "E2",
    "E2bis",
    "E3",
    "E4",
)
PROTOCOLS = ("original", "book")
#: What ``tools/reproduce.py`` runs at the original's scale: the image experiments and
#: the text one, E5, under the original's protocol only (its depth, 6 layers; the
#: book's text twins are chapter 11's).
SCALE_EXPERIMENTS = (*EXPERIMENTS, "E5", "baselines")
SCALE_PROTOCOLS = {
    **{e: PROTOCOLS for e in EXPERIMENTS},
    "E5": ("original",),
    # chapter 9's detectors on E2's twins of either protocol
    "baselines": PROTOCOLS,
}

#: What a protocol is made of. Training: ``recipe`` (``"adam-cyclic"``: the original's
#: Exp 2-4, or ``"adadelta"``), ``network`` (an architecture of
#: :data:`ood_utils.models.ARCHITECTURES`), ``normalization`` (``"mnist"`` for both
#: datasets, or ``"dataset"``), ``members`` (``"independent"``, ``"identical"`` initial
#: weights in separate copies, or one ``"shared"`` module) and ``budget`` (``"sweep"``,
#: ``"main"``: the profile's; ``"original"``: 60,000 images, 14 epochs). Scoring: the
#: fields of :class:`ood_utils.scores.FlagRule`.
TRAINING_FACTORS = ("recipe", "network", "normalization", "members", "budget")
RULE_FACTORS = ("statistic", "reference", "disagreement", "precision", "log_target")
#: The recipes' optimiser settings.
RECIPE_FIELDS: dict[str, dict[str, object]] = {
    "adam-cyclic": {"recipe": "adam-cyclic", "lr": 1e-2},
    "adadelta": {"recipe": "adadelta", "lr": 1.0},
}


def protocol_factors(
    experiment: str, protocol: str, dataset: str = "mnist", scoring: bool = True
) -> dict[str, object]:
    """The training and scoring factors of ``experiment`` under ``protocol``.

    ``"original"`` is the original's code: PyTorch's MNIST CNN of early 2020 (channel
    dropout, no ReLU between the second convolution and the max-pool, MNIST's
    normalisation for both datasets), Adadelta for Exp 1 and the
    attacks, Adam with a per-epoch ``CyclicLR`` for Exp 2-4, one module used twice in
    Exp 3, ResNet-18 at 224x224 in Exp 2 bis, and
    :data:`ood_utils.scores.ORIGINAL_RULE`. ``"book"`` is the book's choice for every
    experiment (separate copies from identical weights in Exp 3, ResNet-18 at 28x28). On
    MNIST the two normalisations are one (MNIST's own statistics): ``"dataset"``.
    Without ``scoring``, only the training factors (:data:`TRAINING_FACTORS`)."""
    if experiment not in EXPERIMENTS:
        raise ValueError(
            f"unknown experiment {experiment!r}: expected one of {EXPERIMENTS}"
        )
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {PROTOCOLS}")
    rule = scores.ORIGINAL_RULE if protocol == "original" else scores.BOOK_RULE
    out: dict[str, object] = {name: getattr(rule, name) for name in RULE_FACTORS}
    original = protocol == "original"
    resnet = experiment == "E2bis"
    out.update(
        recipe="adam-cyclic" if original and experiment != "E1" else "adadelta",
        network=("resnet18-224" if original else "resnet18")
        if resnet
        else ("cnn-original" if original else "cnn"),
        normalization="mnist" if original and dataset != "mnist" else "dataset",
        members="independent"
        if experiment != "E3"
        else "shared"
        if original
        else "identical",
        budget="original" if original else "main",
    )
    return out if scoring else {k: out[k] for k in TRAINING_FACTORS}


def attack_factors(
    conditions: attacks.AttackConditions,
    steps: int,
    lr: float = 1.0,
    joint: bool = False,
) -> dict[str, object]:
    """An attack's factors: its conditions (without the joint attack's ``distance``
    unless ``joint``), ``steps`` and ``lr``."""
    out = {**dataclasses.asdict(conditions), "steps": steps, "lr": lr}
    if not joint:
        del out["distance"]
    return out


def attack_conditions(factors: Mapping[str, object]) -> attacks.AttackConditions:
    """The :class:`ood_utils.attacks.AttackConditions` of an attack's factors (others
    ignored)."""
    names = [f.name for f in dataclasses.fields(attacks.AttackConditions)]
    return attacks.AttackConditions(**{k: factors[k] for k in names if k in factors})


def train_config(
    factors: Mapping[str, object],
    dataset: str = "mnist",
    n_members: int = 2,
    profile: Profile | str | None = None,
    **overrides: object,
) -> TrainConfig:
    """The :class:`TrainConfig` of a protocol's training factors
    (:data:`TRAINING_FACTORS`).

    Missing factors take the book's values; other keys of ``factors`` are ignored. The
    budgets ``"main"`` and ``"sweep"`` are ``profile``'s (a chapter passes
    ``run.profile``)."""
    budget = factors.get("budget", "main")
    if budget not in ("sweep", "main", "original"):
        raise ValueError(
            f"unknown budget {budget!r}: expected 'sweep', 'main' or 'original'"
        )
    recipe = factors.get("recipe", "adadelta")
    if recipe not in RECIPE_FIELDS:
        raise ValueError(
            f"unknown recipe {recipe!r}: expected one of {tuple(RECIPE_FIELDS)}"
        )
    members = factors.get("members", "independent")
    if members not in ("independent", "identical", "shared"):
        raise ValueError(
            f"unknown members {members!r}: expected 'independent', 'identical' or "
            "'shared'"
        )
    if budget == "original":
        # the original's budget is set below; the full profile's batch size is the same
        profile = "full"
    elif profile is None:
        raise ValueError(
            f"the {budget!r} budget is a profile's: pass profile= (a chapter's "
            "run.profile)"
        )
    fields: dict[str, object] = {
        "dataset": dataset,
        "n_members": n_members,
        "arch": factors.get("network", "cnn"),
        "normalization": factors.get("normalization", "dataset"),
        **RECIPE_FIELDS[recipe],
        "identical_init": members == "identical",
        "shared_module": members == "shared",
    }
    if budget == "original":
        fields.update(n_train=None, epochs=14)
    fields.update(overrides)
    return TrainConfig.from_profile(
        profile, budget="main" if budget == "original" else budget, **fields
    )


def flag_rule(factors: Mapping[str, object]) -> scores.FlagRule:
    """The :class:`ood_utils.scores.FlagRule` of a protocol's scoring factors
    (:data:`RULE_FACTORS`)."""
    return scores.FlagRule(**{k: factors[k] for k in RULE_FACTORS if k in factors})


def experiment_config(
    experiment: str,
    protocol: str,
    dataset: str = "mnist",
    n_members: int = 2,
    profile: Profile | str | None = None,
    budget: str = "main",
    **overrides: object,
) -> TrainConfig:
    """The training configuration of one of the original's experiments under
    ``protocol``.

    Args:
        experiment: one of :data:`EXPERIMENTS`. ``"E1"``: the CNN and twins of the
            attacks; ``"E2"``: CNN twins on one dataset; ``"E2bis"``: ResNet-18 twins;
            ``"E3"``: identical initialisation; ``"E4"``: ensembles of ``n_members``.
        protocol: ``"original"`` or ``"book"`` (:func:`protocol_factors`).
        budget: ``"sweep"``, ``"main"`` (the profile's) or ``"original"`` (60,000
            images, 14 epochs): the same for both protocols, so that they differ in
            nothing else.
        overrides: any other :class:`TrainConfig` field.
    """
    factors = {**protocol_factors(experiment, protocol, dataset), "budget": budget}
    return train_config(factors, dataset, n_members, profile, **overrides)


@dataclass(frozen=True)
class Claim:
    """One number of the original, as published.

    Attributes:
        key: identifier, e.g. ``"E2 cnn mnist AUROC"``.
        text: what the original claims, in a few words.
        published: the number (a share as a fraction: 73.34% is 0.7334).
        cell: where it is in the published notebook, by 0-based position in the
            ``.ipynb`` (not the ``In [n]`` counters): ``"[35]"``, the output of code
            cell 35; ``"[23], one example, ..."``, a single case a cell shows;
            ``"markdown [29], prose ..."``, a sentence of a markdown cell, which no
            executed code printed.
        tolerance: how far this run may land and still reproduce it: absolute, or
            relative (a factor) when ``relative``.
        relative: compare ratios instead of differences (for references, which span
            decades).
        at_most: the original gives an upper bound ("below 20"): any value up to
            ``published`` reproduces it (and up to ``tolerance`` above it, or that
            factor with ``relative``).
    """

    key: str
    text: str
    published: float
    cell: str
    tolerance: float
    relative: bool = False
    at_most: bool = False

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


def _claims() -> dict[str, Claim]:
    # Tolerances: an AUROC within 0.02 (different seeds move it by about 0.01 at full
    # scale), a flagged share within 3 points when small (ID) and 8 when large (OOD), an
    # attack's success rate within 15 points (100 restarts: a binomial sd of up to 5
    # points, fewer in the fast profile), a reference within a factor of 2 (a mean of a
    # heavy-tailed score); Exp 3's shares within 2 points (round-off flags almost
    # nothing or a few per cent).
    rows = [
        Claim(
            "E1 fooling success",
            "the fooling attack makes the CNN > 80% sure of noise (100 restarts)",
            1.0,
            "[8]",
            0.15,
        ),
        Claim(
            "E1 reference",
            "the attacks' twins: reference (nats)",
            0.0069,
            "[19]",
            2.0,
            True,
        ),
        Claim(
            "E1 twin-1 attack flagged",
            "an attack on twin 1 alone is caught by the twins: one example (KL/ref "
            "587.7 and 153.0), read as most such attacks being caught",
            1.0,
            "[23], one example, not a rate",
            0.5,
        ),
        Claim(
            "E1 joint attack",
            "the joint attack succeeds with both twins > 80% sure",
            0.0,
            'markdown [29], prose ("around 0%"): the rate loop [28] was never run',
            0.15,
        ),
        Claim(
            "E1 joint attack, no confidence",
            "the joint attack passes the detector without the confidence condition",
            0.30,
            'markdown [29], prose ("30%"): the rate loop [28] was never run',
            0.15,
        ),
    ]
    e2 = {
        ("cnn", "mnist"): (0.0204, 0.0350, 0.7334, 0.9693, "[35]"),
        ("cnn", "fashionmnist"): (0.0490, 0.1040, 0.6141, 0.8572, "[35]"),
        ("resnet18", "mnist"): (0.0286, 0.0342, 0.9416, 0.9920, "[40]"),
        ("resnet18", "fashionmnist"): (0.1100, 0.0812, 0.8693, 0.9664, "[40]"),
    }
    names = {"mnist": "MNIST -> FashionMNIST", "fashionmnist": "FashionMNIST -> MNIST"}
    for (arch, ds), (ref, fid, food, auc, cell) in e2.items():
        exp = "E2" if arch == "cnn" else "E2bis"
        what = f"{'CNN' if arch == 'cnn' else 'ResNet-18 (224x224)'} twins, {names[ds]}"
        rows += [
            Claim(
                f"{exp} {ds} reference",
                f"{what}: reference (nats)",
                ref,
                cell,
                2.0,
                True,
            ),
            Claim(
                f"{exp} {ds} ID flagged",
                f"{what}: share of ID test flagged",
                fid,
                cell,
                0.03,
            ),
            Claim(
                f"{exp} {ds} OOD flagged",
                f"{what}: share of OOD test flagged",
                food,
                cell,
                0.08,
            ),
            Claim(f"{exp} {ds} AUROC", f"{what}: AUROC", auc, cell, 0.02),
        ]
    rows += [
        Claim(
            "E2 mnist accuracy",
            "MNIST test accuracy about 99%",
            0.99,
            "markdown after [35], prose",
            0.01,
        ),
        Claim(
            "E2 fashionmnist accuracy",
            "FashionMNIST test accuracy about 92%",
            0.92,
            "markdown after [35], prose",
            0.02,
        ),
    ]
    e3 = {
        "mnist": (-5.89e-9, 0.0936, 0.1036, 0.6250),
        "fashionmnist": (-1.06e-8, 0.0001, 0.0004, 0.5550),
    }
    for ds, (ref, fid, food, auc) in e3.items():
        what = f"identical twins, {names[ds]}"
        rows += [
            Claim(
                f"E3 {ds} reference",
                f"{what}: reference (nats, negative: round-off)",
                ref,
                "[43]",
                10.0,
                True,
            ),
            Claim(
                f"E3 {ds} ID flagged",
                f"{what}: share of ID test flagged",
                fid,
                "[43]",
                0.02,
            ),
            Claim(
                f"E3 {ds} OOD flagged",
                f"{what}: share of OOD test flagged",
                food,
                "[43]",
                0.02,
            ),
            Claim(
                f"E3 {ds} AUROC",
                f"{what}: AUROC (of round-off divided by a negative reference)",
                auc,
                "[43]",
                0.02,
            ),
        ]
    e4 = {
        ("mnist", 2): (0.0221, 0.0348, 0.7453, 0.9681),
        ("fashionmnist", 2): (0.0563, 0.1026, 0.7025, 0.8957),
        ("mnist", 4): (0.0267, 0.0572, 0.9007, 0.9743),
        ("fashionmnist", 4): (0.0542, 0.1973, 0.8587, 0.9285),
        ("mnist", 8): (0.0273, 0.0781, 0.9555, 0.9800),
        ("fashionmnist", 8): (0.0565, 0.2602, 0.9203, 0.9508),
    }
    for (ds, n), (ref, fid, food, auc) in e4.items():
        what = f"ensemble of {n}, {names[ds]}"
        rows += [
            Claim(
                f"E4 {ds} N={n} reference",
                f"{what}: reference (nats)",
                ref,
                "[46]",
                2.0,
                True,
            ),
            Claim(
                f"E4 {ds} N={n} ID flagged",
                f"{what}: share of ID test flagged",
                fid,
                "[46]",
                0.03,
            ),
            Claim(
                f"E4 {ds} N={n} OOD flagged",
                f"{what}: share of OOD test flagged",
                food,
                "[46]",
                0.08,
            ),
            Claim(f"E4 {ds} N={n} AUROC", f"{what}: AUROC", auc, "[46]", 0.02),
        ]
    # Experiment 5, text: no code and no printed number, three figures of per-paragraph
    # twin KL (read off them: about 3 on the training book, below 20 on English test
    # text, about 40 on French); the book compares the ratios to the training text,
    # which do not depend on units.
    rows += [
        Claim(
            "E5 French / training text",
            "text twins: French scores about 13 times the training text (about 40 "
            "against 3)",
            40 / 3,
            "the post's text figures",
            2.0,
            relative=True,
        ),
        Claim(
            "E5 English test / training text",
            "text twins: held-out English scores below 7 times the training text "
            "(below 20 against 3)",
            20 / 3,
            "the post's text figures",
            1.0,
            at_most=True,
        ),
    ]
    return {c.key: c for c in rows}


#: Every number of the original, keyed by :attr:`Claim.key`.
CLAIMS: dict[str, Claim] = _claims()


def published(key: str) -> float:
    """The original's published number for claim ``key``."""
    return claim(key).published


def claim(key: str) -> Claim:
    """The claim ``key`` of :data:`CLAIMS` (a ``ValueError`` names the close ones if
    unknown)."""
    if key not in CLAIMS:
        close = (
            [k for k in CLAIMS if k.split()[0] == key.split()[0]] if key.split() else []
        )
        raise ValueError(
            f"unknown claim {key!r}"
            + (f"; claims of that experiment: {close}" if close else "")
        )
    return CLAIMS[key]


@dataclass(frozen=True)
class Step:
    """One row of a :func:`ladder`: a change of one factor.

    Attributes:
        change: what changes, e.g. ``"dropout off during the attack"``.
        kind: ``"correction"`` (the original's setting measures something other than
            what it claims), ``"choice"`` (either setting is legitimate) or ``"scale"``
            (more data or epochs).
        settings: ``{factor: new value}``, the factors this row changes (usually one).
        why: one sentence: why the book changes it.
    """

    change: str
    kind: str
    settings: Mapping[str, object]
    why: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("correction", "choice", "scale"):
            raise ValueError(
                f"kind must be 'correction', 'choice' or 'scale', got {self.kind!r}"
            )
        if not self.settings:
            raise ValueError(f"step {self.change!r} changes no factor")


#: The ladders' step from the original's network (``"cnn-original"``) to the book's.
NETWORK_STEP = Step(
    "the book's CNN (a ReLU after conv2, element-wise dropout)",
    "choice",
    {"network": "cnn"},
    "the book's CNN is today's PyTorch example: a ReLU between the second convolution "
    "and the max-pool, and single activations dropped after it",
)


def ladder(
    start: Mapping[str, object],
    steps: Sequence[Step],
    measure: Callable[[dict[str, object]], Mapping[str, float]],
    end: Mapping[str, object] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Measure ``start`` (a protocol's factors), then apply ``steps`` one at a time,
    measuring each.

    Args:
        start: ``{factor: value}``, the first row's protocol (the original's).
        steps: each changes the factors in its :attr:`Step.settings`, on top of the rows
            before.
        measure: factors -> ``{metric: value}``; called once per row.
        end: if given, the factors the last row must reach (the book's protocol); a
            ``ValueError`` says which factor differs.

    Returns:
        One row per protocol: ``row`` (0 = ``start``), ``change`` and ``kind``, then the
        metrics.
    """
    state = dict(start)
    for step in steps:
        unknown = set(step.settings) - set(state)
        if unknown:
            raise ValueError(
                f"step {step.change!r} sets unknown factors {sorted(unknown)}; the "
                f"factors are {sorted(state)}"
            )
        if all(state[k] == v for k, v in step.settings.items()):
            raise ValueError(
                f"step {step.change!r} changes nothing: the factors already have these "
                "values"
            )
        state.update(step.settings)
    if end is not None and state != dict(end):
        diff = {
            k: (state.get(k), end.get(k))
            for k in set(state) | set(end)
            if state.get(k) != end.get(k)
        }
        raise ValueError(
            f"the ladder ends at another protocol: {diff} (factor: (reached, expected))"
        )
    rows, state = [], dict(start)
    bar = progress_bar(
        total=len(steps) + 1, progress=progress, desc="ladder", mininterval=1.0
    )
    rows.append(
        {
            "row": 0,
            "change": "the original's protocol",
            "kind": "",
            **measure(dict(state)),
        }
    )
    bar.update()
    for i, step in enumerate(steps, 1):
        state.update(step.settings)
        rows.append(
            {"row": i, "change": step.change, "kind": step.kind, **measure(dict(state))}
        )
        bar.update()
    bar.close()
    return pd.DataFrame(rows).set_index("row")


def one_at_a_time(
    start: Mapping[str, object],
    steps: Sequence[Step],
    measure: Callable[[dict[str, object]], Mapping[str, float]],
) -> pd.DataFrame:
    """Measure ``start``, then each step of ``steps`` applied to ``start`` alone (not on
    top of the steps before it, as :func:`ladder` does): what each factor does by
    itself. The same columns as :func:`ladder`'s table."""
    rows = [
        {
            "row": 0,
            "change": "the original's protocol",
            "kind": "",
            **measure(dict(start)),
        }
    ]
    for i, step in enumerate(steps, 1):
        unknown = set(step.settings) - set(start)
        if unknown:
            raise ValueError(
                f"step {step.change!r} sets unknown factors {sorted(unknown)}"
            )
        rows.append(
            {
                "row": i,
                "change": step.change,
                "kind": step.kind,
                **measure({**start, **step.settings}),
            }
        )
    return pd.DataFrame(rows).set_index("row")


def e1_joint_walk(
    book_steps: int | None = None,
) -> tuple[dict[str, object], list[Step], dict[str, object]]:
    """The joint attack's walk from the original's to the book's on fixed twins:
    ``(start, steps, end)`` for :func:`ladder` over the attack's conditions, learning
    rate and steps, and the reference, from :func:`attack_settings` (``book_steps``
    overrides the book's steps: a chapter's profile). Chapter 4 adds the twins' network
    and training budget; at the original's scale ``tools/reproduce.py`` runs it on E1's
    first pair, cumulatively and each step alone."""
    orig, book = attack_settings("original"), attack_settings("book")
    book_steps = int(book["joint_steps"]) if book_steps is None else book_steps
    start = {
        "reference": "mean-symmetric",
        **attack_factors(
            orig["conditions"],
            steps=orig["joint_steps"],
            lr=orig["joint_lr"],
            joint=True,
        ),
    }
    steps = [
        Step(
            "dropout off while attacking and judging", "correction", {"dropout": "off"}
        ),
        Step("judged on the final image", "correction", {"judge": "final"}),
        Step("noise drawn in pixel space [0, 1]", "choice", {"start": "pixel"}),
        Step("pixels clamped to [0, 1]", "correction", {"clamp": True}),
        Step("squared distance of probabilities", "choice", {"distance": "prob-sq"}),
        Step(
            "reference: the mean twin score", "correction", {"reference": "mean-score"}
        ),
        Step(f"learning rate {book['joint_lr']:g}", "choice", {"lr": book["joint_lr"]}),
        Step("stop each restart at its first success", "choice", {"stop": "early"}),
        Step(f"up to {book_steps} steps", "choice", {"steps": book_steps}),
    ]
    end = {
        "reference": "mean-score",
        **attack_factors(
            book["conditions"], steps=book_steps, lr=book["joint_lr"], joint=True
        ),
    }
    return start, steps, end


def joint_rates(
    twins: Ensemble,
    references: Mapping[str, float],
    factors: Mapping[str, object],
    n_restarts: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, float]:
    """The joint attack of ``factors`` (:func:`e1_joint_walk`'s) on ``twins``:
    ``{"joint attack": share, "joint attack, no confidence": share}``, the detector's
    threshold 10 times ``references[factors["reference"]]``.

    With a fixed number of steps one trajectory is judged both ways; with an early stop
    each rule stops its own run."""
    threshold = 10 * references[str(factors["reference"])]
    conditions = attack_conditions(factors)
    args = dict(
        n_restarts=n_restarts,
        steps=int(factors["steps"]),
        lr=float(factors["lr"]),
        seed=seed,
        progress=progress,
        conditions=conditions,
    )
    fixed, runs, out = conditions.stop == "fixed", {}, {}
    for name, confidence in (
        ("joint attack", 0.8),
        ("joint attack, no confidence", None),
    ):
        key = None if fixed else confidence
        if key not in runs:
            runs[key] = attacks.joint_attack(
                twins, math.inf if fixed else threshold, confidence=key, **args
            )
        passed = attacks.passes_detector(runs[key].log_probs, threshold, confidence)
        out[name] = float(passed.double().mean())
    return out


#: The kinds of E1 ladder ``tools/reproduce.py`` runs at the original's scale.
SCALE_LADDERS = ("joint ladder", "joint alone")


def scale_ladder_group(kind: str, change: str) -> str:
    """The group of one row of an E1 ladder at the original's scale
    (:data:`SCALE_LADDERS`)."""
    return f"{kind}: {change}"


def e2_ladder(
    dataset: str = "mnist", n_members: int = 2
) -> tuple[dict[str, object], list[Step], dict[str, object]]:
    """The walk from the original's Exp 2 to the book's: ``(start, steps, end)`` for
    :func:`ladder`.

    Training first (trained with the profile's "sweep" budget), then the training
    budget, then the scoring rule: recipe, dropout, normalisation (FashionMNIST only: on
    MNIST the two are one), budget, statistic, reference, and for more than two members
    the disagreement rule."""
    start = {**protocol_factors("E2", "original", dataset), "budget": "sweep"}
    end = protocol_factors("E2", "book", dataset)
    if n_members == 2:  # the first pair is every pair
        start.pop("disagreement")
        end.pop("disagreement")
    steps = [
        Step(
            "Adadelta, decayed per epoch (not Adam under a per-epoch CyclicLR)",
            "correction",
            {"recipe": "adadelta"},
            "the original stepped a per-batch schedule once per epoch, so epoch 1 "
            "trained at lr 0; the book uses PyTorch's MNIST recipe, as the "
            "original's Exp 1",
        ),
        NETWORK_STEP,
    ]
    if start["normalization"] != end["normalization"]:
        steps.append(
            Step(
                "each dataset normalised with its own statistics",
                "correction",
                {"normalization": "dataset"},
                "the original normalised FashionMNIST with MNIST's mean and std",
            )
        )
    steps += [
        Step("the book's training budget", "scale", {"budget": "main"}),
        Step(
            "statistic: the larger directed KL",
            "choice",
            {"statistic": "max-directed"},
            "the original took the larger term per class, then summed",
        ),
        Step(
            "reference: the mean of the statistic itself",
            "correction",
            {"reference": "mean-score"},
            "the original calibrated with the mean symmetric KL, another statistic "
            "than its score",
        ),
    ]
    if n_members > 2:
        steps.append(
            Step(
                "disagreement of any two members",
                "choice",
                {"disagreement": "all-pairs"},
                "the original compared members 0 and 1 only",
            )
        )
    return start, steps, end


def main_cause(
    table: pd.DataFrame,
    metric: str,
    skip_kinds: Sequence[str] = (),
    against: str = "previous",
) -> tuple[str, float]:
    """The row of a :func:`ladder` table that moves ``metric`` most: ``(change,
    difference)``.

    Rows where ``metric`` is undefined (NaN) are skipped, and so are the steps of a kind
    in ``skip_kinds`` (their difference is still measured from the row before them).
    With ``skip_kinds=("scale",)`` the cause is one that remains when both protocols
    train alike, as they do at the original's scale. ``against="first"`` compares every
    row with row 0 instead of the row before it: for :func:`one_at_a_time`'s tables."""
    if against not in ("previous", "first"):
        raise ValueError(f"against must be 'previous' or 'first', got {against!r}")
    if metric not in table:
        raise ValueError(
            f"no metric {metric!r} in the ladder; it has {list(table.columns[2:])}"
        )
    values = table[metric].astype(float)
    # a row without a value (a reference of 0 cannot flag) is skipped: the next row is
    # compared with the last row that had one
    before = values.ffill().shift() if against == "previous" else values.iloc[0]
    deltas = (values - before).iloc[1:]
    if skip_kinds:
        deltas = deltas[~table["kind"].iloc[1:].isin(list(skip_kinds))]
    if deltas.empty or deltas.isna().all():
        raise ValueError(
            f"the ladder has no step that measures {metric!r}"
            + (f" besides those of kind {list(skip_kinds)}" if skip_kinds else "")
        )
    row = deltas.abs().idxmax()
    return str(table.loc[row, "change"]), float(deltas[row])


def step_effect(table: pd.DataFrame, change: str, metric: str) -> float:
    """How much the row ``change`` of a :func:`ladder` table moves ``metric`` from the
    row before it (a row without a value compares with the last row that had one)."""
    rows = [i for i, c in enumerate(table["change"]) if c == change]
    if len(rows) != 1 or rows[0] == 0:
        raise ValueError(
            f"the ladder has {len(rows)} steps named {change!r}; its steps: "
            f"{list(table['change'].iloc[1:])}"
        )
    values = table[metric].astype(float).ffill()
    return float(values.iloc[rows[0]] - values.iloc[rows[0] - 1])


def ladder_causes(
    table: pd.DataFrame, metric: str, fmt: str = "{:+.3g}"
) -> tuple[str, str]:
    """The two causes a claim's record names (:func:`claim_record`), as text "change
    (difference)".

    Returns ``(cause, protocol_cause)``: the step of ``table`` that moves ``metric``
    most, and the one that moves it most besides the training-budget steps
    (:func:`main_cause` with ``skip_kinds=("scale",)``); ``fmt`` formats the difference
    (e.g. ``"{:+.0%}"`` for a rate)."""
    texts = []
    for skip in ((), ("scale",)):
        change, delta = main_cause(table, metric, skip_kinds=skip)
        texts.append(f"{change} ({fmt.format(delta)})")
    return texts[0], texts[1]


def verdict(
    key: str,
    original_protocol: float | None,
    book_protocol: float | None,
    cause: str | None = None,
    scale: str = "original",
) -> str:
    """How this run relates to the original's claim ``key``.

    Args:
        original_protocol: this run's number under the original's protocol (``None``:
            not run).
        book_protocol: under the book's protocol (``None``: not run).
        cause: the change that makes the difference (e.g. from :func:`main_cause`).
        scale: ``"original"`` (60,000 images, 14 epochs) or the profile that ran (e.g.
            ``"fast"``).

    Returns:
        ``"reproduced"``, ``"reproduced only under the original's protocol: the cause is
        ..."``, ``"not reproduced"`` (``"... at this scale"`` below the original's
        scale), or ``"not run at this scale"`` (followed by what the book's protocol
        gives, if it ran).
    """
    c = claim(key)
    if original_protocol is None:
        if book_protocol is None:
            return "not run at this scale"
        return "not run at this scale; the book's protocol " + (
            "reproduces it" if c.matches(book_protocol) else "does not reproduce it"
        )
    reduced = "" if scale == "original" else " at this scale"
    if c.matches(original_protocol):
        if book_protocol is None or c.matches(book_protocol):
            return "reproduced" + (
                "" if book_protocol is not None else " (the book's protocol not run)"
            )
        cause = cause or "not isolated at this scale"
        return f"reproduced only under the original's protocol: the cause is {cause}"
    if c.matches(book_protocol):
        return (
            f"not reproduced under the original's protocol{reduced}; the book's "
            "protocol gives it"
        )
    return "not reproduced" + reduced


def claim_record(
    key: str,
    original_protocol: float | None,
    book_protocol: float | None,
    cause: str | None,
    scale: str,
    protocol_cause: str | None = None,
) -> dict[str, object]:
    """A claim's row for :func:`ood_utils.book.record` (``claims=``): the numbers and
    the verdict.

    ``cause`` is the ladder's main cause at this build's scale (:func:`main_cause`);
    ``protocol_cause`` the main cause among the steps that are not the training budget
    (``skip_kinds=("scale",)``), which the Replication page names where it judges the
    claim at the original's scale (both protocols train alike there)."""
    c = claim(key)
    return {
        "original protocol": original_protocol,
        "book protocol": book_protocol,
        "cause": cause,
        "protocol cause": protocol_cause,
        "scale": scale,
        "published": c.published,
        "cell": c.cell,
        "verdict": verdict(key, original_protocol, book_protocol, cause, scale),
    }


def scale_of(config: TrainConfig) -> str:
    """``"original"`` for the original's scale (all 60,000 images, 14 epochs), else the
    budget in words."""
    if config.n_train is None and config.epochs == 14:
        return "original"
    images = "all" if config.n_train is None else f"{config.n_train:,}"
    return f"{images} images, {config.epochs} epoch{'s' * (config.epochs != 1)}"


def replication_table(
    chapters: Mapping[str, Mapping[str, object]],
    original_scale: Mapping[tuple[str, str], Mapping[str, object]] | None = None,
) -> pd.DataFrame:
    """One row per claim of :data:`CLAIMS`, from the chapters' saved records and the
    original-scale results.

    Args:
        chapters: ``{chapter: payload}`` as :func:`ood_utils.book.load_results` returns
            them; a payload's ``"claims"`` holds :func:`claim_record` rows.
        original_scale: :func:`load_results` (default: none). Where a claim has numbers
            at the original's scale, its verdict is judged on them: the book follows the
            larger run.

    Returns:
        Columns ``experiment``, ``claim``, ``published``, ``cell``, ``original
        protocol`` and ``book protocol`` (this build), ``scale`` (this build's),
        ``original protocol, original scale`` and ``book protocol, original scale``,
        ``verdict``, ``chapter`` and the claim's ``key``, in the order of
        :data:`CLAIMS`; a claim that nothing ran is "not run at this scale".
    """
    found: dict[str, tuple[str, Mapping[str, object]]] = {}
    for chapter, payload in chapters.items():
        for key, row in (payload.get("claims") or {}).items():
            if key in found:
                raise ValueError(
                    f"claim {key!r} recorded by both {found[key][0]} and {chapter}"
                )
            claim(key)
            found[key] = (chapter, row)
    rows = []
    for key, c in CLAIMS.items():
        chapter, row = found.get(key, ("", {}))
        at_scale = {
            p: original_scale_value(original_scale or {}, key, p) for p in PROTOCOLS
        }
        verdict_text = scale_verdict(
            original_scale or {},
            key,
            row.get("protocol cause"),
            ladder_scale=row.get("scale"),
        ) or row.get("verdict", "not run at this scale")
        rows.append(
            {
                "experiment": key.split()[0],
                "claim": c.text,
                "published": c.published,
                "cell": c.cell,
                "original protocol": row.get("original protocol"),
                "book protocol": row.get("book protocol"),
                "scale": row.get("scale", ""),
                "original protocol, original scale": at_scale["original"],
                "book protocol, original scale": at_scale["book"],
                "verdict": verdict_text,
                "chapter": chapter,
                "key": key,
            }
        )
    return pd.DataFrame(rows)


def _number(c: Claim, value: object) -> str:
    """A claim's number as the Replication page prints it: a reference or ratio to 3
    significant digits, an AUROC to 3 decimals, a share as a percentage to 3
    significant digits (3.5%, 73.3%, 100%)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if c.relative:
        return f"{value:.3g}"
    return f"{value:.3f}" if "AUROC" in c.text else f"{100 * value:.3g}%"


def reading_table(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """One experiment's rows of :func:`replication_table`, one row per claim, for
    reading: ``claim``, ``published (cell)``, ``original's protocol here`` (this
    build, at its scale), ``at the original's scale`` (its protocol, run by
    ``tools/reproduce.py``) and ``verdict`` (with its cause)."""
    rows = table[table["experiment"] == experiment]
    if rows.empty:
        raise ValueError(f"no claims of experiment {experiment!r}")
    out = []
    for _, row in rows.iterrows():
        c = claim(row["key"])
        out.append(
            {
                "claim": c.text,
                "published (cell)": f"{_number(c, c.published)} ({c.cell})",
                "original's protocol here": _number(c, row["original protocol"]),
                "at the original's scale": _number(
                    c, row["original protocol, original scale"]
                ),
                "verdict": row["verdict"],
            }
        )
    return pd.DataFrame(out)


# --- measuring an experiment
# ---------------------------------------------------------------


def detection_numbers(
    lp_in: torch.Tensor,
    lp_out: torch.Tensor,
    rule: scores.FlagRule,
    ranking: str = "score / reference",
) -> dict[str, float]:
    """What the original printed for a pair of test sets, under ``rule``.

    Args:
        lp_in, lp_out: ``(N, B, C)`` log-probabilities on the in-distribution test set
            and the out-of-distribution one.
        ranking: ``"score / reference"`` (the original's: a negative reference mirrors
            the ranking) or ``"score"``; the same whenever the reference is positive.

    Returns:
        ``reference``, ``ID flagged``, ``OOD flagged`` (NaN where a reference of 0
        cannot calibrate), ``AUROC``, ``AUPR-IN``, ``AUPR-OUT``, ``FPR@95TPR`` (OOD
        positive) and ``non-zero ID scores`` (the share of in-distribution scores that
        are not exactly 0).
    """
    if ranking not in ("score / reference", "score"):
        raise ValueError(
            f"ranking must be 'score / reference' or 'score', got {ranking!r}"
        )
    s_in, s_out = rule.score(lp_in), rule.score(lp_out)
    ref = rule.reference_of(lp_in)
    try:
        flagged = [float(rule.flags(lp, ref).double().mean()) for lp in (lp_in, lp_out)]
    except ValueError:  # a reference of exactly 0: nothing can be calibrated
        flagged = [math.nan, math.nan]
    sign = -1.0 if ranking == "score / reference" and ref < 0 else 1.0
    return {
        "reference": ref,
        "ID flagged": flagged[0],
        "OOD flagged": flagged[1],
        **metrics.ood_metrics(sign * s_in.double(), sign * s_out.double()),
        "non-zero ID scores": float((s_in != 0).double().mean()),
    }


def attack_numbers(
    twins: Ensemble,
    reference: float,
    conditions: attacks.AttackConditions,
    steps: int,
    lr: float,
    joint_steps: int,
    joint_lr: float,
    n_restarts: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """The original's attack experiments on ``twins``, under ``conditions``.

    The fooling attack on member 0 alone (the single CNN), the same attack on twin 1
    judged by the twins (``steps``, ``lr``), and the joint attack (``joint_steps``,
    ``joint_lr``) with and without the confidence condition; the detector's threshold is
    ``10 * reference``.

    Returns:
        ``fooling success``, ``twin-1 attack flagged``, ``twin-1 median score /
        reference``, ``joint attack`` (both members > 0.8 sure and unflagged) and
        ``joint attack, no confidence``, each a share of ``n_restarts``.
    """
    args = dict(
        n_restarts=n_restarts, seed=seed, progress=progress, conditions=conditions
    )
    single = attacks.fooling_attack(twins[0], steps=steps, lr=lr, **args)
    twin1 = attacks.attack(
        twins,
        loss=lambda lp: attacks.entropy(lp[0]),
        success=lambda lp: lp[0].exp().amax(-1) > 0.8,
        steps=steps,
        lr=lr,
        desc="attack on twin 1",
        **args,
    )
    threshold = 10 * reference
    caught = ~attacks.passes_detector(twin1.log_probs, threshold, confidence=None)
    joint_args = dict(steps=joint_steps, lr=joint_lr, **args)
    strict = attacks.joint_attack(twins, threshold, confidence=0.8, **joint_args)
    # the same trajectory, judged without the confidence condition
    if conditions.stop == "fixed":
        loose = float(
            attacks.passes_detector(strict.log_probs, threshold, confidence=None)
            .double()
            .mean()
        )
    else:
        loose = attacks.joint_attack(
            twins, threshold, confidence=None, **joint_args
        ).success_rate
    joint = {"joint attack": strict.success_rate, "joint attack, no confidence": loose}
    return {
        "fooling success": single.success_rate,
        "twin-1 attack flagged": float(caught.double().mean()),
        "twin-1 median score / reference": float(
            (scores.twin_score(twin1.log_probs) / reference).median()
        ),
        **joint,
    }


def joint_grid_numbers(
    twins: Ensemble,
    reference: float,
    conditions: attacks.AttackConditions,
    n_restarts: int = 100,
    seed: int = 0,
    grid: Mapping[str, Sequence[float]] | None = None,
    progress: bool = True,
) -> dict[tuple[float, int], dict[str, float]]:
    """The joint attack of :func:`attack_numbers` at every learning rate and step count
    of ``grid``, a fixed number of steps each: ``{(lr, steps): {"joint attack": share,
    "joint attack, no confidence": share}}``, both judged on one trajectory; ``grid``
    defaults to :data:`JOINT_GRID`."""
    grid = JOINT_GRID if grid is None else grid
    if conditions.stop != "fixed":
        raise ValueError(
            "the grid runs a fixed number of steps: conditions.stop='fixed'"
        )
    threshold, out = 10 * reference, {}
    for lr in grid["lr"]:
        for steps in grid["steps"]:
            res = attacks.joint_attack(
                twins,
                threshold,
                confidence=0.8,
                steps=int(steps),
                lr=float(lr),
                n_restarts=n_restarts,
                seed=seed,
                progress=progress,
                conditions=conditions,
            )
            out[lr, int(steps)] = {
                "joint attack": res.success_rate,
                "joint attack, no confidence": float(
                    attacks.passes_detector(res.log_probs, threshold, None)
                    .double()
                    .mean()
                ),
            }
    return out


# --- the original's scale: what tools/reproduce.py runs, and the files it
# writes ------------

#: Bumped when what an experiment measures changes (its numbers, or how they
#: are computed).
SPEC_VERSION = 1
#: The two datasets, in the original's order.
DATASETS = ("mnist", "fashionmnist")
#: The experiments kept one file per part (one per dataset), so that a long run is kept
#: piece by piece: E4's ensemble of 8 takes about 1.5 hours per dataset on 2 CPU cores.
#: :func:`load_results` reads an experiment's parts back as one result.
SCALE_PARTS: dict[str, tuple[str, ...]] = {"E4": DATASETS}


def experiment_parts(experiment: str) -> tuple[str | None, ...]:
    """The parts ``experiment`` is written in (:data:`SCALE_PARTS`); ``(None,)`` for
    one written whole."""
    return SCALE_PARTS.get(experiment, (None,))


#: E1's twin pairs (their :class:`TrainConfig` seeds) under the original's protocol,
#: where its attack claims are judged: one pair's rate is not the pair-to-pair range,
#: so the judgement takes the range over the pairs and the grid. The book's protocol
#: trains the first only. Each pair costs about 13 to 18 minutes of training on 2 CPU
#: cores.
E1_PAIR_SEEDS: tuple[int, ...] = (0, 10, 20)
#: The joint attack's grid around the original's 200 steps at lr 0.1, which it says it
#: varied ("with various learning rates and attack steps", markdown cell 29).
JOINT_GRID = {"lr": (0.03, 0.1, 0.3), "steps": (100, 200, 400)}


def e1_pair_name(seed: int, kind: str = "twins") -> str:
    """The names of E1's pair of ``seed``: its training (``kind="twins"``), and the
    groups of its numbers (``"attacks"``, ``"accuracy"``): ``"twins"`` for the first
    pair, ``"twins, seed 10"`` for the others. Its grid's groups are
    :func:`joint_grid_group`'s."""
    return kind if seed == E1_PAIR_SEEDS[0] else f"{kind}, seed {seed}"


def joint_grid_group(seed: int, lr: float, steps: int) -> str:
    """The group of one setting of the joint attack's grid on E1's pair of ``seed``."""
    return f"joint grid, seed {seed}, lr {lr:g}, {int(steps)} steps"


def attack_settings(protocol: str) -> dict[str, object]:
    """The attacks of Exp 1 under ``protocol``: conditions, steps and learning rates,
    restarts.

    The original: its fooling attack and the attack on twin 1 ran 100 steps at lr 1
    (cells 8, 23), its joint success-rate loop 200 steps at lr 0.1 (after cell 25), 100
    restarts each, under :data:`ood_utils.attacks.ORIGINAL_CONDITIONS`. The book: 300
    steps at lr 1, stopped at the first success, under
    :data:`ood_utils.attacks.BOOK_CONDITIONS`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {PROTOCOLS}")
    original = protocol == "original"
    conditions = attacks.ORIGINAL_CONDITIONS if original else attacks.BOOK_CONDITIONS
    return {
        "conditions": conditions,
        "steps": 100 if original else 300,
        "lr": 1.0,
        "joint_steps": 200 if original else 300,
        "joint_lr": 0.1 if original else 1.0,
        "n_restarts": 100,
        "seed": 0,
    }


def e5_config() -> text.TextConfig:
    """E5's text twins at the original's depth: "a simple transformer (6 layers deep)"
    trained on one English book (the original gives no width, context or steps).

    Chapter 11's twins made three times deeper and a third wider (width 128, 4 heads,
    a context of 64 characters, batches of 16), trained for 12,000 steps: a step costs
    about 2.6 times the fast profile's (a probe on 2 CPU cores), so the run should take
    well under 45 minutes. The training loss each 50 steps is kept with the result, so
    whether it reached a plateau can be read off it."""
    return text.TextConfig(
        context=64, d_model=128, n_layers=6, n_heads=4, steps=12_000, batch_size=16
    )


#: The characters of each text E5 scores at the original's depth (chapter 11's
#: full-profile length).
E5_CHARS = text.PROFILE_SETTINGS["full"].chars


def experiment_trainings(
    experiment: str, protocol: str, part: str | None = None
) -> dict[str, TrainConfig]:
    """The networks an experiment trains at the original's scale (60,000 images, 14
    epochs); those of one ``part`` (:data:`SCALE_PARTS`: a dataset of E4) if given.

    ``{name: config}``: for E1 a pair per seed of :data:`E1_PAIR_SEEDS` under the
    original's protocol (:func:`e1_pair_name`), the first under the book's; one pair per
    dataset (``"mnist"``,
    ``"fashionmnist"``) for E2, E2bis and E3; for E4 one ensemble of 8 per dataset,
    read as N = 2, 4 and 8, under both protocols. The original trained a separate
    ensemble for each N; its members share no parameters, see the same batches and
    draw their own dropout streams, so the first N of 8 are distributed like an
    ensemble of N, at less than half the cost (8 networks per dataset, not 14). What it
    changes: the three estimates share members, so they are not independent.

    Raises:
        ValueError: for a ``part`` the experiment is not written in."""
    if part is not None:
        if part not in SCALE_PARTS.get(experiment, ()):
            raise ValueError(
                f"{experiment} has no part {part!r}: expected one of "
                f"{SCALE_PARTS.get(experiment, ())}"
            )
        return {part: experiment_trainings(experiment, protocol)[part]}
    if experiment == "E1":
        seeds = E1_PAIR_SEEDS if protocol == "original" else E1_PAIR_SEEDS[:1]
        return {
            e1_pair_name(seed): experiment_config(
                "E1", protocol, budget="original", seed=seed
            )
            for seed in seeds
        }
    if experiment == "E4":
        return {
            ds: experiment_config(
                "E4", protocol, dataset=ds, n_members=8, budget="original"
            )
            for ds in DATASETS
        }
    if experiment == "baselines":  # its fooling images first, then E2's twins
        chapter1 = TrainConfig.from_profile("full", dataset="mnist", n_members=1)
        return {"chapter 1's CNN": chapter1, **experiment_trainings("E2", protocol)}
    return {
        ds: experiment_config(experiment, protocol, dataset=ds, budget="original")
        for ds in DATASETS
    }


def experiment_spec(
    experiment: str, protocol: str, part: str | None = None
) -> dict[str, object]:
    """Everything that determines an original-scale result (of one ``part``, see
    :data:`SCALE_PARTS`): its trainings and its evaluation.

    The trainings are given by their non-default fields
    (:func:`ood_utils.cache.config_fields`) and the training code's format version, so
    that the hash (:func:`spec_hash`) changes when the code would train or measure
    something else, and not otherwise."""
    from .train import FORMAT_VERSION

    head: dict[str, object] = {
        "experiment": experiment,
        "protocol": protocol,
        "version": SPEC_VERSION,
        **({"part": part} if part is not None else {}),
    }
    if experiment == "E5":
        return {
            **head,
            "text format": text.TEXT_FORMAT_VERSION,
            "trainings": {"text twins": config_fields(e5_config())},
            "texts": {"sources": languages.SOURCES, "characters": E5_CHARS},
        }
    spec: dict[str, object] = {
        **head,
        "training format": FORMAT_VERSION,
        "trainings": {
            name: config_fields(cfg)
            for name, cfg in experiment_trainings(experiment, protocol, part).items()
        },
        "test sets": "all 10,000 test images of each dataset",
    }
    if experiment == "baselines":
        from .benchmark import detector_needs
        from .profiles import get_profile

        full = get_profile("full")
        return {
            **spec,
            "detectors": list(detector_needs(full.mc_samples)),
            "sets": "benchmark.ood_sets with the full profile's budgets",
            "profile": dataclasses.asdict(full),
        }
    if experiment == "E1":
        settings = attack_settings(protocol)
        spec["attacks"] = {
            **settings,
            "conditions": dataclasses.asdict(settings["conditions"]),
        }
        if protocol == "original":
            spec["joint attack grid"] = {k: list(v) for k, v in JOINT_GRID.items()}
            _, walk, _ = e1_joint_walk()
            spec["joint ladder at scale"] = {
                "kinds": list(SCALE_LADDERS),
                "steps": [dataclasses.asdict(step) for step in walk],
            }
        spec["reference"] = (
            "mean symmetric KL, batches of 1,000"
            if protocol == "original"
            else "mean twin score"
        )
    else:
        spec["rule"] = dataclasses.asdict(
            scores.ORIGINAL_RULE if protocol == "original" else scores.BOOK_RULE
        )
        spec["ranking"] = "score / reference" if protocol == "original" else "score"
    return spec


def spec_hash(spec: Mapping[str, object]) -> str:
    """A short hash of an experiment's :func:`experiment_spec`."""
    import hashlib
    import json

    return hashlib.sha256(
        json.dumps(spec, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]


#: The fields every original-scale result file has (``provenance`` with its own fields).
RESULT_FIELDS = (
    "experiment",
    "protocol",
    "numbers",
    "provenance",
    "spec",
    "spec_hash",
    "trainings",
)
PROVENANCE_FIELDS = (
    "commit",
    "dirty",
    "allow_dirty",
    "date",
    "hardware",
    "device",
    "threads",
    "torch",
    "torchvision",
    "python",
)


def result_path(
    experiment: str, protocol: str, folder: Path, part: str | None = None
) -> Path:
    """The file of one original-scale result:
    ``<folder>/<experiment>-<protocol>.json``, or
    ``<experiment>-<protocol>-<part>.json`` for one part of it (:data:`SCALE_PARTS`)."""
    tail = f"-{part}" if part is not None else ""
    return Path(folder) / f"{experiment}-{protocol}{tail}.json"


def load_result(path: Path) -> dict[str, object]:
    """One original-scale result, validated, with ``stale`` set (its spec is not the
    current code's).

    Raises:
        ValueError: naming the file and the field that is missing or malformed.
    """
    import json

    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(payload, dict):
        raise ValueError(
            f"{path}: expected a JSON object, got {type(payload).__name__}"
        )
    missing = [f for f in RESULT_FIELDS if f not in payload]
    if missing:
        raise ValueError(f"{path}: missing fields {missing}")
    prov = payload["provenance"]
    if not isinstance(prov, dict) or [f for f in PROVENANCE_FIELDS if f not in prov]:
        raise ValueError(f"{path}: provenance must hold {list(PROVENANCE_FIELDS)}")
    if payload["protocol"] not in SCALE_PROTOCOLS.get(payload["experiment"], ()):
        raise ValueError(
            f"{path}: unknown experiment or protocol {payload['experiment']!r}, "
            f"{payload['protocol']!r}"
        )
    part = payload.get("part")
    if part not in experiment_parts(payload["experiment"]):
        raise ValueError(
            f"{path}: {payload['experiment']} is written in the parts "
            f"{experiment_parts(payload['experiment'])}, not {part!r}"
        )
    where = (payload["experiment"], payload["protocol"], path.parent, part)
    if path.name != result_path(*where).name:
        raise ValueError(
            f"{path}: holds {payload['experiment']} / {payload['protocol']}"
            f"{f' / {part}' if part else ''}, not what its name says"
        )
    numbers = payload["numbers"]
    if not isinstance(numbers, dict) or not all(
        isinstance(v, dict)
        and all(isinstance(x, (int, float)) or x is None for x in v.values())
        for v in numbers.values()
    ):
        raise ValueError(f"{path}: numbers must be {{group: {{name: number}}}}")
    current = spec_hash(
        experiment_spec(payload["experiment"], payload["protocol"], part)
    )
    return {
        **payload,
        "part": part,
        "stale": payload["spec_hash"] != current,
        "path": str(path),
    }


def load_results(folder: Path | str) -> dict[tuple[str, str], dict[str, object]]:
    """Every original-scale result in ``folder`` (a chapter's
    ``run.original_scale_dir``: the repository's ``results/original-scale``, absent when
    the package was installed without the repository, as in Colab): ``{(experiment,
    protocol): payload}``; empty if there are none. An experiment kept in parts
    (:data:`SCALE_PARTS`) is one payload, from :func:`merge_parts`, of the parts
    present."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    found: dict[tuple[str, str], list[dict[str, object]]] = {}
    for path in sorted(folder.glob("*.json")):
        payload = load_result(path)
        found.setdefault((payload["experiment"], payload["protocol"]), []).append(
            payload
        )
    return {
        key: parts[0] if parts[0]["part"] is None else merge_parts(parts)
        for key, parts in found.items()
    }


def merge_parts(parts: list[Mapping[str, object]]) -> dict[str, object]:
    """The part files of one experiment and protocol (:func:`load_result`'s payloads)
    as one result: their numbers and trainings together, stale if any is, each kept
    under ``"parts"`` in the experiment's order of parts (whose provenance
    :func:`original_scale_note` lists one by one)."""
    order = experiment_parts(str(parts[0]["experiment"]))
    parts = sorted(parts, key=lambda p: order.index(p["part"]))
    return {
        **parts[0],
        "part": None,
        "numbers": {k: v for p in parts for k, v in p["numbers"].items()},
        "trainings": [t for p in parts for t in p["trainings"]],
        "stale": any(p["stale"] for p in parts),
        "parts": parts,
    }


def provenance_line(payload: Mapping[str, object]) -> str:
    """One line: where and when a result was computed, and how long its training
    took."""
    prov = payload["provenance"]
    minutes = sum(t["seconds"] for t in payload["trainings"]) / 60
    dirty = " (uncommitted changes)" if prov["dirty"] else ""
    stale = (
        "; **stale**: the current code would compute it differently"
        if payload.get("stale")
        else ""
    )
    part = f" ({payload['part']})" if payload.get("part") else ""
    return (
        f"{payload['experiment']}{part}, {payload['protocol']}'s protocol: "
        f"{_scale_words(payload)}, on {prov['hardware']} ({prov['device']}, "
        f"{prov['threads']} threads), "
        f"{prov['date']}, commit {str(prov['commit'])[:7]}{dirty}; training took "
        f"{minutes:.0f} min{stale}"
    )


def _scale_words(payload: Mapping[str, object]) -> str:
    """The scale of an original-scale result in words: the text twins' depth, width
    and steps for E5, the images and epochs otherwise."""
    text_twins = payload.get("spec", {}).get("trainings", {}).get("text twins")
    if text_twins:
        return (
            f"{text_twins['n_layers']} layer{'s' * (text_twins['n_layers'] != 1)} of "
            f"width {text_twins['d_model']}, "
            f"{text_twins['steps']:,} steps"
        )
    return "60,000 images, 14 epochs"


def baselines_metrics(payload: Mapping[str, object]) -> pd.DataFrame:
    """Chapter 9's long table from an original-scale ``baselines`` result: one row per
    (direction, OOD set, method) with its AUROC, AUPR-IN, AUPR-OUT and FPR@95TPR, as
    :func:`ood_utils.benchmark.wins_and_losses` reads it (the file keys each row
    ``"direction, OOD set, method"``, names without commas)."""
    rows = [
        {**dict(zip(("direction", "OOD set", "method"), key.split(", ", 2))), **values}
        for key, values in payload["numbers"].items()
        if key != "twin max-KL"
    ]
    return pd.DataFrame(rows)


def original_scale_value(
    results: Mapping[tuple[str, str], Mapping[str, object]], key: str, protocol: str
) -> float | None:
    """This book's number for claim ``key`` at the original's scale under ``protocol``,
    from
    :func:`load_results`; ``None`` when that experiment has no result (or no such
        number)."""
    claim(key)
    experiment, rest = key.split(" ", 1)
    payload = results.get((experiment, protocol))
    if payload is None:
        return None
    numbers = payload["numbers"]
    if experiment == "E1":
        return numbers.get("attacks", {}).get(rest)
    if experiment == "E5":
        return numbers.get("ratios", {}).get(rest)
    metric = next(
        m
        for m in ("reference", "ID flagged", "OOD flagged", "AUROC", "accuracy")
        if rest.endswith(m)
    )
    group = rest[: -len(metric)].strip()
    row = numbers.get(group)
    if row is None:
        return None
    if metric == "accuracy":
        members = [v for k, v in row.items() if k.startswith("accuracy")]
        return min(members) if members else None
    return row.get(metric)


def scale_ladder(
    results: Mapping[tuple[str, str], Mapping[str, object]], kind: str = "joint ladder"
) -> pd.DataFrame | None:
    """An E1 ladder run at the original's scale (``"joint ladder"``: cumulative,
    ``"joint alone"``: each step alone), as a :func:`ladder` table; ``None`` without it.

    The cumulative one ends on the original's twins under the book's attack; where the
    book's protocol ran at that scale too, a last row ``"the book's twins (network and
    training)"`` carries its numbers, the one step no attack can take."""
    if kind not in SCALE_LADDERS:
        raise ValueError(f"unknown ladder {kind!r}: expected one of {SCALE_LADDERS}")
    payload = results.get(("E1", "original"))
    if payload is None:
        return None
    numbers = payload["numbers"]
    start, steps, _ = e1_joint_walk()
    changes = [("the original's protocol", "")] + [(s.change, s.kind) for s in steps]
    rows = []
    for change, step_kind in changes:
        group = numbers.get(scale_ladder_group(kind, change))
        if group is None:
            return None
        rows.append({"change": change, "kind": step_kind, **group})
    book = results.get(("E1", "book"))
    if kind == "joint ladder" and book is not None:
        attacks_book = book["numbers"].get("attacks", {})
        rows.append(
            {
                "change": "the book's twins (network and training)",
                "kind": "choice",
                **{
                    m: attacks_book.get(m)
                    for m in rows[0]
                    if m not in ("change", "kind")
                },
            }
        )
    return pd.DataFrame(rows).rename_axis("row")


def original_scale_values(
    results: Mapping[tuple[str, str], Mapping[str, object]], key: str, protocol: str
) -> list[float]:
    """Every number of claim ``key`` at the original's scale under ``protocol``.

    For an E1 attack claim: each pair's (:data:`E1_PAIR_SEEDS`) at the original's
    settings and, for the joint attack's two claims, each setting of the grid
    (:data:`JOINT_GRID`); otherwise the one :func:`original_scale_value`. Empty when
    there is none."""
    value = original_scale_value(results, key, protocol)
    experiment, rest = key.split(" ", 1)
    payload = results.get((experiment, protocol))
    if experiment != "E1" or payload is None or rest == "reference":
        return [] if value is None else [value]
    numbers = payload["numbers"]
    groups = [e1_pair_name(seed, "attacks") for seed in E1_PAIR_SEEDS]
    if rest.startswith("joint attack"):
        groups += [
            joint_grid_group(seed, lr, steps)
            for seed in E1_PAIR_SEEDS
            for lr in JOINT_GRID["lr"]
            for steps in JOINT_GRID["steps"]
        ]
    found = [numbers.get(g, {}).get(rest) for g in groups]
    return [v for v in found if v is not None]


def scale_verdict(
    results: Mapping[tuple[str, str], Mapping[str, object]],
    key: str,
    cause: str | None = None,
    ladder: str = "this build's",
    ladder_scale: str | None = None,
) -> str | None:
    """The verdict on claim ``key`` from its original-scale numbers (:func:`verdict`),
    or ``None`` when neither protocol has one in ``results`` (a chapter then keeps its
    own scale's verdict).

    ``cause``: what the verdict names if the claim is reproduced only under the
    original's protocol. The joint attack's claims take it from the ladder run at the
    original's scale (:func:`scale_ladder`) where there is one. Otherwise it is the
    largest step besides the training budget of a ladder run at a smaller scale, whose
    it is ``ladder`` says (``"this build's"``, ``"this chapter's"``) and at which scale
    it ran ``ladder_scale`` (e.g. ``"4,000 images, 2 epochs"``: :func:`scale_of`)."""
    values = {p: original_scale_value(results, key, p) for p in PROTOCOLS}
    if values["original"] is None and values["book"] is None:
        return None
    spread, judged = original_scale_values(results, key, "original"), ""
    if len(spread) > 1:
        # several pairs (and settings): the one closest to the published number
        published_value = claim(key).published
        values["original"] = min(spread, key=lambda v: abs(v - published_value))
        judged = (
            f"; judged on the closest of {len(spread)} measurements under the "
            f"original's protocol, {pair_and_grid(len(spread))}, which range from "
            f"{min(spread):.0%} to {max(spread):.0%}"
        )
    at_scale = scale_ladder(results) if key.startswith("E1 joint attack") else None
    if at_scale is not None:
        change, delta = main_cause(at_scale, key.split(" ", 1)[1])
        cause = (
            f"{change}, {delta:+.0%}: the largest step of the ladder run at the "
            "original's scale on E1's first pair"
        )
    elif cause:
        where = f", run at {ladder_scale}" if ladder_scale else ""
        cause += (
            f" ({ladder} ladder{where}, its largest step besides the training budget; "
            "no ladder ran at the original's scale)"
        )
    return (
        verdict(key, values["original"], values["book"], cause, scale="original")
        + judged
    )


def pair_and_grid(n: int) -> str:
    """Words for ``n`` measurements of an E1 claim: pairs, and grid settings per
    pair."""
    pairs = len(E1_PAIR_SEEDS)
    per_pair = n // pairs - 1
    if n % pairs or per_pair < 0:
        return f"{n} measurements"
    each = "on each" if pairs > 1 else "on it"
    grid = f" and {per_pair} settings of the grid {each}" if per_pair else ""
    return (f"{pairs} twin pairs" if pairs > 1 else "one twin pair") + grid


def original_scale_table(
    results: Mapping[tuple[str, str], Mapping[str, object]],
    experiment: str,
    metrics_shown: Sequence[str],
    groups: Sequence[str] | None = None,
) -> pd.DataFrame | None:
    """The original-scale numbers of ``experiment`` under both protocols, for a chapter.

    Rows ``(protocol, group)`` (a group per dataset, per ensemble size, or
    ``"attacks"``; only ``groups`` if given), columns ``metrics_shown`` (missing ones
    are left empty); ``None`` if neither protocol has a result (a fresh fork, or Colab:
    the chapters then say so).
    """
    rows = {}
    for protocol in PROTOCOLS:
        payload = results.get((experiment, protocol))
        if payload is None:
            continue
        for group, values in payload["numbers"].items():
            if groups is not None and group not in groups:
                continue
            if any(m in values for m in metrics_shown):
                rows[protocol, group] = {m: values.get(m) for m in metrics_shown}
    if not rows:
        return None
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(
        ["protocol", "group"]
    )


def joint_grid_table(
    results: Mapping[tuple[str, str], Mapping[str, object]],
    metric: str = "joint attack, no confidence",
) -> pd.DataFrame | None:
    """E1's joint attack at the original's scale, under the original's protocol, over
    :data:`JOINT_GRID`: rows ``(lr, steps)``, one column per pair's seed, values
    ``metric``'s share; ``None`` without that result."""
    payload = results.get(("E1", "original"))
    if payload is None:
        return None
    numbers = payload["numbers"]
    rows = {
        (f"{lr:g}", steps): {
            f"pair, seed {seed}": numbers.get(
                joint_grid_group(seed, lr, steps), {}
            ).get(metric)
            for seed in E1_PAIR_SEEDS
        }
        for lr in JOINT_GRID["lr"]
        for steps in JOINT_GRID["steps"]
    }
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis(["lr", "steps"])
    return None if table.isna().all().all() else table


def missing_parts(
    results: Mapping[tuple[str, str], Mapping[str, object]], experiment: str
) -> list[tuple[str, str | None]]:
    """The ``(protocol, part)`` of ``experiment`` that :func:`load_results` has no file
    for (``part`` is ``None`` for an experiment written whole)."""
    missing = []
    for protocol in SCALE_PROTOCOLS[experiment]:
        payload = results.get((experiment, protocol), {})
        present = [
            q["part"] for q in payload.get("parts", [payload] if payload else [])
        ]
        missing += [
            (protocol, part)
            for part in experiment_parts(experiment)
            if part not in present
        ]
    return missing


def original_scale_note(
    results: Mapping[tuple[str, str], Mapping[str, object]], experiment: str
) -> str:
    """Markdown: the provenance of ``experiment``'s original-scale results, or that
    there are none."""
    lines = [
        f"- {provenance_line(part)}"
        for p in PROTOCOLS
        if (experiment, p) in results
        for part in results[experiment, p].get("parts", [results[experiment, p]])
    ]
    if not lines:
        return (
            f"No original-scale results for {experiment} are present in this copy of "
            f"the book: `python tools/reproduce.py --only {experiment}` computes them "
            f"(all 60,000 images, 14 epochs) into `{ORIGINAL_SCALE_FOLDER}`."
        )
    missing = [
        f"the {p}'s protocol" + (f" on {part}" if part else "")
        for p, part in missing_parts(results, experiment)
    ]
    tail = f"\n- not run yet: {', '.join(missing)}" if missing else ""
    return "At the original's scale (`tools/reproduce.py`):\n" + "\n".join(lines) + tail
