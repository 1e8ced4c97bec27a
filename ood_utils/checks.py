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


def _fail(message: str) -> None:
    raise CheckFailed(message)


def _as_tensor(value: object, what: str) -> torch.Tensor:
    """A student's result as a CPU tensor (a tensor on any device, or a NumPy array)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        _fail(f"{what} should return a torch.Tensor, got {type(value).__name__}")
    return value.detach().cpu()


def _scalar(value: object, what: str) -> float:
    """``value`` as a float: a Python number, or a tensor / array holding one element."""
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
    try:
        return fn(*args)
    except CheckFailed:
        raise
    except Exception as err:  # the student's code raised: say so, with the input shapes
        shapes = ", ".join(str(tuple(a.shape)) for a in args if isinstance(a, torch.Tensor))
        _fail(f"{what} raised {type(err).__name__}: {err} (called with inputs of shape {shapes})")
    return None


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


def check_threshold(threshold: float, scores_id: object, budget: float) -> bool:
    """Check a threshold for a false-alarm budget: flag ``score > threshold``.

    Right when at most ``budget`` of the in-distribution scores are above it *and* no
    lower threshold would also keep within budget (within one sample), i.e. the rule is
    as sensitive as the budget allows.
    """
    s = torch.from_numpy(as_numpy(scores_id)).flatten()
    if s.numel() == 0:
        raise ValueError("scores_id is empty")
    if not 0.0 < budget < 1.0:
        raise ValueError(f"budget must be in (0, 1), got {budget}")
    t = _scalar(threshold, "the threshold")
    if not math.isfinite(t):
        _fail(f"the threshold should be finite, got {t}")
    rate = float((s > t).double().mean())
    allowed = math.floor(budget * s.numel())
    best = float(torch.sort(s, descending=True).values[allowed]) if allowed < s.numel() else -math.inf
    if rate > budget:
        _fail(f"{rate:.2%} of the in-distribution scores are above {t:.4g}: more false alarms than "
              f"the budget of {budget:.2%}. Raise the threshold (hint: a quantile of the scores)")
    if t > best and float((s > best).double().mean()) <= budget and (s > best).sum() > (s > t).sum():
        _fail(f"within budget ({rate:.2%} false alarms), but stricter than needed: the smallest "
              f"threshold with at most {budget:.2%} false alarms is {best:.4g}, and yours flags "
              f"{int((s > best).sum() - (s > t).sum())} fewer inputs")
    return _ok(f"threshold {t:.4g} gives {rate:.2%} false alarms, within the {budget:.2%} budget")


def check_auroc(value: float, scores_id: object, scores_ood: object) -> bool:
    """Check an AUROC computed by hand (OOD positive, higher score = more OOD) to 1e-6."""
    want = metrics.auroc(scores_id, scores_ood)
    got = _scalar(value, "the AUROC")
    if abs(got - want) < 1e-6:
        return _ok(f"AUROC = {want:.4f}")
    if abs(got - (1 - want)) < 1e-6:
        _fail(f"you got 1 - AUROC ({got:.4f}): the positive class is out-of-distribution, and "
              "higher scores should mean more out-of-distribution")
    if not 0.0 <= got <= 1.0:
        _fail(f"an AUROC is a probability in [0, 1], got {got}")
    _fail(f"AUROC {got:.4f} is not {want:.4f}; the AUROC is the probability that a random OOD "
          "input scores higher than a random in-distribution one (ties count 1/2)")
    return False


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


def check_fooling_image(model: nn.Module, image: object, target: int, min_prob: float = 0.8) -> bool:
    """Check that ``model`` gives ``image`` class ``target`` with probability ``>= min_prob``."""
    probs = predict_log_probs(model, _image_batch(image)).exp()[0]
    p = float(probs[target])
    if p >= min_prob:
        return _ok(f"the model is {p:.1%} sure this image is a {target}")
    top = int(probs.argmax())
    _fail(f"the model gives class {target} only {p:.1%} (it prefers class {top} at "
          f"{float(probs[top]):.1%}); optimise longer, or check that you minimise the negative "
          f"log-probability of class {target}")
    return False


def check_twins_fooled(ensemble: nn.Module, image: object, target: int, ref: float,
                       k: float = 10.0, min_prob: float = 0.8) -> bool:
    """Check an attack on the twins: every member ``>= min_prob`` sure of ``target`` *and* unflagged.

    Args:
        ensemble: an :class:`ood_utils.models.Ensemble` (``forward`` gives ``(N, B, C)`` log-probabilities).
        image: one image ``(1, 28, 28)``.
        target: the class the attacker wants.
        ref: the in-distribution reference of the twin score (nats).
        k: the flag multiplier.
    """
    lp = predict_log_probs(ensemble, _image_batch(image))          # (N, 1, C)
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
    return _ok(f"every member is at least {float(probs.min()):.1%} sure of class {target}, and the "
               f"twin score is {score / ref:.2f}x the reference: the attack evades the {k:g}x rule")


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


def check_adversarial_digit(model: nn.Module, original: object, image: object, target: int,
                            eps: float, min_prob: float = 0.8) -> bool:
    """Check a targeted attack on a real digit under an L-infinity budget (chapter 1).

    Right when ``image`` stays within ``eps`` of ``original`` in every pixel, lies in
    ``[0, 1]``, and ``model`` gives it class ``target`` with probability ``>= min_prob``.

    Args:
        model: a classifier returning logits ``(B, K)``.
        original: the real digit, ``(1, 28, 28)`` or ``(1, 1, 28, 28)``.
        image: the attacked digit, same shape.
        target: the class the attacker wants.
        eps: the largest change allowed in any one pixel.
    """
    if not 0.0 < eps <= 1.0:
        raise ValueError(f"eps must be in (0, 1], got {eps}")
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
    return _ok(f"the model is {p:.1%} sure the attacked digit is a {target}; largest pixel change "
               f"{float(change.max()):.3g} <= {eps:g}, L2 distance {float(change.norm()):.3g}")


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
