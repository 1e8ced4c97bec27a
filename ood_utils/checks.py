"""Checks for the book's exercises: call one on your answer to get a verdict that explains itself.

Every ``check_*`` function prints a line starting with ``"OK"`` and returns ``True``
when the answer is right, and raises :class:`CheckFailed` (an ``AssertionError``)
whose message says *what* is wrong (a shape, a sign, a direction of the KL, a
threshold that is too strict) when it is not. They test behaviour on inputs the
student did not see, so they cannot be passed by printing the expected number.

Score functions follow the package's conventions (:mod:`ood_utils.scores`):
stacked log-probabilities ``log_probs: (N, B, C)`` in, one score per input
``(B,)`` out, higher = more out-of-distribution.

Example::

    from ood_utils import checks

    def my_symmetric_kl(log_probs):          # (2, B, C) -> (B,)
        ...
    checks.check_symmetric_kl(my_symmetric_kl)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NoReturn

import numpy as np
import torch
from torch import nn

from . import attacks, metrics, scores, train
from .models import Ensemble, MnistCNN, predict_log_probs
from .validate import as_numpy

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


class CheckFailed(AssertionError):
    """The answer is wrong; the message says how."""


def _ok(message: str) -> bool:
    print(f"OK: {message}")
    return True


def _fail(message: str) -> NoReturn:
    raise CheckFailed(message)


#: What every check says about an exercise whose stub is still ``...``.
NOT_ANSWERED = ("not answered yet: replace the `...` in the exercise's code cell with your answer, run "
                "that cell, then run this check again")


def _answered(value: object, what: str) -> object:
    """``value``, unless it is still the stub's ``...`` (then :class:`CheckFailed`)."""
    if value is Ellipsis:
        _fail(f"{what} is still `...`: {NOT_ANSWERED}")
    return value


def _own_work(fn: Callable, library: dict[str, object], task: str) -> None:
    """Fail if ``fn`` is, or calls by name, one of the ``library`` functions the exercise asks to write.

    ``library`` maps a name as it appears in code (``"auroc"``, ``"roc_auc_score"``) to the function
    object (``None`` for one of another library). Nested functions and lambdas inside ``fn`` are
    searched too. A stub left as ``...`` or an answer that is not a function fails first.
    """
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
            _fail(f"your function calls {', '.join(sorted(used))}, which does the exercise for you; "
                  f"{task} yourself")
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
    """``value`` as a float: a Python number, or a tensor / array holding one element."""
    _answered(value, what)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().reshape(()))
    if isinstance(value, (np.ndarray, np.generic)) and np.size(value) == 1:
        return float(np.asarray(value).reshape(()))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    shape = getattr(value, "shape", None)
    _fail(f"{what} should be one number, got {type(value).__name__}"
          + (f" of shape {tuple(shape)}" if shape is not None else ""))
    return math.nan


def _test_inputs(n: int, b: int = 64, c: int = 10, seed: int = 1234) -> torch.Tensor:
    """Random log-probabilities ``(n, b, c)``: sharp, flat and identical rows mixed."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.logspace(-1, 1, b).view(1, b, 1)            # from nearly flat to sharp
    lp = torch.log_softmax(scale * torch.randn(n, b, c, generator=g, dtype=torch.float64), -1)
    lp[:, : b // 8] = lp[:1, : b // 8]                         # some inputs where all members agree
    return lp


def _call(fn: Callable, *args: object, what: str) -> object:
    """``fn(*args)``; a stub left as ``...``, an exception or a missing ``return`` fail the check."""
    _answered(fn, what)
    if not callable(fn):
        _fail(f"{what} should be a function, got {type(fn).__name__}")
    try:
        out = fn(*args)
    except CheckFailed:
        raise
    except Exception as err:  # the student's code raised: say so, with the input shapes
        shapes = ", ".join(str(tuple(a.shape)) for a in args if hasattr(a, "shape"))
        _fail(f"{what} raised {type(err).__name__}: {err} (called with inputs of shape {shapes})")
    if out is None:
        _fail(f"{what} returned None: either the body is still the stub's `...` ({NOT_ANSWERED}), "
              "or a `return` is missing")
    return out


def check_score_function(fn: ScoreFn, reference: ScoreFn, name: str, n_members: int = 2,
                         symmetric: bool | None = None, zero_when_equal: bool = True,
                         hints: dict[str, ScoreFn] | None = None, atol: float = 1e-6) -> bool:
    """Compare a student's score ``fn: (N, B, C) -> (B,)`` with ``reference`` on unseen inputs.

    Args:
        fn: the answer.
        reference: the correct function.
        name: what the function computes, for the messages.
        n_members: ``N`` of the test inputs.
        symmetric: if given, whether swapping the members must leave the score unchanged.
        zero_when_equal: the score must be exactly 0 where all members agree.
        hints: common wrong answers ``{description: function}``; when the answer matches one,
            the message names the mistake.
        atol: tolerance of the comparison (float64 inputs).
    """
    lp = _test_inputs(n_members)
    want = reference(lp)
    got = _as_tensor(_call(fn, lp.clone(), what=name), name)
    if got.shape != want.shape:
        _fail(f"{name} should return one score per input, shape {tuple(want.shape)} for log_probs "
              f"of shape {tuple(lp.shape)}; got shape {tuple(got.shape)}"
              + (" (did you reduce over the wrong axis?)" if got.numel() != want.numel() else ""))
    got = got.detach().to(torch.float64)
    if not torch.isfinite(got).all():
        _fail(f"{name} returned NaN or inf for {int((~torch.isfinite(got)).sum())} inputs: "
              "work with log-probabilities (log p - log q), not log(p) of probabilities that underflow")
    if torch.allclose(got, want, atol=atol, rtol=1e-6):
        return _ok(f"{name} matches the reference on {lp.shape[1]} unseen inputs")
    for mistake, wrong in (hints or {}).items():
        if torch.allclose(got, wrong(lp).to(torch.float64), atol=atol, rtol=1e-6):
            _fail(f"{name}: your function computes {mistake}")
    b_eq = lp.shape[1] // 8
    if zero_when_equal and got[:b_eq].abs().max() > atol:
        _fail(f"{name} should be 0 where all members give the same distribution, got up to "
              f"{float(got[:b_eq].abs().max()):.3g}")
    if symmetric is not None:
        swapped = _as_tensor(_call(fn, lp.flip(0).clone(), what=name), name).detach().to(torch.float64)
        same = torch.allclose(swapped, got, atol=atol, rtol=1e-6)
        if symmetric and not same:
            _fail(f"{name} should not depend on the order of the members, but swapping them changes "
                  f"the score by up to {float((swapped - got).abs().max()):.3g}")
    worst = int((got - want).abs().argmax())
    _fail(f"{name} differs from the reference: largest error {float((got - want).abs().max()):.3g} "
          f"(input {worst}: you return {float(got[worst]):.6g}, expected {float(want[worst]):.6g})")
    return False


def _directed(lp: torch.Tensor, i: int, j: int) -> torch.Tensor:
    return scores.kl_directed(lp[i], lp[j])


def _mean_entropy(lp: torch.Tensor) -> torch.Tensor:
    """The members' mean entropy ``(N, B, C) -> (B,)``: the usual wrong answer to both checks below."""
    return attacks.entropy(lp).mean(0)


def check_symmetric_kl(fn: ScoreFn) -> bool:
    """Check ``fn: (2, B, C) -> (B,)`` = ``(KL(p1||p2) + KL(p2||p1)) / 2``."""
    return check_score_function(
        fn, scores.symmetric_kl, "the symmetric KL", symmetric=True,
        hints={"the sum KL(p1||p2) + KL(p2||p1); the exercise asks for their mean":
               lambda lp: _directed(lp, 0, 1) + _directed(lp, 1, 0),
               "only KL(p1||p2); add the other direction": lambda lp: _directed(lp, 0, 1),
               "only KL(p2||p1); add the other direction": lambda lp: _directed(lp, 1, 0)})


def check_twin_score(fn: ScoreFn) -> bool:
    """Check ``fn: (2, B, C) -> (B,)`` = ``max(KL(p1||p2), KL(p2||p1))``, the twin score."""
    return check_score_function(
        fn, scores.twin_score, "the twin score", symmetric=True,
        hints={"only KL(p1||p2); take the larger of both directions": lambda lp: _directed(lp, 0, 1),
               "only KL(p2||p1); take the larger of both directions": lambda lp: _directed(lp, 1, 0),
               "the mean of both directions; the twin score is their maximum":
               scores.symmetric_kl,
               "the smaller of both directions; take the larger":
               lambda lp: torch.minimum(_directed(lp, 0, 1), _directed(lp, 1, 0))})


def check_mutual_information(fn: ScoreFn, n_members: int = 4) -> bool:
    """Check ``fn: (N, B, C) -> (B,)`` = entropy of the mean minus the mean entropy."""
    return check_score_function(
        fn, scores.mutual_information, "the mutual information", n_members=n_members, symmetric=True,
        hints={"the entropy of the mean prediction (total uncertainty); subtract the members' "
               "mean entropy": scores.entropy_of_mean,
               "the members' mean entropy; the score is the entropy of the mean minus this":
               _mean_entropy})


def check_entropy_of_mean(fn: ScoreFn, n_members: int = 4) -> bool:
    """Check ``fn: (N, B, C) -> (B,)`` = entropy of the ensemble's mean prediction."""
    return check_score_function(
        fn, scores.entropy_of_mean, "the entropy of the mean", n_members=n_members,
        symmetric=True, zero_when_equal=False,
        hints={"the mean of the members' entropies; average the probabilities first, then take "
               "the entropy": _mean_entropy})


def check_energy(fn: Callable[[torch.Tensor], torch.Tensor], temperature: float = 1.0) -> bool:
    """Check an energy score ``fn: logits (B, C) -> (B,)`` = ``-T * logsumexp(logits / T)``.

    Higher means more out-of-distribution (the convention of ``pytorch_ood``'s ``EnergyBased``).
    """
    g = torch.Generator().manual_seed(99)
    logits = 4 * torch.randn(64, 10, generator=g, dtype=torch.float64) + 20   # large: naive exp overflows in float32
    want = -temperature * torch.logsumexp(logits / temperature, -1)
    got = _as_tensor(_call(fn, logits.clone(), what="the energy score"), "the energy score")
    if got.shape != want.shape:
        _fail(f"the energy score should have shape {tuple(want.shape)} for logits of shape "
              f"{tuple(logits.shape)}, got {tuple(got.shape)}")
    got = got.detach().to(torch.float64)
    if torch.allclose(got, want, rtol=1e-6, atol=1e-6):
        return _ok(f"the energy score matches -T logsumexp(logits / T) with T = {temperature}")
    if torch.allclose(got, -want, rtol=1e-6, atol=1e-6):
        _fail("the sign is flipped: in-distribution inputs have large logits and so *low* energy; "
              "return -T * logsumexp(logits / T) so that higher = more out-of-distribution")
    if not torch.isfinite(got).all():
        _fail("NaN or inf: use torch.logsumexp instead of log(sum(exp(...))), which overflows")
    if torch.allclose(got, -logits.max(-1).values, rtol=1e-6, atol=1e-6):
        _fail("you returned minus the max logit (the MaxLogit score); the energy uses logsumexp")
    _fail(f"the energy score differs from -T logsumexp(logits / T) (T = {temperature}) by up to "
          f"{float((got - want).abs().max()):.3g}")
    return False


def _threshold_cases() -> list[tuple[torch.Tensor, float]]:
    """Fresh in-distribution scores and budgets: ``budget * n`` whole or not, ties, one tiny set."""
    g = torch.Generator().manual_seed(11)
    smooth = torch.randn(1000, generator=g, dtype=torch.float64).exp()     # heavy right tail
    ties = (4 * torch.rand(400, generator=g, dtype=torch.float64)).round() / 4   # five values
    return [(smooth, 0.01), (smooth[:999], 0.01), (smooth[:730], 0.05), (ties, 0.1),
            (smooth[:20], 0.0), (smooth[:37], 0.25)]


def check_threshold(fn: Callable[[torch.Tensor, float], float]) -> bool:
    """Check ``fn(scores_id (B,), budget) -> float``: a threshold for a false-alarm budget.

    The rule is "flag ``score > threshold``". On fresh scores (ties included, budgets for which
    ``budget * B`` is not a whole number), the threshold must flag at most ``budget`` of them and
    be as sensitive as that allows, each within one sample: a quantile of the scores, e.g.
    ``torch.quantile(scores, 1 - budget)``, passes.
    """
    _own_work(fn, {"budget_threshold": scores.budget_threshold}, "choose the threshold")
    cases = _threshold_cases()
    for k, (s, budget) in enumerate(cases):
        t = _scalar(_call(fn, s.clone(), budget, what="your threshold function"), "the threshold")
        if not math.isfinite(t):
            _fail(f"case {k}: the threshold should be finite, got {t}")
        n, flagged = s.numel(), int((s > t).sum())
        allowed = math.floor(round(budget * n, 9))
        best_t = scores.budget_threshold(s, budget)
        best = int((s > best_t).sum())                                  # the most the budget lets through
        where = f"case {k} ({n} scores, budget {budget:.0%}{', with ties' if k == 3 else ''})"
        if flagged > allowed + 1:
            _fail(f"{where}: your threshold {t:.4g} flags {flagged} in-distribution scores, more than the "
                  f"{allowed} the budget allows: raise it. The rule flags score > threshold, so about "
                  f"(1 - budget) of the scores must lie at or below it")
        if flagged < best - 1:
            _fail(f"{where}: within budget ({flagged} false alarms), but stricter than needed: a threshold "
                  f"of {best_t:.4g} flags {best} and keeps within the budget. "
                  "Lower it: as low as the budget allows")
    return _ok(f"your thresholds keep within the budget and are as sensitive as it allows (within one "
               f"sample) on {len(cases)} unseen sets of scores, ties included")


def _auroc_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fresh score pairs: continuous, 0/1 (all ties), rounded (many ties), OOD scoring lower."""
    g = torch.Generator().manual_seed(12)
    r = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    n = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    return [(n(300), n(200) + 1.0), ((r(500) < 0.05).double(), (r(400) < 0.6).double()),
            ((2 * n(250)).round(), (2 * n(150) + 1).round()), (n(120) + 0.5, n(90))]


def check_auroc(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Check ``fn(scores_id (B_in,), scores_ood (B_out,)) -> float``: the AUROC by its definition.

    OOD is the positive class and higher scores mean more OOD: the AUROC is the probability that a
    random OOD score is above a random in-distribution one, ties counting 1/2. Tested on fresh
    scores with and without ties, against :func:`ood_utils.metrics.auroc`, to 1e-6.
    """
    _own_work(fn, {"auroc": metrics.auroc, "roc_auc_score": None, "roc_curve": None},
              "compute the AUROC")
    for k, (s_in, s_out) in enumerate(_auroc_cases()):
        want = metrics.auroc(s_in, s_out)
        got = _scalar(_call(fn, s_in.clone(), s_out.clone(), what="your AUROC function"), "the AUROC")
        if abs(got - want) < 1e-6:
            continue
        strict = float((s_out[None, :] > s_in[:, None]).double().mean())
        if abs(got - (1 - want)) < 1e-6:
            _fail(f"case {k}: you got 1 - AUROC ({got:.4f}): the positive class is out-of-distribution, "
                  "and higher scores should mean more out-of-distribution")
        if abs(got - strict) < 1e-6:
            _fail(f"case {k}: ties count 1/2, and you counted them as 0 ({got:.4f} instead of {want:.4f})")
        if not 0.0 <= got <= 1.0:
            _fail(f"case {k}: an AUROC is a probability in [0, 1], got {got}")
        _fail(f"case {k}: AUROC {got:.4f} is not {want:.4f}; the AUROC is the probability that a random "
              "OOD input scores higher than a random in-distribution one (ties count 1/2)")
    return _ok(f"your AUROC agrees with the definition on {len(_auroc_cases())} unseen pairs of score sets, "
               "ties included")


def check_subset_auroc(fn: Callable[..., float]) -> bool:
    """Check ``fn(lp_in (M, B_in, C), lp_out (M, B_out, C), members, score_fn) -> float`` (chapter 7):
    the AUROC of ``score_fn`` computed from the chosen members only, on fresh ensembles."""
    lp_in, lp_out = _test_inputs(6, 80, seed=21), _test_inputs(6, 60, seed=22)
    lp_out = torch.log_softmax(3 * lp_out, -1)           # the OOD members disagree more
    for members in [(0, 3, 5), (4, 1), (2, 3, 4, 5)]:
        for score_fn in (scores.mutual_information, scores.entropy_of_mean):
            idx = list(members)
            want = metrics.auroc(score_fn(lp_in[idx]), score_fn(lp_out[idx]))
            got = _scalar(_call(fn, lp_in.clone(), lp_out.clone(), members, score_fn, what="your function"),
                          "your AUROC")
            if abs(got - want) < 1e-6:
                continue
            first = list(range(len(members)))
            if abs(got - metrics.auroc(score_fn(lp_in), score_fn(lp_out))) < 1e-6:
                _fail(f"members {members}: you scored all {len(lp_in)} members; keep only the chosen ones, "
                      "lp[list(members)]")
            if abs(got - metrics.auroc(score_fn(lp_in[first]), score_fn(lp_out[first]))) < 1e-6:
                _fail(f"members {members}: you took the first {len(members)} members, not the chosen ones")
            _fail(f"members {members}, {score_fn.__name__}: AUROC {got:.4f}, expected {want:.4f}")
    return _ok("your subset AUROC matches on 3 unseen subsets of 6 members, with two scores")


def check_rotation(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """Check ``fn(images (B, 1, H, W), k) -> (B, 1, H, W)``: ``k`` quarter turns counter-clockwise
    (chapter 8), on fresh images that are not square, for k = 0, 1, 2, 3, -1 and 5."""
    g = torch.Generator().manual_seed(13)
    x = torch.rand(5, 1, 6, 6, generator=g)
    for k in (1, 0, 2, 3, -1, 5):
        want = torch.rot90(x, k, dims=(-2, -1))
        got = _as_tensor(_call(fn, x.clone(), k, what="your rotation"), "your rotation")
        if got.shape != want.shape:
            _fail(f"k = {k}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}: turn the last two "
                  "axes (height, width), not the batch or channel axis")
        if torch.equal(got, want):
            continue
        if torch.equal(got, x):
            _fail(f"k = {k}: the images come back unturned")
        if torch.equal(got, torch.rot90(x, -k, dims=(-2, -1))):
            _fail(f"k = {k}: you turned clockwise; the exercise asks for counter-clockwise turns "
                  "(torch.rot90 with a positive k, or flip then transpose)")
        if torch.equal(got, x.transpose(-2, -1)):
            _fail(f"k = {k}: a transpose mirrors the image along its diagonal; a quarter turn also flips it")
        _fail(f"k = {k}: not the image turned by {k} quarter turns counter-clockwise")
    return _ok("your rotation matches torch.rot90 for k = 1, 0, 2, 3, -1, 5 on unseen images")


def check_bootstrap_auroc(fn: Callable[[torch.Tensor, torch.Tensor, int, torch.Generator], torch.Tensor]) -> bool:
    """Check ``fn(scores_id (B_in,), scores_ood (B_out,), n_boot, generator) -> (n_boot,)`` (chapter 8):
    AUROCs of resamples with replacement of both sets, each index drawn from ``generator``.

    On fresh scores the answer must be reproducible from the generator, centred on the AUROC, and
    as spread as a reference bootstrap of 2,000 resamples (standard deviation within 20%):
    resampling one set only, or without replacement, gives too little spread.
    """
    g = torch.Generator().manual_seed(14)
    s_in = torch.randn(250, generator=g, dtype=torch.float64)
    s_out = torch.randn(250, generator=g, dtype=torch.float64) + 1.0
    auc = metrics.auroc(s_in, s_out)
    got = _as_tensor(_call(fn, s_in.clone(), s_out.clone(), 400, torch.Generator().manual_seed(0),
                           what="your bootstrap"), "your bootstrap").double()
    if got.shape != (400,):
        _fail(f"expected one AUROC per resample, shape (400,) for n_boot = 400; got {tuple(got.shape)}")
    if not ((got >= 0) & (got <= 1)).all():
        _fail("every entry should be an AUROC, in [0, 1]")
    again = _as_tensor(_call(fn, s_in.clone(), s_out.clone(), 400, torch.Generator().manual_seed(0),
                             what="your bootstrap"), "your bootstrap").double()
    if not torch.equal(got, again):
        _fail("two calls with generators seeded alike give different AUROCs: draw every index from the "
              "generator you are given (torch.randint(..., generator=generator))")
    if float(got.std()) < 1e-9:
        _fail("every resample gives the same AUROC: draw indices with replacement (torch.randint), a new "
              "set for each resample; a permutation of the scores does not change their AUROC")
    ref_g = torch.Generator().manual_seed(1)
    ref = torch.tensor([metrics.auroc(s_in[torch.randint(len(s_in), (len(s_in),), generator=ref_g)],
                                      s_out[torch.randint(len(s_out), (len(s_out),), generator=ref_g)])
                        for _ in range(2000)], dtype=torch.float64)
    if abs(float(got.mean()) - auc) > 0.015:
        _fail(f"your resampled AUROCs average {float(got.mean()):.3f}, far from the AUROC of the scores, "
              f"{auc:.3f}: resample each set from itself, keeping its size")
    ratio = float(got.std() / ref.std())
    if ratio < 0.8:
        _fail(f"your AUROCs vary too little (standard deviation {float(got.std()):.4f}, a bootstrap gives "
              f"about {float(ref.std()):.4f}): resample *both* sets, each with replacement and at its own size")
    if ratio > 1.25:
        _fail(f"your AUROCs vary too much (standard deviation {float(got.std()):.4f}, a bootstrap gives "
              f"about {float(ref.std()):.4f}): resample each set at its own size, not smaller")
    return _ok(f"reproducible from the generator, centred on the AUROC ({float(got.mean()):.3f} vs {auc:.3f}) "
               f"and as spread as the bootstrap (standard deviation {ratio:.2f} x the reference's)")


def _class_means(train: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted class labels ``(K,)`` and each class's mean feature vector ``(K, D)``."""
    classes = labels.unique()
    return classes, torch.stack([train[labels == c].mean(0) for c in classes])


def _mahalanobis_reference(train: torch.Tensor, labels: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Smallest squared Mahalanobis distance to a class mean, with the covariance shared by the classes."""
    classes, means = _class_means(train, labels)
    centred = train - means[torch.searchsorted(classes, labels)]
    precision = torch.linalg.pinv(centred.T @ centred / len(train))
    d = x[:, None, :] - means[None]                                                         # (B, K, D)
    return torch.einsum("bkd,de,bke->bk", d, precision, d).min(1).values


def check_mahalanobis(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(train_features (M, D), train_labels (M,), features (B, D)) -> (B,)`` (chapter 9): the
    smallest squared Mahalanobis distance from each feature vector to a class mean, with one covariance
    shared by all classes, fitted on the training features (higher = more OOD).

    Tested on fresh, correlated features; a constant factor (dividing the covariance by ``M``,
    ``M - 1`` or ``M - K``) is accepted.
    """
    _own_work(fn, {"Mahalanobis": None}, "fit the class means and the shared covariance")
    g = torch.Generator().manual_seed(15)
    mix = torch.randn(4, 4, generator=g, dtype=torch.float64)                   # correlated features
    centres = 3 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(3).repeat_interleave(torch.tensor([60, 90, 150]))
    train = centres[labels] + torch.randn(300, 4, generator=g, dtype=torch.float64) @ mix
    x = torch.cat([centres + 0.1, 4 * torch.randn(20, 4, generator=g, dtype=torch.float64)])
    want = _mahalanobis_reference(train, labels, x)
    got = _as_tensor(_call(fn, train.clone(), labels.clone(), x.clone(), what="your Mahalanobis score"),
                     "your Mahalanobis score").double()
    if got.shape != want.shape:
        _fail(f"expected one score per input, shape {tuple(want.shape)} for features of shape "
              f"{tuple(x.shape)}; got {tuple(got.shape)}")
    ratio = got / want
    if torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-4) and float(ratio.mean()) > 0:
        return _ok("your score matches the Mahalanobis distance to the nearest class mean on 23 unseen inputs "
                   f"(up to the covariance's normalisation, a factor {float(ratio.mean()):.4f})")
    if float((got * want).sum()) < 0:
        _fail("your scores have the wrong sign: higher should mean farther from every class")
    _, means = _class_means(train, labels)
    euclid = (x[:, None] - means[None]).pow(2).sum(-1).min(1).values
    if torch.allclose(got, euclid, rtol=1e-4) or torch.allclose(got.sqrt(), euclid.sqrt(), rtol=1e-4):
        _fail("that is the Euclidean distance to the nearest mean: weigh the directions with the inverse of "
              "the features' covariance")
    one_mean = _mahalanobis_reference(train, torch.zeros_like(labels), x)
    if torch.allclose(got / one_mean, (got / one_mean).mean().expand_as(got), rtol=1e-4):
        _fail("you measured the distance to the mean of all training features; take the nearest *class* "
              "mean, with the covariance of the features around their own class mean")
    root = got / want.sqrt()
    if torch.allclose(root, root.mean().expand_as(root), rtol=1e-4):
        _fail("close: return the *squared* distance (no square root), as pytorch-ood does")
    _fail("your scores are not the Mahalanobis distance to the nearest class mean: centre each training "
          "feature on its class mean, average the outer products into one covariance, invert it "
          "(torch.linalg.pinv), and take the smallest (x - mean)^T precision (x - mean) over the classes")


def check_calibration_draws(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> bool:
    """Check ``fn(scores_id (B,), scores_ood (B_out,), n_cal, budget, draws, generator) -> (alarms, caught)``
    (chapter 10): for each of ``draws`` random calibration sets of ``n_cal`` in-distribution scores, the
    threshold for ``budget`` (:func:`ood_utils.scores.budget_threshold`), then the share of the *other*
    in-distribution scores above it (false alarms) and of the OOD scores above it (caught); both ``(draws,)``.
    """
    g = torch.Generator().manual_seed(16)
    s_in = torch.rand(2000, generator=g, dtype=torch.float64)
    s_out = 0.6 + torch.rand(500, generator=g, dtype=torch.float64)
    out = {}
    for n_cal in (20, 500):
        res = _call(fn, s_in.clone(), s_out.clone(), n_cal, 0.05, 300, torch.Generator().manual_seed(0),
                    what="your function")
        if not (isinstance(res, tuple) and len(res) == 2):
            _fail(f"return two tensors (false alarms, caught), got {type(res).__name__}")
        alarms, caught = (_as_tensor(r, "your function").double() for r in res)
        if alarms.shape != (300,) or caught.shape != (300,):
            _fail(f"expected two tensors of shape (300,) for draws = 300, got {tuple(alarms.shape)} and "
                  f"{tuple(caught.shape)}")
        out[n_cal] = (alarms, caught)
    a20, a500 = out[20][0], out[500][0]
    if float(a500.std()) < 1e-9 or float(a20.std()) < 1e-9:
        _fail("every calibration gives the same false-alarm share: draw a new random calibration set for each "
              "draw, and measure the false alarms on the in-distribution scores it did not use")
    if float(a500.median()) < 0.035 or float(a500.median()) > 0.065:
        _fail(f"with 500 calibration scores the median false-alarm share is {float(a500.median()):.1%}, far from "
              "the 5% budget: set each threshold with scores.budget_threshold(calibration, budget) and count "
              "the held-out scores strictly above it")
    if float(a20.std()) < 1.5 * float(a500.std()):
        _fail("the false alarms vary as much with 20 calibration scores as with 500: calibrate on n_cal scores "
              "only, and evaluate on the rest")
    c = out[500][1]
    expected = 0.65        # a 5% threshold on U(0, 1) scores is near 0.95, and 65% of U(0.6, 1.6) lies above it
    if abs(float(c.median()) - expected) > 0.05:
        _fail(f"the share of OOD scores caught has median {float(c.median()):.1%}, where about {expected:.0%} lie "
              "above a 5% threshold here: count the OOD scores strictly above each threshold")
    return _ok(f"median false alarms {float(a500.median()):.1%} for a 5% budget; 20 calibration scores spread "
               f"them {float(a20.std() / a500.std()):.1f}x as much as 500 (300 unseen draws each)")


def check_flag_shares(fn: Callable[[dict, str, float, str], dict]) -> bool:
    """Check ``fn(para, calib, budget, kind) -> {label: share}`` (chapter 11): the threshold for
    ``budget`` on ``para[calib][kind]`` (:func:`ood_utils.scores.budget_threshold`), then for every text
    the share of its paragraph scores ``para[label][kind]`` strictly above it."""
    g = torch.Generator().manual_seed(17)
    para = {"English: held-out": {"twin": torch.rand(200, generator=g), "nll": torch.rand(200, generator=g)},
            "English: other": {"twin": 0.1 + torch.rand(80, generator=g), "nll": torch.rand(80, generator=g)},
            "German": {"twin": 0.9 + torch.rand(50, generator=g), "nll": 2 * torch.rand(50, generator=g)}}
    for kind, budget in (("twin", 0.05), ("nll", 0.1)):
        t = scores.budget_threshold(para["English: held-out"][kind], budget)
        want = {k: float((v[kind] > t).double().mean()) for k, v in para.items()}
        got = _call(fn, {k: dict(v) for k, v in para.items()}, "English: held-out", budget, kind,
                    what="your function")
        if not isinstance(got, dict) or set(got) != set(para):
            _fail(f"return a dict with one share per text ({', '.join(para)}), got "
                  f"{sorted(got) if isinstance(got, dict) else type(got).__name__}")
        for label in para:
            share = _scalar(got[label], f"the share of {label}")
            if abs(share - want[label]) > 1e-9:
                other = "nll" if kind == "twin" else "twin"
                t_other = scores.budget_threshold(para["English: held-out"][other], budget)
                if abs(share - float((para[label][other] > t_other).double().mean())) < 1e-9:
                    _fail(f"kind = {kind!r}: you used the {other!r} scores; read para[label][kind]")
                pooled = torch.cat([v[kind] for v in para.values()])
                if abs(share - float((para[label][kind] > scores.budget_threshold(pooled, budget))
                                     .double().mean())) < 1e-9:
                    _fail("you calibrated on every text; calibrate on para[calib] only, the English you trust")
                _fail(f"kind = {kind!r}, budget {budget:.0%}: {label} gets {share:.3f}, expected {want[label]:.3f}")
    return _ok("your shares match on three unseen texts, for both kinds of score and two budgets")


def check_fpr_at_tpr(fn: Callable[[np.ndarray, np.ndarray], float]) -> bool:
    """Check ``fn(scores_id, scores_ood) -> float``: the FPR at 95% TPR (OOD positive)."""
    rng = np.random.default_rng(7)
    cases = [(rng.normal(0, 1, 500), rng.normal(2, 1, 300)),
             (rng.normal(0, 1, 200), rng.normal(0.5, 2, 1000)),
             (np.round(rng.normal(0, 1, 400), 1), np.round(rng.normal(1, 1, 400), 1))]   # ties
    for k, (s_in, s_out) in enumerate(cases):
        want = metrics.fpr_at_tpr(s_in, s_out, 0.95)
        got = _scalar(_call(fn, s_in.copy(), s_out.copy(), what="your FPR@95TPR function"),
                      "the value your function returns")
        if abs(got - want) > 1e-9:
            if abs(got - metrics.fpr_at_tpr(s_out, s_in, 0.95)) < 1e-9:
                _fail("you swapped the roles: OOD inputs are the positives (the 95% to catch), "
                      "in-distribution inputs give the false positives")
            _fail(f"case {k}: expected FPR {want:.4f}, got {got:.4f}. Choose the highest threshold "
                  "that still flags at least 95% of the OOD scores, then count the in-distribution "
                  "scores flagged by it" + (" (this case has ties)" if k == 2 else ""))
    return _ok(f"FPR@95TPR agrees with the reference on {len(cases)} cases, ties included")


def _image_batch(image: object, what: str = "image") -> torch.Tensor:
    x = _as_tensor(image, what).detach()
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        _fail(f"{what} should have shape (1, 28, 28) or (1, 1, 28, 28), got {tuple(image.shape)}")
    if not x.is_floating_point():
        _fail(f"{what} should be floating point in [0, 1], got dtype {x.dtype}")
    if x.min() < 0 or x.max() > 1:
        _fail(f"{what} has pixel values in [{float(x.min()):.3g}, {float(x.max()):.3g}]; a real "
              "image lies in [0, 1] (clamp it)")
    return x.float()


#: How far (mean absolute pixel change) an attack may move an image from its noise start before the
#: check stops believing it started there: uniform noise and a real digit differ by about 0.45.
FROM_START = 0.2

#: An image this close (L2, pixels in [0, 1]) to a training image of its class is taken for a copy
#: of a real digit: noise images lie at about 15 from every digit, a test digit at about 5 from
#: the nearest training digit of its class.
NEAR_A_DIGIT = 9.0


def _made_from_noise(image: torch.Tensor, starts: object, target: int,
                     train_images: torch.Tensor | None, train_labels: torch.Tensor | None) -> str:
    """Check that ``image (1, 1, H, W)`` came from one of ``starts`` and does not copy a training
    digit of class ``target``; returns a sentence for the OK message."""
    x0 = _image_batch(starts, "starts")
    if x0.shape[1:] != image.shape[1:]:
        _fail(f"the start images have shape {tuple(x0.shape[1:])} but your image {tuple(image.shape[1:])}")
    moved = (image - x0).abs().flatten(1).mean(1)                    # (R,) per start
    nearest = int(moved.argmin())
    if float(moved[nearest]) > FROM_START:
        _fail(f"your image is not one of the optimised start images: it differs from the nearest start by "
              f"{float(moved[nearest]):.2f} per pixel on average, where the attack moves noise by far less "
              f"than {FROM_START}. Optimise the noise images given in the exercise and keep one of them")
    sentence = f"it lies {float(moved[nearest]):.3f} per pixel from start image {nearest}"
    if train_images is not None:
        if train_labels is None or len(train_labels) != len(train_images):
            raise ValueError("give train_labels (one per training image) with train_images")
        same = _as_tensor(train_images, "train_images")[_as_tensor(train_labels, "train_labels") == target]
        if len(same):
            dist = float((same.flatten(1).float() - image.flatten(1)).norm(dim=1).min())
            if dist < NEAR_A_DIGIT:
                _fail(f"your image is within L2 {dist:.1f} of a training image of a {target}: it is a digit, "
                      "not noise that fools the network")
            sentence += f", and at least L2 {dist:.1f} from every training '{target}'"
    return sentence


def check_fooling_image(model: nn.Module, image: object, target: int, starts: object = None,
                        min_prob: float = 0.8, train_images: torch.Tensor | None = None,
                        train_labels: torch.Tensor | None = None) -> bool:
    """Check a fooling image: ``model`` gives it class ``target`` with probability ``>= min_prob``,
    and it was made from noise.

    Args:
        model: a classifier returning logits ``(B, K)``.
        image: one image ``(1, 28, 28)`` in ``[0, 1]``.
        target: the class the attack aimed for.
        starts: the noise images the attack started from, ``(R, 1, 28, 28)``; the image must lie
            near one of them (:data:`FROM_START`). Required: a real digit of the class would
            otherwise pass.
        train_images, train_labels: optionally, training images ``(M, 1, 28, 28)`` and labels
            ``(M,)``; the image must then be far from every one of class ``target``.
    """
    if starts is None:
        raise ValueError("pass the noise images the attack started from, starts=..., so that the check "
                         "can tell optimised noise from a real digit")
    x = _image_batch(image)
    target = int(_scalar(target, "target"))
    probs = predict_log_probs(model, x).exp()[0]
    p = float(probs[target])
    if p < min_prob:
        top = int(probs.argmax())
        _fail(f"the model gives class {target} only {p:.1%} (it prefers class {top} at "
              f"{float(probs[top]):.1%}); optimise longer, or check that you minimise the negative "
              f"log-probability of class {target}")
    origin = _made_from_noise(x, starts, target, train_images, train_labels)
    return _ok(f"the model is {p:.1%} sure this image is a {target}; {origin}")


def check_twins_fooled(ensemble: nn.Module, image: object, target: int, ref: float, starts: object = None,
                       k: float = 10.0, min_prob: float = 0.8, train_images: torch.Tensor | None = None,
                       train_labels: torch.Tensor | None = None) -> bool:
    """Check an attack on the twins: every member ``>= min_prob`` sure of ``target``, unflagged, and
    the image made from noise.

    Args:
        ensemble: an :class:`ood_utils.models.Ensemble` (``forward`` gives ``(N, B, C)`` log-probabilities).
        image: one image ``(1, 28, 28)``.
        target: the class the attacker wants.
        ref: the in-distribution reference of the twin score (nats).
        starts: the noise images the attack started from, ``(R, 1, 28, 28)`` (required, as in
            :func:`check_fooling_image`).
        k: the flag multiplier.
        train_images, train_labels: as in :func:`check_fooling_image`.
    """
    if starts is None:
        raise ValueError("pass the noise images the attack started from, starts=..., so that the check "
                         "can tell optimised noise from a real digit")
    x = _image_batch(image)
    target = int(_scalar(target, "target"))
    lp = predict_log_probs(ensemble, x)                              # (N, 1, C)
    probs = lp.exp()[:, 0, target]
    score = float(scores.twin_score(lp)[0])
    weak = [i for i, p in enumerate(probs.tolist()) if p < min_prob]
    if weak:
        _fail("not every member is fooled: " + ", ".join(
            f"member {i} gives class {target} {float(probs[i]):.1%}" for i in weak)
            + f" (needed {min_prob:.0%}); an objective must push *each* member, e.g. the sum of "
            "their negative log-probabilities")
    if score > k * ref:
        _fail(f"all members say {target}, but the twin score {score:.3g} is {score / ref:.1f}x the "
              f"reference, above the {k:g}x flag: the detector catches it. Add a term that pulls "
              "the members' distributions together")
    origin = _made_from_noise(x, starts, target, train_images, train_labels)
    return _ok(f"every member is at least {float(probs.min()):.1%} sure of class {target}, and the "
               f"twin score is {score / ref:.2f}x the reference: the attack evades the {k:g}x rule; {origin}")


def check_cosine_similarity(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(a, b): (B, ...) x (B, ...) -> (B,)``, the cosine similarity of flattened rows."""
    g = torch.Generator().manual_seed(5)
    a = torch.randn(16, 4, 3, 3, generator=g, dtype=torch.float64)
    b = a + 0.5 * torch.randn(16, 4, 3, 3, generator=g, dtype=torch.float64)
    b[0] = 3 * a[0]                                              # same direction, other length
    want = torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)
    got = _as_tensor(_call(fn, a.clone(), b.clone(), what="the cosine similarity"),
                     "the cosine similarity")
    if got.shape != want.shape:
        _fail(f"expected one similarity per input, shape {tuple(want.shape)}, for inputs of shape "
              f"{tuple(a.shape)}; got {tuple(got.shape)} (flatten all but the batch axis first)")
    got = got.detach().to(torch.float64)
    if torch.allclose(got, want, atol=1e-6):
        return _ok("cosine similarity matches torch's on 16 activation maps")
    if abs(float(got[0]) - 1) > 1e-6:
        _fail(f"two activations pointing the same way (one 3x the other) must have similarity 1, "
              f"got {float(got[0]):.4g}: divide by both norms")
    _fail(f"differs from the cosine similarity by up to {float((got - want).abs().max()):.3g}")
    return False


# --- Chapter 6: perturbed twins, and twins that differ only in the batch order -------------------

def _tiny_net(seed: int, batchnorm: bool = False) -> nn.Module:
    """A small classifier ``(B, 1, 4, 4) -> (B, 3)`` logits; built without touching the global RNG.

    Every parameter and buffer is non-zero, so relative distances are defined.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(16, 8)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(8))
        layers += [nn.ReLU(), nn.Linear(8, 3)]
        net = nn.Sequential(*layers)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(0.3 * torch.randn_like(p) + 0.1)
            for b in net.buffers():
                if b.is_floating_point():
                    b.copy_(0.5 + torch.rand_like(b))
    return net


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def check_perturbation(fn: Callable[[nn.Module, float, int], nn.Module], eps: float = 0.05) -> bool:
    """Check ``fn(model, eps, seed) -> nn.Module``: a perturbed copy of ``model``.

    Every parameter tensor ``w`` of the copy must be ``w + eps * ||w|| * z / ||z||`` with
    ``z`` standard normal noise drawn from a generator seeded with ``seed``: it moves by
    exactly ``eps`` of its norm in a random direction. Buffers (batch-norm statistics) and
    the original model stay as they are, and the same seed gives the same copy.
    """
    model = _tiny_net(21, batchnorm=True)
    before = _state(model)

    def run(e: float, seed: int, global_seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(global_seed)
            out = _call(fn, model, e, seed, what="your perturbation function")
        if not isinstance(out, nn.Module):
            _fail(f"the function should return a model (an nn.Module), got {type(out).__name__}")
        return out

    out = run(eps, 0, 100)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    if changed:
        _fail(f"you changed the original model ({', '.join(changed)}): perturb a copy "
              "(copy.deepcopy(model)) and leave the model you were given as it was")
    if out is model:
        _fail("you returned the model you were given: return a perturbed copy")
    old, new = dict(model.named_parameters()), dict(out.named_parameters())
    if old.keys() != new.keys():
        _fail(f"the copy should have the same parameters as the model: {sorted(old)}, got {sorted(new)}")
    for name, w in old.items():
        w, w2 = w.detach().double(), new[name].detach().double()
        if w2.shape != w.shape:
            _fail(f"parameter {name} has shape {tuple(w2.shape)} in the copy, {tuple(w.shape)} in the model")
        step = w2 - w
        rel = float(step.norm() / w.norm())
        if rel == 0.0:
            _fail(f"parameter {name} did not move: every parameter tensor gets its own noise")
        if abs(rel - eps) > 1e-3 * eps:
            if abs(float(step.norm()) - eps) < 1e-3 * eps:
                _fail(f"parameter {name} moved by {float(step.norm()):.4g} in absolute terms (= eps): "
                      "scale the step by ||w|| too, so that every tensor moves by eps *relative* to its size")
            _fail(f"parameter {name} moved by a relative distance {rel:.4g}, expected eps = {eps:g}: "
                  "the step is eps * ||w|| * z / ||z||, with z ~ N(0, I) of the shape of w")
        cos = float((step.flatten() @ w.flatten()) / (step.norm() * w.norm()))
        if abs(cos) > 0.99:
            _fail(f"parameter {name} was scaled (the step points along w, cosine {cos:+.3f}): "
                  "move it in a random direction z / ||z||, not along w")
    old_buf, new_buf = dict(model.named_buffers()), dict(out.named_buffers())
    for name, b in old_buf.items():
        if name not in new_buf or not torch.equal(b, new_buf[name]):
            _fail(f"buffer {name} changed: perturb only the parameters (model.parameters()), "
                  "not the batch-norm statistics")
    if not _same_state(_state(run(eps, 0, 200)), _state(out)):
        _fail("the same seed gave two different copies: draw z from "
              "torch.Generator().manual_seed(seed) (torch.randn(w.shape, generator=g)), "
              "not from the global random state")
    if _same_state(_state(run(eps, 1, 100)), _state(out)):
        _fail("seeds 0 and 1 gave the same copy: the noise must depend on the seed")
    if not _same_state(_state(run(0.0, 0, 100)), before):
        _fail("eps = 0 should return an exact copy of the model")
    return _ok(f"every parameter tensor moves by eps = {eps:g} of its norm in a random direction, "
               "reproducibly for a seed; buffers and the original model are untouched")


def check_training_order(fn: Callable[..., nn.Module], batch_size: int = 8) -> bool:
    """Check ``fn(model, images, labels, order_seed, batch_size) -> nn.Module``.

    The function trains a *copy* of ``model`` for one epoch, in the batch order given by
    ``order_seed``. Right when: the original is untouched, the copy's weights moved, the
    same ``order_seed`` reproduces them bit for bit whatever the global random state, and
    another ``order_seed`` changes them.
    """
    g = torch.Generator().manual_seed(11)
    x = torch.rand(48, 1, 4, 4, generator=g)
    y = torch.randint(0, 3, (48,), generator=g)
    model = _tiny_net(3)
    before = _state(model)

    def run(order_seed: int, global_seed: int) -> dict[str, torch.Tensor]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(global_seed)
            out = _call(fn, model, x.clone(), y.clone(), order_seed, batch_size,
                        what="your training function")
        if not isinstance(out, nn.Module):
            _fail(f"the function should return the trained model (an nn.Module), got {type(out).__name__}")
        if not _same_state(_state(model), before):
            _fail("you trained the model you were given in place: train a copy "
                  "(copy.deepcopy(model)) and return it, so that both twins can start from the same weights")
        if out is model:
            _fail("you returned the model you were given: return the trained copy")
        return _state(out)

    first = run(1, 100)
    if _same_state(first, before):
        _fail("the returned weights are the starting weights: did every batch run loss.backward() "
              "and opt.step()?")
    if not _same_state(run(1, 200), first):
        _fail("the same order_seed gave different weights in two runs: draw the order with "
              "torch.randperm(len(images), generator=torch.Generator().manual_seed(order_seed)), not "
              "from the global random state (and train a model without dropout)")
    if _same_state(run(2, 100), first):
        _fail("order_seed 1 and 2 gave identical weights: shuffle the images with order_seed, so "
              f"that the two seeds see the batches (of {batch_size}) in different orders")
    return _ok("the same order_seed reproduces the weights bit for bit, another seed changes them, "
               "and the original model is untouched")


# --- Checks for the exercises of chapters 1-4 ---------------------------------------------


def _targeted_pgd(model: nn.Module, x0: torch.Tensor, target: int, eps: torch.Tensor,
                  steps: int = 40) -> torch.Tensor:
    """The exercise's attack (chapter 1): sign-gradient steps of ``eps / 10`` on ``-log p(target)``,
    projected into ``[x0 - eps, x0 + eps]`` and ``[0, 1]``; ``x0 (R, 1, H, W)``, ``eps (R,)``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x0, eps = x0.to(device), eps.view(-1, 1, 1, 1).to(device, x0.dtype)
    x = x0.clone()
    try:
        for _ in range(steps):
            x.requires_grad_(True)
            loss = -torch.log_softmax(model(x), dim=-1)[:, target]
            (grad,) = torch.autograd.grad(loss.sum(), x)
            with torch.no_grad():
                x = (x0 + (x - eps / 10 * grad.sign() - x0).clamp(-eps, eps)).clamp(0.0, 1.0)
    finally:
        model.train(was_training)
    return x.detach().cpu()


def check_adversarial_digit(model: nn.Module, original: object, image: object, target: int,
                            eps: float, grid: object = None, min_prob: float = 0.8) -> bool:
    """Check a targeted attack on a real digit under the smallest L-infinity budget of a grid (chapter 1).

    Right when ``image`` stays within ``eps`` of ``original`` in every pixel, lies in ``[0, 1]``,
    ``model`` gives it class ``target`` with probability ``>= min_prob``, ``eps`` is one of
    ``grid``, and the exercise's attack (40 sign-gradient steps of ``eps / 10``) does not reach
    ``min_prob`` with any smaller budget of the grid.

    Args:
        model: a classifier returning logits ``(B, K)``.
        original: the real digit, ``(1, 28, 28)`` or ``(1, 1, 28, 28)``.
        image: the attacked digit, same shape.
        target: the class the attacker wants.
        eps: the budget you found: the largest change allowed in any one pixel.
        grid: the budgets the exercise tries, e.g. ``0.05 * torch.arange(1, 11)`` (required).
    """
    if grid is None:
        raise ValueError("pass the budgets you tried, grid=..., so that the check can verify that eps is "
                         "the smallest that works")
    _image_batch(image)                        # a stub left as `...` says so first
    target = int(_scalar(target, "target"))
    eps = _scalar(eps, "eps")
    budgets = sorted(float(b) for b in torch.as_tensor(as_numpy(grid)).flatten())
    if not budgets or not all(0.0 < b <= 1.0 for b in budgets):
        raise ValueError(f"grid must hold budgets in (0, 1], got {budgets}")
    if not any(abs(eps - b) < 1e-6 for b in budgets):
        _fail(f"eps = {eps:g} is not one of the budgets the exercise tries "
              f"({', '.join(f'{b:g}' for b in budgets)})")
    x0 = _image_batch(original, "original")
    x = _image_batch(image)
    if x.shape != x0.shape:
        _fail(f"image has shape {tuple(x.shape)} but the original digit {tuple(x0.shape)}: "
              "attack one digit and pass that one image")
    change = (x - x0).abs()
    if float(change.max()) == 0.0:
        _fail("image is identical to the original: nothing was attacked")
    if float(change.max()) > eps + 1e-5:
        _fail(f"{int((change > eps + 1e-5).sum())} pixels change by more than eps = {eps:g} (up to "
              f"{float(change.max()):.3g}): after every step, project back into the budget with "
              "x = x0 + (x - x0).clamp(-eps, eps), then clamp to [0, 1]")
    probs = predict_log_probs(model, torch.cat([x0, x])).exp()
    if int(probs[0].argmax()) == target:
        raise ValueError(f"the model already classifies the original digit as {target}: "
                         "choose another target class")
    p = float(probs[1, target])
    if p < min_prob:
        top = int(probs[1].argmax())
        _fail(f"within the budget, but the model gives class {target} only {p:.1%} (it prefers "
              f"{top} at {float(probs[1, top]):.1%}): take more steps, or allow a larger eps; "
              f"check that you *decrease* the loss -log p(target)")
    smaller = [b for b in budgets if b < eps - 1e-6]
    if smaller:
        attacked = _targeted_pgd(model, x0.expand(len(smaller), -1, -1, -1), target, torch.tensor(smaller))
        reached = predict_log_probs(model, attacked).exp()[:, target]
        works = [(b, float(q)) for b, q in zip(smaller, reached) if q > min_prob + 0.05]
        if works:
            b, q = works[0]
            _fail(f"the image is right, but eps = {eps:g} is not the smallest budget that works: the "
                  f"exercise's attack already reaches {q:.1%} for {target} with eps = {b:g}")
    return _ok(f"the model is {p:.1%} sure the attacked digit is a {target}; largest pixel change "
               f"{float(change.max()):.3g} <= {eps:g}, the smallest budget of the grid that works; "
               f"L2 distance {float(change.norm()):.3g}")


def _pair_of_numbers(value: object, what: str) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        _fail(f"{what} should return two numbers (a tuple), got {type(value).__name__}")
    return _scalar(value[0], f"{what}'s first value"), _scalar(value[1], f"{what}'s second value")


def check_error_overlap(fn: Callable[[torch.Tensor, torch.Tensor], tuple[float, float]]) -> bool:
    """Check ``fn(log_probs (2, B, C), labels (B,)) -> (both_wrong, if_independent)`` (chapter 2).

    ``both_wrong`` is the share of inputs that *both* twins misclassify; ``if_independent``
    the share expected if their mistakes were independent: the product of the two error rates.
    """
    g = torch.Generator().manual_seed(21)
    b, c = 400, 10
    labels = torch.randint(0, c, (b,), generator=g)
    u = torch.rand(b, generator=g)
    wrong0 = u < 0.25                                       # error rates 25% and 30% ...
    wrong1 = (u < 0.15) | ((u > 0.6) & (u < 0.75))          # ... with 15% in common
    offset1 = torch.where(torch.rand(b, generator=g) < 0.5, 1, 2)    # same or another mistake
    pred0 = torch.where(wrong0, (labels + 1) % c, labels)
    pred1 = torch.where(wrong1, (labels + offset1) % c, labels)
    logits = torch.randn(2, b, c, generator=g, dtype=torch.float64)
    logits[0, torch.arange(b), pred0] += 8
    logits[1, torch.arange(b), pred1] += 8
    lp = torch.log_softmax(logits, -1)
    w0, w1 = wrong0.double(), wrong1.double()
    want = (float((w0 * w1).mean()), float(w0.mean() * w1.mean()))
    got = _pair_of_numbers(_call(fn, lp.clone(), labels.clone(), what="your function"), "your function")
    ok = [abs(gv - wv) < 1e-6 for gv, wv in zip(got, want)]
    if all(ok):
        return _ok(f"both wrong {want[0]:.1%} against {want[1]:.1%} if independent, on "
                   f"{b} unseen inputs")
    if abs(got[0] - want[1]) < 1e-6 and abs(got[1] - want[0]) < 1e-6:
        _fail("the two values are swapped: return (both_wrong, if_independent)")
    if not ok[0]:
        same = float((w0 * w1 * (pred0 == pred1).double()).mean())
        mistakes = {float((pred0 != pred1).double().mean()): "the share where the twins disagree; "
                    "count the inputs where *both* predictions differ from the label",
                    same: "only the inputs where both make the *same* mistake; count every input "
                    "both get wrong, whatever they predict",
                    float(((w0 + w1) > 0).double().mean()): "the share that *either* twin gets "
                    "wrong; the question is how often both are wrong together",
                    float(((1 - w0) * (1 - w1)).mean()): "the share both get *right*"}
        for value, mistake in mistakes.items():
            if abs(got[0] - value) < 1e-6:
                _fail(f"both_wrong is {mistake}")
        _fail(f"both_wrong should be {want[0]:.4f} on the check's inputs, got {got[0]:.4f}: the "
              "mean of (pred_1 != label) & (pred_2 != label), with pred_i the argmax of twin i")
    acc0, acc1 = 1 - float(w0.mean()), 1 - float(w1.mean())
    mistakes = {acc0 * acc1: "the product of the *accuracies* (both right if independent); "
                "multiply the error rates",
                float(w0.mean() + w1.mean()): "the sum of the error rates; under independence "
                "the chance of two errors is their product",
                want[0] ** 2: "the square of both_wrong; multiply the two twins' error rates"}
    for value, mistake in mistakes.items():
        if abs(got[1] - value) < 1e-6:
            _fail(f"if_independent is {mistake}")
    _fail(f"if_independent should be {want[1]:.4f} (error rate of twin 1 times that of twin 2), "
          f"got {got[1]:.4f}")
    return False


def check_twin_step(fn: Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor],
                                 object]) -> bool:
    """Check ``fn(ensemble, optimiser, x, y) -> loss``: one joint training step (chapter 2).

    The step sums the members' mean NLLs over the batch, clears old gradients, back-propagates
    and takes one optimiser step, and returns the summed loss (computed before the step). The
    check runs two steps on fresh two-member ensembles without dropout, with plain SGD so that
    the size of the gradient shows in the update.
    """
    def fresh() -> tuple[Ensemble, torch.optim.Optimizer]:
        ens = Ensemble.build(lambda: MnistCNN(dropout=False), 2, seed=3).train()
        return ens, torch.optim.SGD(ens.parameters(), lr=0.05)

    def flat(ens: Ensemble, i: int) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in ens[i].parameters()])

    g = torch.Generator().manual_seed(8)
    xs = torch.rand(2, 16, 1, 28, 28, generator=g)
    ys = torch.randint(0, 10, (2, 16), generator=g)
    ref, ref_opt = fresh()
    mine, mine_opt = fresh()
    for t in range(2):
        before = [flat(ref, i) for i in range(2)]
        loss, log_probs = train._step(ref, ref_opt, xs[t], ys[t])      # the package's own step
        member_losses = [float(torch.nn.functional.nll_loss(lp, ys[t])) for lp in log_probs]
        want = float(loss)
        got = _scalar(_call(fn, mine, mine_opt, xs[t].clone(), ys[t].clone(), what="your step"),
                      "the loss your step returns")
        for i in range(2):
            delta_want = flat(ref, i) - before[i]
            delta_got = flat(mine, i) - before[i]
            if torch.allclose(delta_got, delta_want, rtol=1e-3, atol=1e-6):
                continue
            if float(delta_got.abs().max()) == 0.0:
                if t == 0 and float((flat(mine, 1 - i) - before[1 - i]).abs().max()) == 0.0:
                    _fail("no parameter changed: call optimiser.step() after loss.backward()")
                _fail(f"member {i + 1} did not change: its loss is missing from the sum")
            if torch.allclose(delta_got, delta_want / 2, rtol=1e-3, atol=1e-6):
                _fail("the update is half as large as it should be: you averaged the members' losses; "
                      "sum them, so that each member gets exactly the gradient it would get alone")
            if t == 1:
                _fail("the first step is right, the second is not: gradients accumulate across "
                      "steps unless you call optimiser.zero_grad() before loss.backward()")
            _fail(f"member {i + 1}'s update differs from one step on the sum of the members' NLL "
                  f"losses by up to {float((delta_got - delta_want).abs().max()):.3g}")
        if abs(got - want) > 1e-4 * max(1.0, abs(want)):
            if abs(got - want / 2) < 1e-4 * max(1.0, abs(want)):
                _fail("the update is right, but the returned loss is the members' mean; return their sum")
            if any(abs(got - m) < 1e-4 for m in member_losses):
                _fail("the update is right, but you returned one member's loss; return the sum")
            _fail(f"the update is right, but the returned loss is {got:.5g}; expected the summed "
                  f"loss before the step, {want:.5g}")
    return _ok("two steps match the reference: summed loss, fresh gradients, one optimiser step")


def check_success_curve(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(first_step (R,), budgets (S,)) -> (S,)``: an attack's success rate per step budget
    (chapter 4).

    ``first_step[r]`` is the step at which restart ``r`` first succeeded, ``-1`` if it never
    did (as in :class:`ood_utils.attacks.AttackResult`). Entry ``s`` of the answer is the share
    of *all* restarts that succeeded within ``budgets[s]`` steps (step 0 = already at the start).
    """
    g = torch.Generator().manual_seed(4)
    first = torch.randint(0, 40, (200,), generator=g)
    first[torch.rand(200, generator=g) < 0.3] = -1                  # 30% never succeed
    first[:10] = 0                                                  # some succeed at once
    budgets = torch.tensor([0, 1, 5, 10, 20, 39, 60])
    succeeded = first >= 0
    want = (succeeded & (first <= budgets[:, None])).double().mean(1)
    got = _as_tensor(_call(fn, first.clone(), budgets.clone(), what="your function"), "your function")
    if got.shape != want.shape:
        _fail(f"expected one success rate per budget, shape {tuple(want.shape)} for budgets of "
              f"shape {tuple(budgets.shape)}; got {tuple(got.shape)}")
    got = got.detach().to(torch.float64)
    if torch.allclose(got, want, atol=1e-6):
        return _ok(f"success rates match on {len(first)} unseen restarts and {len(budgets)} budgets")
    hints = {"restarts that never succeeded (first step -1) count as successes: keep only "
             "first_step >= 0": (first <= budgets[:, None]).double().mean(1),
             "a restart that succeeded at step s counts for a budget of s steps: use <=, not <":
             (succeeded & (first < budgets[:, None])).double().mean(1),
             "you divided by the successful restarts only; divide by all restarts":
             (succeeded & (first <= budgets[:, None])).double().sum(1) / succeeded.sum(),
             "you returned counts; return shares (divide by the number of restarts)":
             (succeeded & (first <= budgets[:, None])).double().sum(1)}
    for mistake, wrong in hints.items():
        if torch.allclose(got, wrong, atol=1e-6):
            _fail(mistake)
    worst = int((got - want).abs().argmax())
    _fail(f"for a budget of {int(budgets[worst])} steps you return {float(got[worst]):.4f}, expected "
          f"{float(want[worst]):.4f}")
    return False
