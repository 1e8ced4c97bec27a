"""The classifier of the original experiments and an ensemble container.

Members take images in ``[0, 1]`` (they normalise internally) and return
logits ``(B, C)``. An :class:`Ensemble` of N members returns stacked
log-probabilities ``(N, B, C)``, the input of every score in :mod:`ood_utils.scores`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .validate import check_images


class Normalize(nn.Module):
    """``(x - mean) / std`` with fixed scalars, stored as buffers so they travel with the weights."""

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MnistCNN(nn.Module):
    """PyTorch-examples MNIST network: two 3x3 convs, max-pool, dropout, 9216-128-10.

    Args:
        mean, std: input normalisation (the training set's pixel statistics).
        num_classes: output classes.
        dropout: keep the two dropout layers (0.25 and 0.5) of the original.

    Shapes: ``x: (B, 1, 28, 28)`` in ``[0, 1]`` -> logits ``(B, num_classes)``.
    """

    def __init__(self, mean: float = 0.1307, std: float = 0.3081, num_classes: int = 10,
                 dropout: bool = True) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25 if dropout else 0.0)
        self.dropout2 = nn.Dropout(0.5 if dropout else 0.0)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``(B, 128)`` (after ReLU, before the last dropout)."""
        x = self.normalize(x)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        return F.relu(self.fc1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout2(self.features(x)))


#: Architecture name -> constructor taking (mean, std, num_classes).
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"cnn": MnistCNN}


def build_model(arch: str, mean: float, std: float, num_classes: int = 10) -> nn.Module:
    """Construct one freshly initialised member of architecture ``arch``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](mean=mean, std=std, num_classes=num_classes)


class Ensemble(nn.Module):
    """N independently initialised members evaluated side by side.

    ``forward(x)`` returns log-probabilities ``(N, B, C)``; ``logits(x)`` the raw
    logits ``(N, B, C)``. Index it (``ens[0]``) to get one member.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @classmethod
    def build(cls, factory: Callable[[], nn.Module], n: int, seed: int) -> "Ensemble":
        """Create ``n`` members with ``factory()``, member ``i`` initialised from seed ``seed + i``."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        members = []
        for i in range(n):
            torch.manual_seed(seed + i)
            members.append(factory())
        return cls(members)

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int) -> nn.Module:
        return self.members[i]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Stacked logits ``(N, B, C)`` for images ``x: (B, 1, H, W)``."""
        check_images(x)
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stacked log-probabilities ``(N, B, C)`` for images ``x: (B, 1, H, W)``."""
        return F.log_softmax(self.logits(x), dim=-1)


@torch.inference_mode()
def predict_log_probs(model: nn.Module, images: torch.Tensor, batch_size: int = 1000,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Evaluate ``model`` in eval mode on ``images: (M, 1, H, W)`` in batches; result on the CPU.

    Returns ``(N, M, C)`` log-probabilities for an :class:`Ensemble`, ``(M, C)`` for a single member.
    """
    check_images(images)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        outs = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(device)
            out = model(x)
            if not isinstance(model, Ensemble):
                out = F.log_softmax(out, dim=-1)
            outs.append(out.cpu())
        return torch.cat(outs, dim=-2)
    finally:
        model.train(was_training)
