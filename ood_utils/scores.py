"""Divergence scores between the members of an ensemble, and the ensemble's uncertainty.

All functions take stacked log-probabilities ``log_probs: (N, B, C)`` (N members,
B inputs, C classes) and work in **nats** (natural log); :func:`nats_to_bits`
converts. Higher scores mean "more out-of-distribution".

The twin score of an input is the largest directed KL divergence over all
ordered pairs of members, ``max_{i != j} KL(p_i || p_j)``. The reference is the
mean of *the same* score over in-distribution test data, and an input is
flagged when its score exceeds ``k`` times the reference, or when any two
members disagree on the predicted class.
"""

from __future__ import annotations

import math

import torch

from .validate import check_log_probs


def kl_directed(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p || q) = sum_c p_c (log p_c - log q_c)`` over the last axis, in nats.

    Args:
        log_p, log_q: log-probabilities of the same shape ``(..., C)``.

    Returns:
        ``(...)``, non-negative up to rounding.
    """
    if log_p.shape != log_q.shape:
        raise ValueError(f"log_p and log_q must have the same shape, got {tuple(log_p.shape)} "
                         f"and {tuple(log_q.shape)}")
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def pairwise_kl(log_probs: torch.Tensor) -> torch.Tensor:
    """All directed divergences ``D[i, j, b] = KL(p_i(b) || p_j(b))``.

    Args:
        log_probs: ``(N, B, C)``.

    Returns:
        ``(N, N, B)`` in nats, zero on the diagonal.
    """
    lp = check_log_probs(log_probs, min_members=1)
    # Computed term by term (not as entropy minus cross-entropy) so that identical
    # members give exactly 0, not rounding noise. Memory: N*N*B*C elements.
    d = (lp.exp().unsqueeze(1) * (lp.unsqueeze(1) - lp.unsqueeze(0))).sum(-1)
    eye = torch.eye(lp.shape[0], dtype=torch.bool, device=lp.device).unsqueeze(-1)
    return d.masked_fill(eye, 0.0).clamp_min(0.0)


def twin_score(log_probs: torch.Tensor) -> torch.Tensor:
    """The twin score: ``max_{i != j} KL(p_i || p_j)`` per input, in nats.

    Args:
        log_probs: ``(N, B, C)`` with ``N >= 2``.

    Returns:
        ``(B,)``; exactly 0 where all members give the same distribution.
    """
    check_log_probs(log_probs, min_members=2)
    return pairwise_kl(log_probs).flatten(0, 1).amax(0)


def symmetric_kl(log_probs: torch.Tensor) -> torch.Tensor:
    """Mean over ordered pairs ``i != j`` of ``KL(p_i || p_j)``: for twins, ``(KL(1||2) + KL(2||1)) / 2``.

    This is the statistic the original calibrated with; the book uses :func:`twin_score`
    for both the score and the reference. Shapes: ``(N, B, C) -> (B,)``.
    """
    check_log_probs(log_probs, min_members=2)
    n = log_probs.shape[0]
    return pairwise_kl(log_probs).sum((0, 1)) / (n * (n - 1))


def mean_log_probs(log_probs: torch.Tensor) -> torch.Tensor:
    """Log of the ensemble's mean prediction, ``log(mean_i p_i)``: ``(N, B, C) -> (B, C)``."""
    check_log_probs(log_probs, min_members=1)
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])


def entropy_of_mean(log_probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the mean prediction: total predictive uncertainty. ``(N, B, C) -> (B,)``."""
    lpm = mean_log_probs(log_probs)
    return -(lpm.exp() * lpm).sum(-1)


def mutual_information(log_probs: torch.Tensor) -> torch.Tensor:
    """The ensemble's mutual information: mean over members of ``KL(p_i || mean p)``, in nats.

    Equals the entropy of the mean minus the mean entropy of the members (the
    "disagreement" part of the uncertainty). ``(N, B, C) -> (B,)``, 0 for identical members.
    """
    check_log_probs(log_probs, min_members=2)
    lpm = mean_log_probs(log_probs).unsqueeze(0)
    return (log_probs.exp() * (log_probs - lpm)).sum(-1).mean(0).clamp_min(0.0)


def disagreement(log_probs: torch.Tensor) -> torch.Tensor:
    """``True`` where any two members predict different classes (argmax). ``(N, B, C) -> (B,)`` bool."""
    check_log_probs(log_probs, min_members=2)
    pred = log_probs.argmax(-1)                                  # (N, B)
    return (pred != pred[:1]).any(0)


def reference(scores_in_distribution: torch.Tensor) -> float:
    """The calibration reference: the mean score over in-distribution test inputs ``(B,)``."""
    s = torch.as_tensor(scores_in_distribution)
    if s.ndim != 1 or s.numel() == 0:
        raise ValueError(f"expected a non-empty 1-D tensor of scores, got shape {tuple(s.shape)}")
    if not torch.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    return float(s.double().mean())


def flag(scores: torch.Tensor, ref: float, k: float = 10.0,
         disagree: torch.Tensor | None = None) -> torch.Tensor:
    """The flag rule: ``score > k * ref``, or (when given) argmax disagreement.

    Args:
        scores: ``(B,)`` twin scores.
        ref: the in-distribution reference (:func:`reference`), ``> 0``.
        k: the multiplier (the book's default is 10).
        disagree: optional ``(B,)`` bool from :func:`disagreement`.

    Returns:
        ``(B,)`` bool, ``True`` = flagged as out-of-distribution.
    """
    if not (isinstance(ref, (int, float)) and math.isfinite(ref) and ref > 0):
        raise ValueError(f"ref must be a positive finite number, got {ref} "
                         "(identical members give a reference of 0: nothing can be calibrated)")
    if not k > 0:
        raise ValueError(f"k must be positive, got {k}")
    flagged = scores > k * ref
    if disagree is not None:
        if disagree.shape != scores.shape:
            raise ValueError(f"disagree {tuple(disagree.shape)} must match scores {tuple(scores.shape)}")
        flagged = flagged | disagree.bool()
    return flagged


def nats_to_bits(x: torch.Tensor | float) -> torch.Tensor | float:
    """Convert nats to bits (divide by ln 2)."""
    return x / math.log(2.0)
