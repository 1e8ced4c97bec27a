"""What every check shares: the verdicts, how an answer is called and read, and the
assertions that several chapters' checks make (a score function against a reference, an
image made from noise)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn

import numpy as np
import torch

from .. import attacks, scores

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


class CheckFailed(AssertionError):
    """The answer is wrong; the message says how."""


def _ok(message: str) -> bool:
    print(f"OK: {message}")
    return True


def _fail(message: str) -> NoReturn:
    raise CheckFailed(message)


#: What every check says about an exercise whose stub is still ``...``.
NOT_ANSWERED = (
    "not answered yet: replace the `...` in the exercise's code cell with your "
    "answer, run that cell, then run this check again"
)


def _answered(value: object, what: str) -> object:
    """``value``, unless it is still the stub's ``...`` (then :class:`CheckFailed`)."""
    if value is Ellipsis:
        _fail(f"{what} is still `...`: {NOT_ANSWERED}")
    return value


def _own_work(fn: Callable, library: dict[str, object], task: str) -> None:
    """Fail if ``fn`` is, or calls by name, one of the ``library`` functions the
    exercise asks to write.

    ``library`` maps a name as it appears in code (``"auroc"``, ``"roc_auc_score"``) to
    the function object (``None`` for one of another library). Nested functions and
    lambdas inside ``fn`` are searched too. A stub left as ``...`` or an answer that is
    not a function fails first."""
    _answered(fn, "your function")
    if not callable(fn):
        _fail(f"expected your function, got {type(fn).__name__}")
    if any(obj is not None and fn is obj for obj in library.values()):
        _fail(f"that is the library's own function; the exercise is to {task} yourself")
    stack = [fn.__code__] if hasattr(fn, "__code__") else []
    while stack:
        c = stack.pop()
        used = set(c.co_names) & set(library)
        if used:
            _fail(
                f"your function calls {', '.join(sorted(used))}, which does the "
                f"exercise for you; {task} yourself"
            )
        stack += [k for k in c.co_consts if hasattr(k, "co_names")]


def _as_tensor(value: object, what: str) -> torch.Tensor:
    """A student's result as a CPU tensor (a tensor on any device, or a NumPy array)."""
    _answered(value, what)
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        _fail(f"{what} should return a torch.Tensor, got {type(value).__name__}")
    return value.detach().cpu()


def _scalar(value: object, what: str) -> float:
    """``value`` as a float: a Python number, or a tensor / array holding one
    element."""
    _answered(value, what)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().reshape(()))
    if isinstance(value, (np.ndarray, np.generic)) and np.size(value) == 1:
        return float(np.asarray(value).reshape(()))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    shape = getattr(value, "shape", None)
    _fail(
        f"{what} should be one number, got {type(value).__name__}"
        + (f" of shape {tuple(shape)}" if shape is not None else "")
    )


def _test_inputs(n: int, b: int = 64, c: int = 10, seed: int = 1234) -> torch.Tensor:
    """Random log-probabilities ``(n, b, c)``: sharp, flat and identical rows mixed."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.logspace(-1, 1, b).view(1, b, 1)  # from nearly flat to sharp
    lp = torch.log_softmax(
        scale * torch.randn(n, b, c, generator=g, dtype=torch.float64), -1
    )
    lp[:, : b // 8] = lp[:1, : b // 8]  # some inputs where all members agree
    return lp


def _call(fn: Callable, *args: object, what: str) -> object:
    """``fn(*args)``; a stub left as ``...``, an exception or a missing ``return`` fail
    the check."""
    _answered(fn, what)
    if not callable(fn):
        _fail(f"{what} should be a function, got {type(fn).__name__}")
    try:
        out = fn(*args)
    except CheckFailed:
        raise
    except Exception as err:  # the student's code raised: say so, with the input shapes
        shapes = ", ".join(str(tuple(a.shape)) for a in args if hasattr(a, "shape"))
        _fail(
            f"{what} raised {type(err).__name__}: {err} (called with inputs of shape "
            f"{shapes})"
        )
    if out is None:
        _fail(
            f"{what} returned None: either the body is still the stub's `...` "
            f"({NOT_ANSWERED}), or a `return` is missing"
        )
    return out


def _with_shape(got: torch.Tensor, want: torch.Tensor, message: str) -> torch.Tensor:
    """``got`` in float64 when it has ``want``'s shape; else :class:`CheckFailed` with
    ``message`` and ``got``'s shape."""
    if got.shape != want.shape:
        _fail(f"{message}; got shape {tuple(got.shape)}")
    return got.detach().to(torch.float64)


def _matches(
    got: torch.Tensor,
    want: torch.Tensor,
    ok: str,
    mistakes: Mapping[str, torch.Tensor] | None = None,
    atol: float = 1e-6,
    rtol: float = 1e-6,
) -> bool:
    """``True`` (with ``ok`` printed) when ``got`` is close to ``want``;
    :class:`CheckFailed` naming the first of the common ``mistakes`` (``{message: what
    that mistake returns}``) that ``got`` is close to; ``False`` otherwise, for the
    caller's own diagnosis."""
    if torch.allclose(got, want, atol=atol, rtol=rtol):
        return _ok(ok)
    for message, wrong in (mistakes or {}).items():
        if torch.allclose(got, wrong.to(torch.float64), atol=atol, rtol=rtol):
            _fail(message)
    return False


def _explain_score(
    fn: ScoreFn,
    lp: torch.Tensor,
    got: torch.Tensor,
    want: torch.Tensor,
    name: str,
    symmetric: bool | None,
    zero_when_equal: bool,
    atol: float,
) -> None:
    """Fail with what is wrong with a score that matches neither the reference nor a
    known mistake: not 0 for equal members, not symmetric, or by how much it differs."""
    b_eq = lp.shape[1] // 8
    if zero_when_equal and got[:b_eq].abs().max() > atol:
        _fail(
            f"{name} should be 0 where all members give the same distribution, got up "
            f"to {float(got[:b_eq].abs().max()):.3g}"
        )
    if symmetric is not None:
        swapped = (
            _as_tensor(_call(fn, lp.flip(0).clone(), what=name), name)
            .detach()
            .to(torch.float64)
        )
        same = torch.allclose(swapped, got, atol=atol, rtol=1e-6)
        if symmetric and not same:
            _fail(
                f"{name} should not depend on the order of the members, but swapping "
                "them changes the score by up to "
                f"{float((swapped - got).abs().max()):.3g}"
            )
    worst = int((got - want).abs().argmax())
    _fail(
        f"{name} differs from the reference: largest error "
        f"{float((got - want).abs().max()):.3g} (input {worst}: you return "
        f"{float(got[worst]):.6g}, expected {float(want[worst]):.6g})"
    )


def check_score_function(
    fn: ScoreFn,
    reference: ScoreFn,
    name: str,
    n_members: int = 2,
    symmetric: bool | None = None,
    zero_when_equal: bool = True,
    hints: dict[str, ScoreFn] | None = None,
    atol: float = 1e-6,
) -> bool:
    """Compare a student's score ``fn: (N, B, C) -> (B,)`` with ``reference`` on unseen
    inputs.

    Args:
        fn: the answer.
        reference: the correct function.
        name: what the function computes, for the messages.
        n_members: ``N`` of the test inputs.
        symmetric: if given, whether swapping the members must leave the score
            unchanged.
        zero_when_equal: the score must be exactly 0 where all members agree.
        hints: common wrong answers ``{description: function}``; when the answer matches
            one, the message names the mistake.
        atol: tolerance of the comparison (float64 inputs).
    """
    lp = _test_inputs(n_members)
    want = reference(lp)
    got = _as_tensor(_call(fn, lp.clone(), what=name), name)
    got = _with_shape(
        got,
        want,
        f"{name} should return one score per input, shape {tuple(want.shape)} for "
        f"log_probs of shape {tuple(lp.shape)}"
        + (
            " (did you reduce over the wrong axis?)"
            if got.numel() != want.numel()
            else ""
        ),
    )
    if not torch.isfinite(got).all():
        _fail(
            f"{name} returned NaN or inf for {int((~torch.isfinite(got)).sum())} "
            "inputs: work with log-probabilities (log p - log q), not log(p) of "
            "probabilities that underflow"
        )
    mistakes = {
        f"{name}: your function computes {m}": wrong(lp)
        for m, wrong in (hints or {}).items()
    }
    if _matches(
        got,
        want,
        f"{name} matches the reference on {lp.shape[1]} unseen inputs",
        mistakes,
        atol,
    ):
        return True
    _explain_score(fn, lp, got, want, name, symmetric, zero_when_equal, atol)


def _directed(lp: torch.Tensor, i: int, j: int) -> torch.Tensor:
    return scores.kl_directed(lp[i], lp[j])


def _mean_entropy(lp: torch.Tensor) -> torch.Tensor:
    """The members' mean entropy ``(N, B, C) -> (B,)``: the usual wrong answer to both
    checks below."""
    return attacks.entropy(lp).mean(0)


def _image_batch(image: object, what: str = "image") -> torch.Tensor:
    x = _as_tensor(image, what).detach()
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        _fail(
            f"{what} should have shape (1, 28, 28) or (1, 1, 28, 28), got "
            f"{tuple(image.shape)}"
        )
    if not x.is_floating_point():
        _fail(f"{what} should be floating point in [0, 1], got dtype {x.dtype}")
    if x.min() < 0 or x.max() > 1:
        _fail(
            f"{what} has pixel values in [{float(x.min()):.3g}, {float(x.max()):.3g}]; "
            "a real image lies in [0, 1] (clamp it)"
        )
    return x.float()


#: How far (mean absolute pixel change) an attack may move an image from its noise start
#: before the check stops believing it started there: uniform noise and a real digit
#: differ by about 0.45.
FROM_START = 0.2


#: An image this close (L2, pixels in [0, 1]) to a training image of its class is taken
#: for a copy of a real digit: noise images lie at about 15 from every digit, a test
#: digit at about 5 from the nearest training digit of its class.
NEAR_A_DIGIT = 9.0


def _attacked_image(
    image: object, target: object, starts: object
) -> tuple[torch.Tensor, int]:
    """An attack's answer as ``(x (1, 1, 28, 28), target)``; the noise it started from
    is required, so that a check can tell optimised noise from a real digit."""
    if starts is None:
        raise ValueError(
            "pass the noise images the attack started from, starts=..., so that the "
            "check can tell optimised noise from a real digit"
        )
    return _image_batch(image), int(_scalar(target, "target"))


def _made_from_noise(
    image: torch.Tensor,
    starts: object,
    target: int,
    train_images: torch.Tensor | None,
    train_labels: torch.Tensor | None,
) -> str:
    """Check that ``image (1, 1, H, W)`` came from one of ``starts`` and does not copy a
    training digit of class ``target``; returns a sentence for the OK message."""
    x0 = _image_batch(starts, "starts")
    if x0.shape[1:] != image.shape[1:]:
        _fail(
            f"the start images have shape {tuple(x0.shape[1:])} but your image "
            f"{tuple(image.shape[1:])}"
        )
    moved = (image - x0).abs().flatten(1).mean(1)  # (R,) per start
    nearest = int(moved.argmin())
    if float(moved[nearest]) > FROM_START:
        _fail(
            "your image is not one of the optimised start images: it differs from the "
            f"nearest start by {float(moved[nearest]):.2f} per pixel on average, where "
            f"the attack moves noise by far less than {FROM_START}. Optimise the noise "
            "images given in the exercise and keep one of them"
        )
    sentence = (
        f"it lies {float(moved[nearest]):.3f} per pixel from start image {nearest}"
    )
    if train_images is not None:
        if train_labels is None or len(train_labels) != len(train_images):
            raise ValueError(
                "give train_labels (one per training image) with train_images"
            )
        same = _as_tensor(train_images, "train_images")[
            _as_tensor(train_labels, "train_labels") == target
        ]
        if len(same):
            dist = float((same.flatten(1).float() - image.flatten(1)).norm(dim=1).min())
            if dist < NEAR_A_DIGIT:
                _fail(
                    f"your image is within L2 {dist:.1f} of a training image of a "
                    f"{target}: it is a digit, not noise that fools the network"
                )
            sentence += f", and at least L2 {dist:.1f} from every training '{target}'"
    return sentence
