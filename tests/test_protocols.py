"""The original's protocol as options of the package: each option does what the
original's code did."""

import dataclasses

import pytest
import torch
from conftest import RUN, needs_data, random_log_probs
from torch import nn

from ood_utils import attacks, cache, replication, scores, train
from ood_utils.configs import config_fields
from ood_utils.models import (
    Ensemble,
    MnistCNN,
    ResNet18,
    input_normalization,
    predict_log_probs,
)
from ood_utils.train import TrainConfig

TINY = dict(dataset="mnist", n_members=2, epochs=1, n_train=192, batch_size=64, seed=0)
ADAM = dict(recipe="adam-cyclic", lr=1e-2)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- training
# -----------------------------------------------------------------------------


@needs_data
def test_the_original_schedule_trains_epoch_one_at_lr_exactly_zero():
    cfg = TrainConfig(**{**TINY, **ADAM})
    start = _state(train.make_ensemble(cfg))
    ens, hist = train.train_ensemble(cfg, RUN, progress=False)
    assert hist.lr == [0.0]
    # nothing learned
    assert all(torch.equal(start[k], v) for k, v in ens.state_dict().items())
    _, hist3 = train.train_ensemble(
        dataclasses.replace(cfg, epochs=3), RUN, progress=False
    )
    # (k - 1) * 1e-2 / 200
    assert hist3.lr[0] == 0.0 and hist3.lr[1:] == pytest.approx([5e-5, 1e-4])


@needs_data
def test_adadelta_recipe_records_its_step_schedule():
    _, hist = train.train_ensemble(
        TrainConfig(**{**TINY, "epochs": 2}), RUN, progress=False
    )
    assert hist.lr == pytest.approx([1.0, 0.7])


def test_the_original_network_drops_channels_and_normalises_with_mnist_stats():
    net = MnistCNN(channel_dropout=True).train()
    assert isinstance(net.dropout1, nn.Dropout2d) and isinstance(
        MnistCNN().dropout1, nn.Dropout
    )
    out = net.dropout1(torch.ones(4, 64, 12, 12))
    per_channel = out.flatten(2)
    # channel-wise
    assert bool(((per_channel == 0).all(-1) | (per_channel != 0).all(-1)).all())
    cfg = replication.experiment_config(
        "E2", "original", dataset="fashionmnist", profile="fast", n_train=192, epochs=1
    )
    assert cfg.arch == "cnn-original"
    assert input_normalization(train.make_ensemble(cfg)) == pytest.approx(
        (0.1307, 0.3081)
    )
    book = TrainConfig(**{**TINY, "dataset": "fashionmnist"})
    assert input_normalization(train.make_ensemble(book)) == pytest.approx(
        (0.2860, 0.3530)
    )


def test_resnet_at_the_original_input_size_resizes_inside():
    net = ResNet18(input_size=224).eval()
    seen = {}
    net.net.conv1.register_forward_hook(
        lambda m, i, o: seen.update(shape=tuple(i[0].shape))
    )
    assert net(torch.rand(1, 1, 28, 28)).shape == (1, 10)
    assert seen["shape"] == (1, 1, 224, 224)


@needs_data
def test_a_shared_module_is_one_network_cached_once(tmp_path):
    cfg = TrainConfig(**{**TINY, "shared_module": True})
    ens = train.make_ensemble(cfg)
    assert ens[0] is ens[1] and len(list(ens.parameters())) == len(
        list(ens[0].parameters())
    )
    trained, _ = cache.get_ensemble(
        cfg, RUN.replace(cache_dir=tmp_path), progress=False
    )
    assert trained[0] is trained[1] and len(list(tmp_path.iterdir())) == 1
    again, _ = cache.get_ensemble(cfg, RUN.replace(cache_dir=tmp_path), progress=False)
    assert all(
        torch.equal(a, b)
        for a, b in zip(trained.state_dict().values(), again.state_dict().values())
    )
    lp = predict_log_probs(trained, torch.rand(20, 1, 28, 28))
    assert torch.equal(lp[0], lp[1])  # eval mode: bit-identical outputs
    # trained by two passes with different dropout masks: not the single network of
    # its seed
    single, _ = train.train_ensemble(
        dataclasses.replace(cfg, shared_module=False, n_members=1), RUN, progress=False
    )
    assert not torch.equal(single[0].fc2.weight, trained[0].fc2.weight)


def test_config_keys_leave_default_fields_out():
    cfg = TrainConfig(**TINY)
    fields = config_fields(cfg)
    assert (
        "recipe" not in fields
        and "shared_module" not in fields
        and fields["n_train"] == 192
    )
    assert TrainConfig(**{**TINY, **ADAM}).key() != cfg.key()
    # a default, named
    assert TrainConfig(**{**TINY, "recipe": "adadelta"}).key() == cfg.key()


def test_experiment_configs_differ_by_the_protocol_only():
    for exp in replication.EXPERIMENTS:
        orig = replication.experiment_config(exp, "original", profile="fast")
        book = replication.experiment_config(exp, "book", profile="fast")
        assert (orig.n_train, orig.epochs) == (book.n_train, book.epochs)
        assert orig != book
    e2 = replication.experiment_config(
        "E2", "original", dataset="fashionmnist", profile="fast"
    )
    assert (e2.recipe, e2.lr, e2.arch, e2.normalization) == (
        "adam-cyclic",
        1e-2,
        "cnn-original",
        "mnist",
    )
    assert (
        replication.experiment_config("E1", "original", profile="fast").recipe
        == "adadelta"
    )
    assert replication.experiment_config("E3", "original", profile="fast").shared_module
    assert replication.experiment_config("E3", "book", profile="fast").identical_init
    assert (
        replication.experiment_config("E2bis", "original", profile="fast").arch
        == "resnet18-224"
    )
    assert replication.experiment_config(
        "E2", "book", profile="fast"
    ) == TrainConfig.from_profile("fast")


# --- scores
# -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 4])
def test_the_original_statistic_is_at_least_the_larger_directed_kl(n):
    lp = random_log_probs(n, 500, seed=n)
    orig, book = scores.original_score(lp), scores.twin_score(lp)
    assert (orig >= book - 1e-6).all() and (orig > book + 1e-3).any()
    # per class, the larger term is max(p_i, p_j) * |log p_i - log p_j|
    p = lp.exp()
    by_hand = (
        (torch.maximum(p[0], p[1]) * (lp[0] - lp[1]).abs()).sum(-1) if n == 2 else None
    )
    if by_hand is not None:
        assert torch.allclose(orig, by_hand, atol=1e-5)


def test_the_original_reference_equals_the_mean_symmetric_kl():
    for n, batch in ((2, 500), (3, 7)):
        lp = random_log_probs(n, 1000, seed=n)
        expected = float(scores.symmetric_kl(lp.double()).mean())
        assert scores.original_reference(lp, batch_size=batch) == pytest.approx(
            expected, rel=1e-5
        )


def test_identical_members_give_round_off_in_float32_and_zero_with_log_targets():
    lp = random_log_probs(1, 2000, seed=3, scale=6.0).expand(2, -1, -1)
    noisy = scores.original_score(lp)
    assert (noisy != 0).any() and noisy.abs().max() < 1e-5  # round-off, not signal
    assert torch.equal(scores.original_score(lp, log_target=True), torch.zeros(2000))
    assert scores.original_reference(lp, log_target=True) == 0.0
    # the book's score: exactly 0
    assert torch.equal(scores.twin_score(lp), torch.zeros(2000))


def test_the_original_counts_disagreement_of_members_zero_and_one_only():
    # (3, 1, 2)
    lp = torch.log_softmax(torch.tensor([[[5.0, 0.0]], [[5.0, 0.0]], [[0.0, 5.0]]]), -1)
    assert bool(scores.disagreement(lp)) and not bool(
        scores.disagreement(lp, first_pair_only=True)
    )
    assert not bool(scores.ORIGINAL_RULE.disagree(lp)) and bool(
        scores.BOOK_RULE.disagree(lp)
    )


def test_flag_rules_book_and_original():
    lp_in, lp_out = (
        random_log_probs(2, 300, seed=1),
        random_log_probs(2, 300, seed=2, scale=6.0),
    )
    book = scores.BOOK_RULE
    ref = book.reference_of(lp_in)
    assert ref == scores.reference(scores.twin_score(lp_in))
    assert torch.equal(
        book.flags(lp_out, ref),
        scores.flag(scores.twin_score(lp_out), ref, 10, scores.disagreement(lp_out)),
    )
    orig = scores.ORIGINAL_RULE
    assert orig.reference_of(lp_in) == scores.original_reference(lp_in)
    assert orig.reference_of(lp_in) < ref  # the symmetric mean is the smaller
    # a negative reference (round-off) flips the order, as the original's division did
    s = torch.tensor([-3e-8, 1e-9, 2e-8])
    assert scores.flag(s, -1e-9, 10, signed_reference=True).tolist() == [
        True,
        False,
        False,
    ]


# --- attacks
# ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "conditions", [attacks.BOOK_CONDITIONS, attacks.ORIGINAL_CONDITIONS]
)
@pytest.mark.parametrize("training", [True, False])
def test_an_attack_leaves_the_model_in_the_mode_it_found_it_in(conditions, training):
    net = MnistCNN().train(training)
    net.dropout2.train(not training)  # a mixed state is restored too
    before = [m.training for m in net.modules()]
    attacks.fooling_attack(
        net, n_restarts=2, steps=2, progress=False, conditions=conditions
    )
    assert [m.training for m in net.modules()] == before


def test_the_original_attack_starts_in_normalised_space_and_is_never_clamped():
    net = MnistCNN()
    cond = dataclasses.replace(attacks.ORIGINAL_CONDITIONS, dropout="off")
    res = attacks.fooling_attack(
        net, n_restarts=4, steps=1, lr=1e-9, progress=False, conditions=cond
    )
    start = torch.rand((4, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    # torch.rand, normalised
    assert torch.allclose(res.images, 0.1307 + 0.3081 * start, atol=1e-6)
    assert (
        res.images.min() >= 0.1307 - 1e-6 and res.images.max() <= 0.1307 + 0.3081 + 1e-6
    )
    # a linear model and a loss that pushes every pixel one way: only the clamp stops it
    linear = nn.Sequential(MnistCNN().normalize, nn.Flatten(), nn.Linear(784, 10))
    push = dict(
        loss=lambda lp: -lp[:, 0],
        success=lambda lp: lp[:, 0] > 1.0,
        n_restarts=2,
        steps=100,
        lr=10.0,
        progress=False,
    )
    far = attacks.attack(linear, conditions=cond, **push)
    assert far.images.min() < 0 or far.images.max() > 1  # no clamping
    clamped = attacks.attack(
        linear, conditions=dataclasses.replace(cond, clamp=True), **push
    )
    assert clamped.images.min() >= 0 and clamped.images.max() <= 1


def test_the_original_attack_runs_every_step_and_judges_the_last_steps_outputs():
    net = MnistCNN()
    calls = []
    net.register_forward_hook(lambda m, i, o: calls.append(m.training))
    res = attacks.fooling_attack(
        net,
        n_restarts=3,
        steps=5,
        progress=False,
        conditions=attacks.ORIGINAL_CONDITIONS,
    )
    assert calls == [True] * 5  # one pass per step, dropout on, no other
    assert res.steps.tolist() == [5 if ok else -1 for ok in res.success.tolist()]
    book = attacks.fooling_attack(net, n_restarts=3, steps=5, progress=False)
    assert calls[5:] and not any(calls[5:])  # the book's passes run in eval mode
    assert book.steps.max() <= 5


def test_dropout_masks_of_an_attack_are_seeded_and_leave_the_global_generator_alone():
    net = MnistCNN()
    options = dict(n_restarts=3, steps=4, seed=7, progress=False)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = attacks.fooling_attack(net, conditions=attacks.ORIGINAL_CONDITIONS, **options)
    assert torch.equal(torch.get_rng_state(), before)
    b = attacks.fooling_attack(net, conditions=attacks.ORIGINAL_CONDITIONS, **options)
    assert torch.equal(a.images, b.images) and torch.equal(a.log_probs, b.log_probs)


def test_the_original_joint_loss_is_the_mse_of_log_probabilities():
    lp = random_log_probs(2, 5, seed=4)
    base = attacks.joint_objective(lp, mse_weight=0.0)
    orig = attacks.joint_objective(lp, distance="logprob-mse") - base
    # F.mse_loss per input
    assert torch.allclose(orig, ((lp[0] - lp[1]) ** 2).mean(-1), atol=1e-6)
    book = attacks.joint_objective(lp) - base
    assert torch.allclose(book, ((lp[0].exp() - lp[1].exp()) ** 2).sum(-1), atol=1e-6)


def test_judging_an_attack_again_without_the_confidence_condition():
    ens = Ensemble([MnistCNN(), MnistCNN()])
    res = attacks.joint_attack(
        ens,
        1e6,
        n_restarts=4,
        steps=2,
        progress=False,
        conditions=attacks.ORIGINAL_CONDITIONS,
    )
    loose = attacks.passes_detector(res.log_probs, 1e6, confidence=None)
    assert (loose >= res.success).all() and res.probs.shape == (2, 4, 10)


# --- ladders and verdicts
# -----------------------------------------------------------------


def test_a_ladder_changes_one_factor_per_row_cumulatively():
    seen = []

    def measure(state: dict) -> dict:
        seen.append(dict(state))
        return {"value": 10 * state["a"] + state["b"]}

    steps = [
        replication.Step("a to 2", "correction", {"a": 2}),
        replication.Step("b to 5", "choice", {"b": 5}),
    ]
    table = replication.ladder(
        {"a": 1, "b": 0}, steps, measure, end={"a": 2, "b": 5}, progress=False
    )
    assert seen == [{"a": 1, "b": 0}, {"a": 2, "b": 0}, {"a": 2, "b": 5}]
    assert table["value"].tolist() == [10, 20, 25]
    assert table["change"].tolist() == ["the original's protocol", "a to 2", "b to 5"]
    assert replication.main_cause(table, "value") == ("a to 2", 10.0)
    gap = table.assign(value=[10.0, float("nan"), 2.0])  # an undefined row is skipped
    assert replication.main_cause(gap, "value") == ("b to 5", -8.0)
    # the cause that remains when both protocols train alike skips the
    # training-budget steps
    budget = table.assign(kind=["", "scale", "choice"])
    assert replication.main_cause(budget, "value", skip_kinds=("scale",)) == (
        "b to 5",
        5.0,
    )
    assert replication.ladder_causes(budget, "value", "{:+.0f}") == (
        "a to 2 (+10)",
        "b to 5 (+5)",
    )
    with pytest.raises(ValueError, match="besides those of kind"):
        replication.main_cause(budget.iloc[:2], "value", skip_kinds=("scale",))
    # each step alone: every row against the first
    alone = replication.one_at_a_time(
        {"a": 1, "b": 0}, steps, lambda f: {"value": 10 * f["a"] + f["b"]}
    )
    assert alone["value"].tolist() == [10, 20, 15]
    assert replication.main_cause(alone, "value", against="first") == ("a to 2", 10.0)
    assert replication.main_cause(alone.iloc[[0, 2]], "value", against="first") == (
        "b to 5",
        5.0,
    )
    # one named step's own effect
    assert replication.step_effect(table, "b to 5", "value") == 5.0
    assert replication.step_effect(gap, "b to 5", "value") == -8.0
    with pytest.raises(ValueError, match="steps named"):
        replication.step_effect(table, "the original's protocol", "value")


def test_the_original_protocol_uses_the_original_network_and_ladders_reach_the_books():
    """The original's network (no ReLU after conv2, channel dropout) is the original
    protocol's in every CNN experiment, and one named step takes a ladder to the
    book's CNN."""
    for experiment in ("E1", "E2", "E3", "E4"):
        assert (
            replication.protocol_factors(experiment, "original")["network"]
            == "cnn-original"
        )
        assert replication.protocol_factors(experiment, "book")["network"] == "cnn"
    start, steps, end = replication.e2_ladder("fashionmnist")
    assert replication.NETWORK_STEP in steps and end["network"] == "cnn"


def test_verdicts_name_what_reproduces_and_why():
    v = replication.verdict
    assert v("E2 mnist AUROC", 0.965, 0.970) == "reproduced"
    assert v("E2 mnist AUROC", 0.965, 0.90, cause="the book's score") == (
        "reproduced only under the original's protocol: the cause is the book's score"
    )
    assert v("E2 mnist AUROC", 0.55, 0.97, scale="fast").startswith(
        "not reproduced under the original"
    )
    assert (
        v("E2 mnist AUROC", 0.55, 0.80, scale="fast") == "not reproduced at this scale"
    )
    assert v("E2 mnist AUROC", 0.55, 0.80) == "not reproduced"
    assert v("E2bis mnist AUROC", None, None) == "not run at this scale"
    assert (
        v("E2bis mnist AUROC", None, 0.99)
        == "not run at this scale; the book's protocol reproduces it"
    )
    # "below 20 / 3"
    assert v("E5 English test / training text", None, 2.0).endswith("reproduces it")
    assert v("E5 English test / training text", None, 9.0).endswith(
        "does not reproduce it"
    )
    # a factor of 2 in sign
    assert replication.claim("E3 mnist reference").matches(-3e-9)
    assert not replication.claim("E3 mnist reference").matches(3e-9)
    assert replication.published("E2 fashionmnist AUROC") == 0.8572


def test_an_attack_whose_restarts_all_pass_at_the_start_is_judged_on_them():
    net = MnistCNN()
    cond = dataclasses.replace(attacks.ORIGINAL_CONDITIONS, stop="early")
    res = attacks.attack(
        net,
        loss=attacks.entropy,
        success=lambda lp: lp[:, 0] <= 0,
        n_restarts=3,
        steps=5,
        progress=False,
        conditions=cond,
    )
    assert (
        res.success.all()
        and (res.steps == 0).all()
        and torch.equal(res.images, res.start)
    )
