"""Answers that should not pass: what a student might hand in to get the green "OK"
without doing the exercise, and the typical mistakes. Each must fail with a message that
teaches something, and a right answer written differently from the book's solution must
pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import DATA, needs_data
from test_checks_ch01_04 import linear_digit_model
from torch import nn

from ood_utils import checks, data, metrics, scores
from ood_utils.checks import CheckFailed

# --- a stub left as `...`
# -------------------------------------------------------------------------


def stub(*args):
    """A student's function whose body is still the stub's `...`."""
    ...


@pytest.mark.parametrize(
    "run",
    [
        lambda: checks.check_threshold(stub),
        lambda: checks.check_threshold(...),
        lambda: checks.check_auroc(stub),
        lambda: checks.check_rotation(stub),
        lambda: checks.check_subset_auroc(stub),
        lambda: checks.check_symmetric_kl(...),
        lambda: checks.check_fpr_at_tpr(stub),
        lambda: checks.check_success_curve(stub),
        lambda: checks.check_fooling_image(
            nn.Linear(784, 10), ..., 3, starts=torch.rand(1, 1, 28, 28)
        ),
    ],
)
def test_an_unanswered_exercise_says_so(run):
    with pytest.raises(CheckFailed, match="not answered yet"):
        run()


def test_a_missing_return_is_named():
    def forgot_return(s, budget):
        s.sort()

    with pytest.raises(CheckFailed, match="`return` is missing"):
        checks.check_threshold(forgot_return)


# --- the threshold for a false-alarm budget
# ----------------------------------------------------------


def test_a_quantile_is_a_right_threshold_whatever_the_rounding():
    assert checks.check_threshold(lambda s, b: float(torch.quantile(s, 1 - b)))
    assert checks.check_threshold(
        lambda s, b: float(np.quantile(s.numpy(), 1 - b, method="higher"))
    )
    assert checks.check_threshold(
        lambda s, b: float(np.quantile(s.numpy(), 1 - b, method="lower"))
    )


@pytest.mark.parametrize(
    "cheat, message",
    [
        (scores.budget_threshold, "library's own function"),
        (lambda s, b: scores.budget_threshold(s, b), "calls budget_threshold"),
        (lambda s, b: 1.0, "more than the|stricter than needed"),  # a number typed in
        # the 10x rule
        (
            lambda s, b: float(s.mean() * 10),
            "more than the|stricter than needed",
        ),
        (lambda s, b: float(torch.quantile(s, b)), "more than the"),  # the wrong tail
        # ascending order
        (
            lambda s, b: float(s.sort().values[math.floor(b * len(s))]),
            "more than the",
        ),
        (lambda s, b: float(s.max()), "stricter than needed"),
        (lambda s, b: math.inf, "finite"),
    ],
)
def test_a_wrong_threshold_fails(cheat, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_threshold(cheat)


def test_the_package_threshold_keeps_the_budget_and_is_minimal():
    s = torch.tensor([5.0, 4.0, 4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    # one allowed, but 4.0 ties: none flagged
    assert scores.budget_threshold(s, 0.1) == 4.0
    assert scores.budget_threshold(s, 0.3) == 3.0  # the three above 3.0 are flagged
    # 0.29 * 100 is 28.999...
    assert scores.budget_threshold(torch.arange(100.0), 0.29) == 70.0
    assert scores.budget_threshold(np.arange(10.0), 0.0) == 9.0
    for bad in (1.0, -0.1, "1%"):
        with pytest.raises(ValueError, match="budget"):
            scores.budget_threshold(s, bad)
    with pytest.raises(ValueError, match="no in-distribution scores"):
        scores.budget_threshold(torch.empty(0), 0.1)
    with pytest.raises(ValueError, match="NaN"):
        scores.budget_threshold(torch.tensor([1.0, math.nan]), 0.1)


# --- the AUROC by hand
# --------------------------------------------------------------------------------


def pairwise_auroc(s_in, s_out):
    # NumPy, not the book's torch
    s_in, s_out = (
        np.asarray(s_in)[:, None],
        np.asarray(s_out)[None, :],
    )
    return float(np.mean(s_out > s_in) + 0.5 * np.mean(s_out == s_in))


def test_an_auroc_written_differently_passes():
    assert checks.check_auroc(pairwise_auroc)


@pytest.mark.parametrize(
    "cheat, message",
    [
        (metrics.auroc, "library's own function"),
        (lambda a, b: metrics.auroc(a, b), "calls auroc"),
        (lambda a, b: 0.5, "is not"),
        (
            lambda a, b: float((b[None, :] > a[:, None]).double().mean()),
            "ties count 1/2",
        ),
        (lambda a, b: 1 - pairwise_auroc(a, b), "1 - AUROC"),
    ],
)
def test_a_wrong_auroc_fails(cheat, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_auroc(cheat)


def test_the_subset_auroc_must_use_the_chosen_members():
    def right(lp_in, lp_out, members, score_fn):
        keep = torch.tensor(members)
        return metrics.auroc(
            score_fn(lp_in.index_select(0, keep)),
            score_fn(lp_out.index_select(0, keep)),
        )

    assert checks.check_subset_auroc(right)
    with pytest.raises(CheckFailed, match="all 6 members"):
        checks.check_subset_auroc(lambda a, b, m, f: metrics.auroc(f(a), f(b)))
    with pytest.raises(CheckFailed, match="the first"):
        checks.check_subset_auroc(
            lambda a, b, m, f: metrics.auroc(f(a[: len(m)]), f(b[: len(m)]))
        )


# --- rotated digits
# ----------------------------------------------------------------------------------


def test_a_rotation_written_differently_passes():
    def flip_then_transpose(x, k):
        for _ in range(k % 4):
            x = x.flip(-1).transpose(-2, -1)
        return x

    assert checks.check_rotation(flip_then_transpose)


@pytest.mark.parametrize(
    "cheat, message",
    [
        (lambda x, k: x, "unturned"),
        (lambda x, k: torch.rot90(x, -k, dims=(-2, -1)), "clockwise"),
        (lambda x, k: torch.rot90(x, k, dims=(0, 1)), "last two axes"),
        (lambda x, k: x.transpose(-2, -1), "diagonal"),
    ],
)
def test_a_wrong_rotation_fails(cheat, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_rotation(cheat)


# --- images that must be made, not found
# --------------------------------------------------------------


@needs_data
def test_a_real_digit_is_not_a_fooling_image(trained_cnn):
    test = data.load("mnist", "test", n=500, root=DATA)
    with torch.no_grad():
        p = torch.softmax(trained_cnn(test.images), -1)
    # a test digit the CNN is sure of
    k = int((p.max(-1).values * (test.labels == p.argmax(-1))).argmax())
    digit, label = test.images[k], int(test.labels[k])
    starts = data.uniform_noise(4, seed=3)
    with pytest.raises(CheckFailed, match="not one of the optimised start images"):
        checks.check_fooling_image(trained_cnn, digit, label, starts=starts)
    from ood_utils.models import Ensemble

    with pytest.raises(CheckFailed, match="not one of the optimised start images"):
        checks.check_twins_fooled(
            Ensemble([trained_cnn, trained_cnn]), digit, label, ref=1e-3, starts=starts
        )
    # a digit passed off as its own start: caught by the training set
    train = data.load("mnist", "train", n=3000, root=DATA)
    copy = train.images[train.labels == label][0]
    with torch.no_grad():
        sure = float(torch.softmax(trained_cnn(copy[None]), -1)[0, label])
    if sure >= 0.8:
        with pytest.raises(CheckFailed, match="training image"):
            checks.check_fooling_image(
                trained_cnn,
                copy,
                label,
                starts=copy[None],
                train_images=train.images,
                train_labels=train.labels,
            )
    with pytest.raises(ValueError, match="starts"):
        checks.check_fooling_image(trained_cnn, digit, label)


def test_an_adversarial_digit_needs_the_smallest_budget_of_the_grid():
    model, x0, d = linear_digit_model()
    grid = [0.05, 0.1, 0.2, 0.5]
    with pytest.raises(CheckFailed, match="not one of the budgets"):
        # "anything goes"
        checks.check_adversarial_digit(model, x0, x0 + 0.1 * d, 1, eps=1.0, grid=grid)
    with pytest.raises(CheckFailed, match="not the smallest budget"):
        checks.check_adversarial_digit(model, x0, x0 + 0.2 * d, 1, eps=0.2, grid=grid)
    with pytest.raises(CheckFailed, match="project back into the budget"):
        checks.check_adversarial_digit(
            model, x0, (x0 + 0.5 * d).clamp(0, 1), 1, eps=0.05, grid=grid
        )
    with pytest.raises(ValueError, match="grid"):
        checks.check_adversarial_digit(model, x0, x0 + 0.05 * d, 1, eps=0.05)
    assert checks.check_adversarial_digit(
        model, x0, x0 + 0.05 * d, 1, eps=0.05, grid=grid
    )


# --- the chapters' new exercises (8-11)
# ----------------------------------------------------------------


def bootstrap(a, b, n, g, resample_in=True, resample_out=True):
    rows = []
    for _ in range(n):
        ia = (
            torch.randint(len(a), (len(a),), generator=g)
            if resample_in
            else torch.arange(len(a))
        )
        ib = (
            torch.randint(len(b), (len(b),), generator=g)
            if resample_out
            else torch.arange(len(b))
        )
        rows.append(metrics.auroc(a[ia], b[ib]))
    return torch.tensor(rows)


def test_the_bootstrap_check():
    assert checks.check_bootstrap_auroc(bootstrap)

    def rng(a, b, n, g):
        return bootstrap(
            a, b, n, torch.Generator().manual_seed(int(torch.randint(9, (1,))))
        )

    for cheat, message in [
        (lambda a, b, n, g: torch.full((n,), metrics.auroc(a, b)), "same AUROC"),
        (
            lambda a, b, n, g: torch.tensor(
                [
                    metrics.auroc(a[torch.randperm(len(a), generator=g)], b)
                    for _ in range(n)
                ]
            ),
            "same AUROC",
        ),
        (lambda a, b, n, g: bootstrap(a, b, n, g, resample_out=False), "too little"),
        (lambda a, b, n, g: bootstrap(a, b, n, g, resample_in=False), "too little"),
        (lambda a, b, n, g: bootstrap(a[:40], b[:40], n, g), "too much"),
        (rng, "different AUROCs"),
        (lambda a, b, n, g: bootstrap(a, b, n, g)[:10], "shape"),
    ]:
        with pytest.raises(CheckFailed, match=message):
            checks.check_bootstrap_auroc(cheat)


def test_the_mahalanobis_check():
    # written differently: NumPy, unbiased covariance
    def numpy_version(train, labels, x):
        train, labels, x = train.numpy(), labels.numpy(), x.numpy()
        means = np.stack([train[labels == c].mean(0) for c in np.unique(labels)])
        centred = train - means[np.searchsorted(np.unique(labels), labels)]
        precision = np.linalg.inv(np.cov(centred.T))
        d = x[:, None] - means[None]
        return torch.from_numpy(np.einsum("bkd,de,bke->bk", d, precision, d).min(1))

    assert checks.check_mahalanobis(numpy_version)
    for cheat, message in [
        (lambda t, y, x: -numpy_version(t, y, x), "wrong sign"),
        (lambda t, y, x: numpy_version(t, y, x).sqrt(), "squared"),
        (
            lambda t, y, x: (
                (x[:, None] - torch.stack([t[y == c].mean(0) for c in range(3)])[None])
                .pow(2)
                .sum(-1)
                .min(1)
                .values
            ),
            "Euclidean",
        ),
        (
            lambda t, y, x: numpy_version(t, torch.zeros_like(y), x),
            "mean of all training features",
        ),
        (lambda t, y, x: x.norm(dim=1), "not the Mahalanobis"),
    ]:
        with pytest.raises(CheckFailed, match=message):
            checks.check_mahalanobis(cheat)


def calibration(s_in, s_out, n_cal, budget, draws, g, held_out=True, fresh=True):
    alarms, caught = [], []
    perm = torch.randperm(len(s_in), generator=g)
    for _ in range(draws):
        if fresh:
            perm = torch.randperm(len(s_in), generator=g)
        t = scores.budget_threshold(s_in[perm[:n_cal]], budget)
        rest = s_in[perm[n_cal:]] if held_out else s_in[perm[:n_cal]]
        alarms.append(float((rest > t).double().mean()))
        caught.append(float((s_out > t).double().mean()))
    return torch.tensor(alarms), torch.tensor(caught)


def test_the_calibration_check():
    assert checks.check_calibration_draws(calibration)
    for cheat, message in [
        (lambda *a: calibration(*a, fresh=False), "same false-alarm share"),
        (
            lambda s_in, s_out, n, b, d, g: calibration(
                s_in, s_out, len(s_in) - 1, b, d, g
            ),
            "same false-alarm|far from",
        ),
        (
            lambda s_in, s_out, n, b, d, g: calibration(s_in, s_out, n, 2 * b, d, g),
            "far from",
        ),
        (
            lambda s_in, s_out, n, b, d, g: (
                torch.full((d,), b),
                torch.full((d,), 0.5),
            ),
            "same false-alarm",
        ),
    ]:
        with pytest.raises(CheckFailed, match=message):
            checks.check_calibration_draws(cheat)


def test_the_flag_share_check():
    def shares(para, calib, budget, kind):
        t = scores.budget_threshold(para[calib][kind], budget)
        return {
            label: float((p[kind] > t).double().mean()) for label, p in para.items()
        }

    def numpy_shares(para, calib, budget, kind):  # written differently
        t = scores.budget_threshold(para[calib][kind].numpy(), budget)
        return dict(zip(para, (np.mean(p[kind].numpy() > t) for p in para.values())))

    assert checks.check_flag_shares(numpy_shares)
    for cheat, message in [
        (
            lambda p, c, b, k: shares(p, c, b, "nll" if k == "twin" else "twin"),
            "you used the",
        ),
        (
            lambda p, c, b, k: shares(
                {**p, "all": {k: torch.cat([v[k] for v in p.values()])}}, "all", b, k
            ),
            "one share per text",
        ),
        (lambda p, c, b, k: [0.05] * len(p), "return a dict"),
    ]:
        with pytest.raises(CheckFailed, match=message):
            checks.check_flag_shares(cheat)
