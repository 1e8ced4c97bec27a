"""Divergence scores between the members of an ensemble, and the ensemble's uncertainty.

All functions take stacked log-probabilities ``log_probs: (N, B, C)`` (N members,
B inputs, C classes) and work in **nats** (natural log); :func:`nats_to_bits`
converts. Higher scores mean "more out-of-distribution".

The twin score of an input is the largest directed KL divergence over all
ordered pairs of members, ``max_{i != j} KL(p_i || p_j)``. The reference is the
mean of *the same* score over in-distribution test data, and an input is
flagged when its score exceeds ``k`` times the reference, or when any two
members disagree on the predicted class.

The original's code did three things differently (:data:`ORIGINAL_RULE`): its statistic
is the per-class maximum of the ordered pairs' KL terms, summed over classes
(:func:`original_score`, at least the twin score); its reference is the mean *symmetric*
KL (:func:`original_reference`); and it checked the disagreement of members 0 and 1
only. A :class:`FlagRule` names each of these choices, so one can change one at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .validate import check_log_probs


def kl_directed(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q) = sum_c p_c (log p_c - log q_c)`` over the last axis, in nats.

    Args:
        log_p, log_q: log-probabilities of the same shape ``(..., C)``.

    Returns:
        ``(...)``, non-negative up to rounding.
    """
    if log_p.shape != log_q.shape:
        raise ValueError(
            f"log_p and log_q must have the same shape, got {tuple(log_p.shape)} and "
            f"{tuple(log_q.shape)}"
        )
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def pairwise_kl(log_probs: torch.Tensor, validate: bool = True) -> torch.Tensor:
    """All directed divergences ``D[i, j, b] = KL(p_i(b) || p_j(b))``.

    Args:
        log_probs: ``(N, B, C)``.
        validate: check ``log_probs`` first (:func:`check_log_probs`); ``False`` only
            where the check cannot run, as in a graph exported to ONNX
            (:mod:`ood_utils.live`).

    Returns:
        ``(N, N, B)`` in nats, zero on the diagonal.
    """
    lp = check_log_probs(log_probs, min_members=1) if validate else log_probs
    # Computed term by term (not as entropy minus cross-entropy) so that identical
    # members give exactly 0, not rounding noise. Memory: N*N*B*C elements.
    d = (lp.exp().unsqueeze(1) * (lp.unsqueeze(1) - lp.unsqueeze(0))).sum(-1)
    eye = torch.eye(lp.shape[0], dtype=torch.bool, device=lp.device).unsqueeze(-1)
    return d.masked_fill(eye, 0.0).clamp_min(0.0)


def twin_score(log_probs: torch.Tensor, validate: bool = True) -> torch.Tensor:
    """The twin score: ``max_{i != j} KL(p_i || p_j)`` per input, in nats.

    Args:
        log_probs: ``(N, B, C)`` with ``N >= 2``.
        validate: as in :func:`pairwise_kl`.

    Returns:
        ``(B,)``; exactly 0 where all members give the same distribution.
    """
    if validate:
        check_log_probs(log_probs, min_members=2)
    return pairwise_kl(log_probs, validate=False).flatten(0, 1).amax(0)


def symmetric_kl(log_probs: torch.Tensor) -> torch.Tensor:
    """Mean over ordered pairs ``i != j`` of ``KL(p_i || p_j)``: for twins, ``(KL(1||2)
    + KL(2||1)) / 2``.

    This is the statistic the original calibrated with; the book uses :func:`twin_score`
    for both the score and the reference. Shapes: ``(N, B, C) -> (B,)``.
    """
    check_log_probs(log_probs, min_members=2)
    n = log_probs.shape[0]
    return pairwise_kl(log_probs).sum((0, 1)) / (n * (n - 1))


def _kl_terms(
    log_q: torch.Tensor, log_p: torch.Tensor, log_target: bool
) -> torch.Tensor:
    """``F.kl_div(log_q, p, reduction="none")``: the terms ``p_c (log p_c - log q_c)``
    of ``KL(p || q)``.

    Computed as the original did, with ``F.kl_div`` in the inputs' dtype: with
    ``log_target=False`` the target is ``log_p.exp()``, so identical inputs give float
    round-off instead of 0; with ``log_target=True`` they give exactly 0.
    """
    target = log_p if log_target else log_p.exp()
    return F.kl_div(log_q, target, reduction="none", log_target=log_target)


def original_score(log_probs: torch.Tensor, log_target: bool = False) -> torch.Tensor:
    """The original's statistic (Exp 2-4): per class, the largest KL term over all
    ordered pairs of members, then summed over classes.

    For twins, ``sum_c max(p_1c (log p_1c - log p_2c), p_2c (log p_2c - log p_1c))``,
    which is at least the larger directed KL (:func:`twin_score`): the maximum is taken
    per class, before the sum. Computed with ``F.kl_div`` in ``log_probs``' dtype, as
    the original (float32; pass ``log_probs.double()`` for float64). ``log_target`` as
    in :func:`_kl_terms`.

    Args:
        log_probs: ``(N, B, C)`` with ``N >= 2``.

    Returns:
        ``(B,)`` in nats.
    """
    lp = check_log_probs(log_probs, min_members=2)
    n = lp.shape[0]
    terms = [
        _kl_terms(lp[i], lp[j], log_target)
        for i in range(n)
        for j in range(n)
        if i != j
    ]
    return torch.stack(terms).amax(0).sum(-1)


def original_reference(
    log_probs: torch.Tensor, batch_size: int = 500, log_target: bool = False
) -> float:
    """The original's reference: the mean over inputs of ``(KL(p_i || p_j) + KL(p_j ||
    p_i)) / 2``, averaged over the member pairs ``i < j``, exactly as its ``kl()``
    computed it.

    Each batch of ``batch_size`` inputs is summed by ``F.kl_div(reduction="sum")`` in
    ``log_probs``' dtype and the batch sums are added as Python floats, then divided by
    the number of inputs (the original used batches of 500 in Exp 2, 1000 for the
    attacks, 100 in Exp 4). Equal, up to rounding, to
    ``symmetric_kl(log_probs).mean()``; for identical members in float32 it is
    round-off, and can be negative (the original's Exp 3).

    Args:
        log_probs: ``(N, B, C)`` in-distribution log-probabilities, ``N >= 2``.
    """
    lp = check_log_probs(log_probs, min_members=2)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n, b = lp.shape[:2]
    pairs = [(i, j) for i in range(n - 1) for j in range(i + 1, n)]
    total = 0.0
    for start in range(0, b, batch_size):
        chunk = lp[:, start : start + batch_size]
        batch = 0.0
        for i, j in pairs:
            batch += 0.5 * (
                float(_kl_terms(chunk[i], chunk[j], log_target).sum())
                + float(_kl_terms(chunk[j], chunk[i], log_target).sum())
            )
        total += batch / len(pairs)
    return total / b


def mean_log_probs(log_probs: torch.Tensor) -> torch.Tensor:
    """Log of the ensemble's mean prediction, ``log(mean_i p_i)``: ``(N, B, C) -> (B,
    C)``."""
    check_log_probs(log_probs, min_members=1)
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])


def entropy_of_mean(log_probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the mean prediction: total predictive uncertainty. ``(N, B, C)
    -> (B,)``."""
    lpm = mean_log_probs(log_probs)
    return -(lpm.exp() * lpm).sum(-1)


def mutual_information(log_probs: torch.Tensor) -> torch.Tensor:
    """The ensemble's mutual information: mean over members of ``KL(p_i || mean p)``, in
    nats.

    Equals the entropy of the mean minus the mean entropy of the members (the
    "disagreement" part of the uncertainty). ``(N, B, C) -> (B,)``, 0 for identical
    members."""
    check_log_probs(log_probs, min_members=2)
    lpm = mean_log_probs(log_probs).unsqueeze(0)
    return (log_probs.exp() * (log_probs - lpm)).sum(-1).mean(0).clamp_min(0.0)


def disagreement(
    log_probs: torch.Tensor, first_pair_only: bool = False, validate: bool = True
) -> torch.Tensor:
    """``True`` where any two members predict different classes (argmax). ``(N, B, C) ->
    (B,)`` bool.

    With ``first_pair_only``, only members 0 and 1 are compared, as the original did for
    every N. ``validate`` as in :func:`pairwise_kl`."""
    if validate:
        check_log_probs(log_probs, min_members=2)
    pred = log_probs.argmax(-1)  # (N, B)
    if first_pair_only:
        pred = pred[:2]
    return (pred != pred[:1]).any(0)


def reference(scores_in_distribution: torch.Tensor) -> float:
    """The calibration reference: the mean score over in-distribution test inputs
    ``(B,)``."""
    s = torch.as_tensor(scores_in_distribution).detach()
    if s.ndim != 1 or s.numel() == 0:
        raise ValueError(
            f"expected a non-empty 1-D tensor of scores, got shape {tuple(s.shape)}"
        )
    if not torch.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    return float(s.double().mean())


def budget_threshold(
    scores_in_distribution: torch.Tensor | np.ndarray, budget: float
) -> float:
    """The most sensitive threshold that keeps false alarms within ``budget``.

    The rule is "flag ``score > threshold``". Of ``n`` in-distribution scores at most
    ``floor(budget * n)`` may be flagged, so the threshold is the ``(floor(budget * n) +
    1)``-th largest score: exactly the scores above it are flagged (fewer where scores
    tie with it), and any lower threshold would flag one more than the budget allows.

    Args:
        scores_in_distribution: ``(B,)`` scores of in-distribution inputs (higher = more
            OOD), a tensor on any device or a NumPy array.
        budget: the largest share of false alarms allowed, in ``[0, 1)`` (0 gives the
            maximum score).

    Returns:
        The threshold (a float).

    Raises:
        ValueError: empty or non-finite scores, or a budget outside ``[0, 1)``.
    """
    if not (isinstance(budget, (int, float)) and 0.0 <= budget < 1.0):
        raise ValueError(
            "budget must be a share of false alarms in [0, 1), e.g. 0.01 for 1%; got "
            f"{budget!r}"
        )
    s = torch.as_tensor(scores_in_distribution).detach().cpu().double().flatten()
    if s.numel() == 0:
        raise ValueError("no in-distribution scores to calibrate on")
    if not torch.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    # round: 0.29 * 100 is 28.999999999999996
    allowed = math.floor(round(budget * s.numel(), 9))
    return float(s.sort(descending=True).values[allowed])


#: The book's multiplier of the flag rule: flag above ``FLAG_K`` times the reference.
FLAG_K = 10.0


def flag(
    scores: torch.Tensor,
    ref: float,
    k: float = FLAG_K,
    disagree: torch.Tensor | None = None,
    signed_reference: bool = False,
) -> torch.Tensor:
    """The flag rule: ``score > k * ref``, or (when given) argmax disagreement.

    Args:
        scores: ``(B,)`` twin scores.
        ref: the in-distribution reference (:func:`reference`), ``> 0``.
        k: the multiplier (the book's default is 10).
        disagree: optional ``(B,)`` bool from :func:`disagreement`.
        signed_reference: accept a negative ``ref`` and flag where ``score / ref > k``,
            as the original's arithmetic did (a negative reference, from round-off,
            flips the order).

    Returns:
        ``(B,)`` bool, ``True`` = flagged as out-of-distribution.
    """
    if not (
        isinstance(ref, (int, float))
        and math.isfinite(ref)
        and (ref > 0 or (signed_reference and ref < 0))
    ):
        raise ValueError(
            f"ref must be a {'non-zero' if signed_reference else 'positive'} finite "
            f"number, got {ref} (identical members give a reference of 0: nothing can "
            "be calibrated)"
        )
    if not k > 0:
        raise ValueError(f"k must be positive, got {k}")
    flagged = scores > k * ref if ref > 0 else scores / ref > k
    if disagree is not None:
        if disagree.shape != scores.shape:
            raise ValueError(
                f"disagree {tuple(disagree.shape)} must match scores "
                f"{tuple(scores.shape)}"
            )
        flagged = flagged | disagree.bool()
    return flagged


def flagged_share(
    scores: torch.Tensor, ref: float, log_probs: torch.Tensor, k: float = FLAG_K
) -> float:
    """The share of inputs the book's rule flags: twin score above ``k * ref``, or the
    members' argmax disagreement. ``scores: (B,)``, ``log_probs: (N, B, C)``."""
    return float(flag(scores, ref, k, disagreement(log_probs)).double().mean())


def nats_to_bits(x: torch.Tensor | float) -> torch.Tensor | float:
    """Convert nats to bits (divide by ln 2)."""
    return x / math.log(2.0)


#: The statistics a :class:`FlagRule` can score with: ``(N, B, C) -> (B,)``.
STATISTICS = {"max-directed": twin_score, "elementwise-max": original_score}
#: The references a :class:`FlagRule` can calibrate with: ``(N, B, C)`` ID log-probs
#: -> float.
REFERENCES = ("mean-score", "mean-symmetric")
#: Which members' argmax disagreement a :class:`FlagRule` counts.
DISAGREEMENTS = ("all-pairs", "first-pair")


@dataclass(frozen=True)
class FlagRule:
    """A twin detector's statistic, reference and flag rule, each a named choice.

    Attributes:
        statistic: ``"max-directed"`` (:func:`twin_score`, the book) or
            ``"elementwise-max"`` (:func:`original_score`, the original's code).
        reference: ``"mean-score"`` (the statistic's own mean on in-distribution data,
            the book) or ``"mean-symmetric"`` (:func:`original_reference`, the
            original's).
        disagreement: ``"all-pairs"`` (any two members, the book) or ``"first-pair"``
            (members 0 and 1 only, the original).
        precision: ``"float32"`` (the networks' outputs, as the original) or
            ``"float64"``: the dtype the statistic and the reference are computed in.
        log_target: compute ``F.kl_div`` with log-probability targets (exactly 0 for
            identical members); only the original's ``"elementwise-max"`` and
            ``"mean-symmetric"`` use ``F.kl_div``, and the original did not.
        k: the multiplier: flag where ``score > k * reference`` or members disagree.

    :data:`BOOK_RULE` and :data:`ORIGINAL_RULE` are the two protocols;
    ``dataclasses.replace`` changes one choice at a time."""

    statistic: str = "max-directed"
    reference: str = "mean-score"
    disagreement: str = "all-pairs"
    precision: str = "float32"
    log_target: bool = False
    k: float = 10.0

    def __post_init__(self) -> None:
        for name, allowed in (
            ("statistic", tuple(STATISTICS)),
            ("reference", REFERENCES),
            ("disagreement", DISAGREEMENTS),
            ("precision", ("float32", "float64")),
            ("log_target", (False, True)),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}: expected one of {allowed}"
                )
        if not self.k > 0:
            raise ValueError(f"k must be positive, got {self.k}")

    def _cast(self, log_probs: torch.Tensor) -> torch.Tensor:
        return log_probs.double() if self.precision == "float64" else log_probs.float()

    def score(self, log_probs: torch.Tensor) -> torch.Tensor:
        """The rule's statistic: ``(N, B, C) -> (B,)`` in nats."""
        if self.statistic == "elementwise-max":
            return original_score(self._cast(log_probs), log_target=self.log_target)
        return STATISTICS[self.statistic](self._cast(log_probs))

    def reference_of(self, log_probs: torch.Tensor) -> float:
        """The reference from in-distribution log-probabilities ``(N, B, C)``."""
        if self.reference == "mean-symmetric":
            return original_reference(self._cast(log_probs), log_target=self.log_target)
        return reference(self.score(log_probs))

    def disagree(self, log_probs: torch.Tensor) -> torch.Tensor:
        """``(B,)`` bool: the members the rule compares predict different classes."""
        return disagreement(
            log_probs, first_pair_only=self.disagreement == "first-pair"
        )

    def flags(self, log_probs: torch.Tensor, ref: float) -> torch.Tensor:
        """``(B,)`` bool: ``score > k * ref`` (``score / ref > k`` for a negative
        ``ref``, as the original's arithmetic), or disagreement."""
        return flag(
            self.score(log_probs),
            ref,
            self.k,
            self.disagree(log_probs),
            signed_reference=True,
        )


#: The book's rule: max directed KL, its own mean as the reference, all
#: pairs' disagreement.
BOOK_RULE = FlagRule()
#: The original's code: per-class max then sum, mean symmetric KL, members 0 and 1 only.
ORIGINAL_RULE = FlagRule(
    statistic="elementwise-max", reference="mean-symmetric", disagreement="first-pair"
)
