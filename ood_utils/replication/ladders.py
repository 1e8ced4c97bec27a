"""Ladders: measure one protocol, then change one factor per row until the other is
reached, so that every difference between two numbers is attributed to a named change.

:func:`ladder` walks cumulatively, :func:`one_at_a_time` applies each step alone;
:func:`e2_ladder` and :func:`e1_joint_walk` are the walks from the original's Exp 2 and
joint attack to the book's, and :func:`main_cause` reads a walk's largest step."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ..progress import progress_bar
from .protocols import attack_factors, protocol, protocol_factors


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
    rate and steps, and the reference, from the protocols' records (``book_steps``
    overrides the book's steps: a chapter's profile). Chapter 4 adds the twins' network
    and training budget; at the original's scale ``tools/reproduce.py`` runs it on E1's
    first pair, cumulatively and each step alone."""
    orig, book = protocol("original"), protocol("book")
    joint_lr = book.attacks.joint_lr
    book_steps = book.attacks.joint_steps if book_steps is None else book_steps
    start = {
        "reference": orig.attack_reference,
        **attack_factors(
            orig.attacks.conditions,
            steps=orig.attacks.joint_steps,
            lr=orig.attacks.joint_lr,
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
            "reference: the mean twin score",
            "correction",
            {"reference": book.attack_reference},
        ),
        Step(f"learning rate {joint_lr:g}", "choice", {"lr": joint_lr}),
        Step("stop each restart at its first success", "choice", {"stop": "early"}),
        Step(f"up to {book_steps} steps", "choice", {"steps": book_steps}),
    ]
    end = {
        "reference": book.attack_reference,
        **attack_factors(book.attacks.conditions, book_steps, joint_lr, joint=True),
    }
    return start, steps, end


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
