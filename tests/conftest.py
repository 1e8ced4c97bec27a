"""Shared fixtures. Data come from $OOD_DATA_ROOT (CI: ../shared/data)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in tests

import pytest
import torch

from ood_utils import data
from ood_utils.train import TrainConfig, train_ensemble


def _data_available() -> bool:
    try:
        data.load("mnist", "test", n=10)
        data.load("fashionmnist", "test", n=10)
        return True
    except data.DataNotFoundError:
        return False


needs_data = pytest.mark.skipif(not _data_available(), reason="MNIST/FashionMNIST not found under $OOD_DATA_ROOT")


@pytest.fixture(scope="session")
def trained_cnn() -> torch.nn.Module:
    """A single MNIST CNN trained briefly (3000 images, 1 epoch): about 97% accurate, a few seconds."""
    if not _data_available():
        pytest.skip("MNIST not found under $OOD_DATA_ROOT")
    cfg = TrainConfig(dataset="mnist", n_members=1, epochs=1, n_train=3000, seed=0)
    ens, _ = train_ensemble(cfg, device="cpu", progress=False)
    return ens[0]


def random_log_probs(n: int, b: int, c: int = 10, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    """Random log-probabilities ``(n, b, c)`` for unit tests."""
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(scale * torch.randn(n, b, c, generator=g), dim=-1)


#: Notebook name -> execution seconds, filled by tests/test_notebooks.py.
NOTEBOOK_SECONDS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 (pytest hook)
    """Print each chapter's execution time and the total at the end of the run."""
    if not NOTEBOOK_SECONDS:
        return
    terminalreporter.section("notebook execution times")
    for name, secs in NOTEBOOK_SECONDS.items():
        terminalreporter.write_line(f"{secs:7.1f} s  {name}")
    terminalreporter.write_line(f"{sum(NOTEBOOK_SECONDS.values()):7.1f} s  total")
