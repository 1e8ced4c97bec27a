"""Every public entry point refuses bad input with a ValueError that says what was expected.

One case per line: the call, and a phrase its message must contain.
"""

from __future__ import annotations

import pytest
import torch

from ood_utils import attacks, config, data, metrics, scores, text
from ood_utils.detectors import TwinDetector
from ood_utils.models import Ensemble, MnistCNN, predict_log_probs
from ood_utils.train import TrainConfig

from conftest import random_log_probs

LP = random_log_probs(2, 8)                                  # good: (2, 8, 10)
CNN = MnistCNN()


def probabilities() -> torch.Tensor:
    return LP.exp()


def with_nan() -> torch.Tensor:
    lp = LP.clone()
    lp[0, 0, 0] = float("nan")
    return lp


CASES = {
    "scores: rank 2 instead of (N, B, C)": (lambda: scores.twin_score(LP[0]), "N members"),
    "scores: one member where two are needed": (lambda: scores.twin_score(LP[:1]), "at least 2"),
    "scores: probabilities instead of log-probabilities": (lambda: scores.twin_score(probabilities()), "log"),
    "scores: NaN in the log-probabilities": (lambda: scores.twin_score(with_nan()), "NaN"),
    "scores: empty batch": (lambda: scores.twin_score(LP[:, :0]), "empty"),
    "scores: KL of tensors of different shapes": (lambda: scores.kl_directed(LP[0], LP[0, :4]), "same shape"),
    "scores: empty reference set": (lambda: scores.reference(torch.empty(0)), "non-empty"),
    "scores: inf in the reference set": (lambda: scores.reference(torch.tensor([1.0, float("inf")])), "inf"),
    "metrics: NaN score": (lambda: metrics.auroc([0.1, float("nan")], [0.5, 0.7]), "NaN"),
    "metrics: no OOD scores": (lambda: metrics.auroc([0.1, 0.2], []), "empty"),
    "metrics: a TPR outside (0, 1]": (lambda: metrics.fpr_at_tpr([0.1], [0.2], tpr=1.5), "tpr"),
    "models: integer images": (lambda: predict_log_probs(CNN, torch.zeros(2, 1, 28, 28, dtype=torch.uint8)),
                               "floating point"),
    "models: images without a channel axis": (lambda: predict_log_probs(CNN, torch.zeros(2, 28, 28)),
                                              "unsqueeze"),
    "models: three channels for a one-channel network": (lambda: predict_log_probs(CNN, torch.zeros(2, 3, 28, 28)),
                                                         "channel"),
    "models: empty image batch": (lambda: predict_log_probs(CNN, torch.zeros(0, 1, 28, 28)), "empty"),
    "models: inf in the images": (lambda: predict_log_probs(CNN, torch.full((1, 1, 28, 28), float("inf"))), "inf"),
    "data: unknown dataset": (lambda: data.load("cifar10", "test"), "cifar10"),
    "data: unknown split": (lambda: data.load("mnist", "validation"), "split"),
    "config: unknown profile": (lambda: config.get_profile("huge"), "huge"),
    "config: unknown device": (lambda: config.get_device("tpu"), "tpu"),
    "train: unknown dataset in a config": (lambda: TrainConfig(dataset="svhn"), "svhn"),
    "text: unknown book": (lambda: text.load_book("klingon-poetry"), "klingon-poetry"),
    "detectors: a twin detector with one member": (lambda: TwinDetector(Ensemble([MnistCNN()])), "2"),
    "attacks: no restarts": (lambda: attacks.fooling_attack(CNN, n_restarts=0, progress=False), "n_restarts"),
    "data: noise of size 0": (lambda: data.uniform_noise(0), "n"),
}


@pytest.mark.parametrize("call, phrase", CASES.values(), ids=list(CASES))
def test_bad_input_is_refused_with_a_clear_message(call, phrase):
    with pytest.raises(ValueError) as info:
        call()
    assert phrase.lower() in str(info.value).lower(), f"unhelpful message: {info.value}"


def test_a_data_root_without_the_files_says_which_files_are_missing(tmp_path, monkeypatch):
    import torchvision

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Dataset not found and the download failed")

    monkeypatch.setenv("OOD_DATA_ROOT", str(tmp_path))
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    data._load_full.cache_clear()
    with pytest.raises(data.DataNotFoundError) as info:
        data.load("mnist", "test")
    data._load_full.cache_clear()
    message = str(info.value)
    assert str(tmp_path) in message and "t10k-images-idx3-ubyte" in message and "OOD_DATA_ROOT" in message
