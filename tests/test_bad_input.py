"""Every public entry point refuses bad input with a ValueError that says what was
expected.

One case per line: the call, and a phrase its message must contain.
"""

from __future__ import annotations

import pytest
import torch
from conftest import DATA, random_log_probs

from ood_utils import attacks, data, metrics, profiles, replication, scores, text
from ood_utils import run as run_context
from ood_utils.detectors import TwinDetector
from ood_utils.models import Ensemble, MnistCNN, ResNet18, predict_log_probs
from ood_utils.train import TrainConfig

LP = random_log_probs(2, 8)  # good: (2, 8, 10)
CNN = MnistCNN()


def probabilities() -> torch.Tensor:
    return LP.exp()


def with_nan() -> torch.Tensor:
    lp = LP.clone()
    lp[0, 0, 0] = float("nan")
    return lp


CASES = {
    "scores: rank 2 instead of (N, B, C)": (
        lambda: scores.twin_score(LP[0]),
        "N members",
    ),
    "scores: one member where two are needed": (
        lambda: scores.twin_score(LP[:1]),
        "at least 2",
    ),
    "scores: probabilities instead of log-probabilities": (
        lambda: scores.twin_score(probabilities()),
        "log",
    ),
    "scores: NaN in the log-probabilities": (
        lambda: scores.twin_score(with_nan()),
        "NaN",
    ),
    "scores: empty batch": (lambda: scores.twin_score(LP[:, :0]), "empty"),
    "scores: KL of tensors of different shapes": (
        lambda: scores.kl_directed(LP[0], LP[0, :4]),
        "same shape",
    ),
    "scores: empty reference set": (
        lambda: scores.reference(torch.empty(0)),
        "non-empty",
    ),
    "scores: inf in the reference set": (
        lambda: scores.reference(torch.tensor([1.0, float("inf")])),
        "inf",
    ),
    "metrics: NaN score": (
        lambda: metrics.auroc([0.1, float("nan")], [0.5, 0.7]),
        "NaN",
    ),
    "metrics: no OOD scores": (lambda: metrics.auroc([0.1, 0.2], []), "empty"),
    "metrics: a TPR outside (0, 1]": (
        lambda: metrics.fpr_at_tpr([0.1], [0.2], tpr=1.5),
        "tpr",
    ),
    "models: integer images": (
        lambda: predict_log_probs(CNN, torch.zeros(2, 1, 28, 28, dtype=torch.uint8)),
        "floating point",
    ),
    "models: images without a channel axis": (
        lambda: predict_log_probs(CNN, torch.zeros(2, 28, 28)),
        "unsqueeze",
    ),
    "models: three channels for a one-channel network": (
        lambda: predict_log_probs(CNN, torch.zeros(2, 3, 28, 28)),
        "channel",
    ),
    "models: empty image batch": (
        lambda: predict_log_probs(CNN, torch.zeros(0, 1, 28, 28)),
        "empty",
    ),
    "models: inf in the images": (
        lambda: predict_log_probs(CNN, torch.full((1, 1, 28, 28), float("inf"))),
        "inf",
    ),
    "data: unknown dataset": (
        lambda: data.load("cifar10", "test", root=DATA),
        "cifar10",
    ),
    "data: unknown split": (
        lambda: data.load("mnist", "validation", root=DATA),
        "split",
    ),
    "profiles: unknown profile": (lambda: profiles.get_profile("huge"), "huge"),
    "run: unknown device": (lambda: run_context.resolve_device("tpu"), "tpu"),
    "run: unknown profile in the environment": (
        lambda: run_context.from_environment("x", environ={"OOD_PROFILE": "huge"}),
        "huge",
    ),
    "text: a profile without text settings": (
        lambda: text.TextConfig.from_profile("huge"),
        "huge",
    ),
    "replication: a profile's budget without the profile": (
        lambda: replication.train_config({"budget": "sweep"}),
        "pass profile=",
    ),
    "train: unknown dataset in a config": (lambda: TrainConfig(dataset="svhn"), "svhn"),
    "text: unknown book": (lambda: text.load_book("klingon-poetry"), "klingon-poetry"),
    "detectors: a twin detector with one member": (
        lambda: TwinDetector(Ensemble([MnistCNN()])),
        "2",
    ),
    "attacks: no restarts": (
        lambda: attacks.fooling_attack(CNN, n_restarts=0, progress=False),
        "n_restarts",
    ),
    "data: noise of size 0": (lambda: data.uniform_noise(0), "n"),
    # the original's protocol, as options
    "train: an unknown recipe": (lambda: TrainConfig(recipe="sgd"), "adam-cyclic"),
    "train: Adadelta's lr for the Adam recipe": (
        lambda: TrainConfig(recipe="adam-cyclic"),
        "1e-2",
    ),
    "train: an unknown normalisation": (
        lambda: TrainConfig(normalization="imagenet"),
        "normalization",
    ),
    "models: ResNet-18 input smaller than the images": (
        lambda: ResNet18(input_size=16),
        "input_size",
    ),
    "scores: the original's score of one member": (
        lambda: scores.original_score(LP[:1]),
        "at least 2",
    ),
    "scores: the original's score of probabilities": (
        lambda: scores.original_score(probabilities()),
        "log",
    ),
    "scores: the original's reference in batches of 0": (
        lambda: scores.original_reference(LP, batch_size=0),
        "batch_size",
    ),
    "scores: the original's reference of one member": (
        lambda: scores.original_reference(LP[:1]),
        "at least 2",
    ),
    "scores: a flag rule with an unknown statistic": (
        lambda: scores.FlagRule(statistic="mean"),
        "statistic",
    ),
    "scores: a flag rule with an unknown reference": (
        lambda: scores.FlagRule(reference="median"),
        "reference",
    ),
    "scores: a flag rule with an unknown disagreement": (
        lambda: scores.FlagRule(disagreement="some"),
        "disagreement",
    ),
    "scores: a flag rule with k = 0": (
        lambda: scores.FlagRule(k=0),
        "k must be positive",
    ),
    "scores: a zero reference, even signed": (
        lambda: scores.flag(LP[0, :, 0], 0.0, signed_reference=True),
        "non-zero",
    ),
    "scores: a negative reference, unsigned": (
        lambda: scores.flag(LP[0, :, 0], -1e-9),
        "positive",
    ),
    "attacks: unknown attack conditions": (
        lambda: attacks.AttackConditions(dropout="half"),
        "dropout",
    ),
    "attacks: unknown start space": (
        lambda: attacks.AttackConditions(start="logits"),
        "start",
    ),
    "attacks: an unknown distance": (
        lambda: attacks.joint_objective(LP, distance="l1"),
        "distance",
    ),
    "attacks: bounds the wrong way round": (
        lambda: attacks.optimise_inputs(
            lambda x: x.sum((1, 2, 3)),
            lambda x: x[:, 0, 0, 0] > 2,
            torch.rand(1, 1, 28, 28),
            1,
            bounds=(1.0, 0.0),
            progress=False,
        ),
        "bounds",
    ),
    "attacks: normalised start on a model without normalisation": (
        lambda: attacks.fooling_attack(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)),
            n_restarts=1,
            steps=1,
            progress=False,
            conditions=attacks.ORIGINAL_CONDITIONS,
        ),
        "Normalize",
    ),
    "replication: unknown experiment": (
        lambda: replication.experiment_config("E9", "book"),
        "E9",
    ),
    "replication: unknown protocol": (
        lambda: replication.experiment_config("E2", "mine"),
        "protocol",
    ),
    "replication: unknown claim": (
        lambda: replication.verdict("E2 cnn AUROC", 0.9, 0.9),
        "unknown claim",
    ),
    "replication: a ladder step that sets no factor": (
        lambda: replication.Step("nothing", "choice", {}),
        "changes no factor",
    ),
    "replication: a ladder step of unknown kind": (
        lambda: replication.Step("x", "taste", {"a": 1}),
        "kind",
    ),
    "replication: a ladder step on an unknown factor": (
        lambda: replication.ladder(
            {"a": 1}, [replication.Step("b", "choice", {"b": 2})], lambda s: {}
        ),
        "unknown factors",
    ),
    "replication: a ladder step that changes nothing": (
        lambda: replication.ladder(
            {"a": 1}, [replication.Step("a", "choice", {"a": 1})], lambda s: {}
        ),
        "changes nothing",
    ),
    "replication: an unknown training budget": (
        lambda: replication.train_config({"budget": "huge"}),
        "budget",
    ),
    "replication: an unknown recipe factor": (
        lambda: replication.train_config({"recipe": "sgd"}),
        "recipe",
    ),
    "replication: an unknown members factor": (
        lambda: replication.train_config({"members": "twins"}),
        "members",
    ),
    "replication: a metric the ladder lacks": (
        lambda: replication.main_cause(
            replication.ladder({"a": 1}, [], lambda s: {"x": 1.0}, progress=False), "y"
        ),
        "no metric",
    ),
    "replication: a claim recorded twice": (
        lambda: replication.replication_table(
            {
                "a": {"claims": {"E1 fooling success": {}}},
                "b": {"claims": {"E1 fooling success": {}}},
            }
        ),
        "both",
    ),
    "book: a scale note without a budget": (
        lambda: __import__("ood_utils.book").book.scale_note(
            profiles.PROFILES["fast"], ()
        ),
        "budgets",
    ),
    "replication: a ladder that misses its end": (
        lambda: replication.ladder(
            {"a": 1},
            [replication.Step("a", "choice", {"a": 2})],
            lambda s: {},
            end={"a": 3},
        ),
        "ends at",
    ),
}


@pytest.mark.parametrize("call, phrase", CASES.values(), ids=list(CASES))
def test_bad_input_is_refused_with_a_clear_message(call, phrase):
    with pytest.raises(ValueError) as info:
        call()
    assert phrase.lower() in str(info.value).lower(), f"unhelpful message: {info.value}"


def test_a_data_root_without_the_files_says_which_files_are_missing(
    tmp_path, monkeypatch
):
    import torchvision

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Dataset not found and the download failed")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    data._load_full.cache_clear()
    with pytest.raises(data.DataNotFoundError) as info:
        data.load("mnist", "test", root=tmp_path)
    data._load_full.cache_clear()
    message = str(info.value)
    assert (
        str(tmp_path) in message
        and "t10k-images-idx3-ubyte" in message
        and "OOD_DATA_ROOT" in message
    )
