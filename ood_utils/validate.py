"""Input checks shared by the package: each raises ``ValueError`` that says what was
expected."""

from __future__ import annotations

import numpy as np
import torch


def check_images(x: object, channels: int | None = None) -> torch.Tensor:
    """Check an image batch ``(B, C, H, W)``: a non-empty, finite, floating-point
    tensor.

    Args:
        x: the batch.
        channels: required channel count ``C`` (``None`` = any).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            "images must be a torch.Tensor of shape (B, C, H, W), got "
            f"{type(x).__name__}"
        )
    if x.ndim != 4:
        raise ValueError(
            f"images must have shape (B, C, H, W), got shape {tuple(x.shape)}"
            + (" (add a channel axis: x.unsqueeze(1))" if x.ndim == 3 else "")
        )
    if not x.is_floating_point():
        raise ValueError(
            f"images must be floating point in [0, 1], got dtype {x.dtype} (convert "
            "with x.float() / 255)"
        )
    if x.shape[0] == 0:
        raise ValueError("images is an empty batch (B = 0)")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"images must have {channels} channel(s), got shape {tuple(x.shape)}"
        )
    if not torch.isfinite(x.detach()).all():
        raise ValueError("images contain NaN or inf")
    return x


def check_log_probs(
    log_probs: object, min_members: int = 1, atol: float = 1e-3
) -> torch.Tensor:
    """Check stacked log-probabilities ``(N, B, C)`` whose rows log-sum-exp to 0.

    Args:
        log_probs: ``(N, B, C)``: N members, B inputs, C classes.
        min_members: the smallest N allowed (2 for any divergence between members).
        atol: tolerance on ``|logsumexp(row)|``.
    """
    if not isinstance(log_probs, torch.Tensor):
        raise ValueError(
            "log_probs must be a torch.Tensor of shape (N, B, C), got "
            f"{type(log_probs).__name__}"
        )
    if log_probs.ndim != 3:
        hint = (
            " (for one model, add the member axis: lp.unsqueeze(0))"
            if log_probs.ndim == 2
            else ""
        )
        raise ValueError(
            "log_probs must have shape (N members, B inputs, C classes), got shape "
            f"{tuple(log_probs.shape)}{hint}"
        )
    if not log_probs.is_floating_point():
        raise ValueError(
            f"log_probs must be floating point, got dtype {log_probs.dtype}"
        )
    n, b, c = log_probs.shape
    if n < min_members:
        raise ValueError(
            f"need at least {min_members} members (N) to compare, got N = {n}"
        )
    if b == 0:
        raise ValueError("log_probs holds an empty batch (B = 0)")
    if c < 2:
        raise ValueError(f"need at least 2 classes (C), got C = {c}")
    lp = log_probs.detach()
    if not torch.isfinite(lp).all():
        raise ValueError(
            "log_probs contain NaN or inf (use log_softmax, not log(softmax), for "
            "stability)"
        )
    lse = torch.logsumexp(lp.double(), dim=-1)
    worst = float(lse.abs().max())
    if worst > atol:
        if bool((lp >= 0).all()) and bool(
            ((lp.double().sum(-1) - 1).abs() < atol).all()
        ):
            raise ValueError(
                "log_probs look like probabilities (non-negative rows summing to 1): "
                "pass log-probabilities, e.g. torch.log_softmax(logits, -1)"
            )
        raise ValueError(
            "log_probs rows must log-sum-exp to 0 (log-probabilities); the worst row "
            f"is off by {worst:.3g}: did you pass logits? use "
            "torch.log_softmax(logits, -1)"
        )
    return log_probs


def as_numpy(values: object, dtype: type = np.float64) -> np.ndarray:
    """``values`` as a NumPy array of ``dtype``: a tensor on any device, with or without
    a gradient (it is detached and copied to the CPU), an array or a list."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)


def check_scores(scores: object, name: str = "scores") -> np.ndarray:
    """Check a 1-D, non-empty, finite array of scores; return it as float64 NumPy."""
    arr = as_numpy(scores)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one score per input), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contain NaN or inf")
    return arr
