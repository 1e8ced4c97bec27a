"""The classifier of the original experiments and an ensemble container.

Members take images in ``[0, 1]`` (they normalise internally) and return
logits ``(B, C)``. An :class:`Ensemble` of N members returns stacked
log-probabilities ``(N, B, C)``, the input of every score in :mod:`ood_utils.scores`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from .validate import check_images

T = TypeVar("T")


class Normalize(nn.Module):
    """``(x - mean) / std`` with fixed scalars, stored as buffers so they travel with
    the weights."""

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
        batchnorm: add batch normalisation after each convolution (a training-scheme
            variant).
        channel_dropout: the first dropout drops whole channels
            (``nn.Dropout2d(0.25)``), as in the original's code (PyTorch's MNIST example
            of early 2020); the default drops single activations (``nn.Dropout``). The
            second dropout acts on single activations either way (the original's
            ``nn.Dropout2d(0.5)`` on a ``(B, 128)`` tensor did too).
        conv2_relu: a ReLU between the second convolution and the max-pool (today's
            PyTorch example, and the book). The original's network has none there
            (published notebook, cell 5: ``x = self.conv2(x); x =
            F.max_pool2d(x, 2)``, as in the PyTorch example of early 2020).

    Shapes: ``x: (B, 1, 28, 28)`` in ``[0, 1]`` -> logits ``(B, num_classes)``.
    """

    def __init__(
        self,
        mean: float = 0.1307,
        std: float = 0.3081,
        num_classes: int = 10,
        dropout: bool = True,
        batchnorm: bool = False,
        channel_dropout: bool = False,
        conv2_relu: bool = True,
    ) -> None:
        super().__init__()
        self.conv2_relu = conv2_relu
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.bn1 = nn.BatchNorm2d(32) if batchnorm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(64) if batchnorm else nn.Identity()
        self.dropout1 = (nn.Dropout2d if channel_dropout else nn.Dropout)(
            0.25 if dropout else 0.0
        )
        self.dropout2 = nn.Dropout(0.5 if dropout else 0.0)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, num_classes)
        # Channels-last convolution weights: same network, but max-pooling (and so the
        # whole forward pass) runs about 1.5x faster on a CPU (see the
        # performance appendix).
        self.to(memory_format=torch.channels_last)

    @property
    def layers(self) -> dict[str, str]:
        """Named layers for :func:`ood_utils.detectors.cosine_scores`: name -> torch.fx
        node."""
        if self.conv2_relu:
            return {
                "conv1": "relu",
                "conv2": "relu_1",
                "pool": "max_pool2d",
                "penultimate": "relu_2",
                "logits": "fc2",
            }
        return {
            "conv1": "relu",
            "conv2": "bn2",
            "pool": "max_pool2d",
            "penultimate": "relu_1",
            "logits": "fc2",
        }

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``(B, 128)`` (after ReLU, before the last
        dropout)."""
        x = self.normalize(x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        if self.conv2_relu:
            x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        return F.relu(self.fc1(x))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C)`` from penultimate activations ``(B, 128)``: ``forward =
        head(features(x))``."""
        return self.fc2(self.dropout2(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 for one-channel images, with the input normalisation
    built in.

    The first convolution takes 1 channel instead of 3; everything else is torchvision's
    ``resnet18`` (randomly initialised). Any input size of at least 28x28 works (the
    stem and four stages reduce it by 32, then global average pooling).

    With ``input_size`` (the original's Exp 2 bis used 224), every image is first
    resized bilinearly to ``input_size x input_size``, inside the network, as the
    original's ``transforms.Resize((224, 224))`` did to each image before it: the data,
    attacks and scores stay at 28x28, and the network costs about 64 times more per
    image.

    Shapes: ``x: (B, 1, H, W)`` in ``[0, 1]`` -> logits ``(B, num_classes)``.
    """

    #: Named layers for :func:`ood_utils.detectors.cosine_scores`: name ->
    #: torch.fx node.
    layers = {
        "stem": "net.maxpool",
        **{f"layer{i}": f"net.layer{i}.1.relu_1" for i in (1, 2, 3, 4)},
        "penultimate": "flatten",
        "logits": "net.fc",
    }

    def __init__(
        self,
        input_size: int | None = None,
        mean: float = 0.1307,
        std: float = 0.3081,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        from torchvision.models import resnet18

        if input_size is not None and input_size < 28:
            raise ValueError(
                f"input_size must be at least 28 (or None), got {input_size}"
            )
        self.input_size = input_size
        self.normalize = Normalize(mean, std)
        self.net = resnet18(weights=None, num_classes=num_classes)
        self.net.conv1 = nn.Conv2d(
            1, 64, kernel_size=7, stride=2, padding=3, bias=False
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``(B, 512)`` (after global average pooling)."""
        net = self.net
        if self.input_size is not None:
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
            )
        x = net.maxpool(net.relu(net.bn1(net.conv1(self.normalize(x)))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return torch.flatten(net.avgpool(x), 1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C)`` from penultimate activations ``(B, 512)``: ``forward =
        head(features(x))``."""
        return self.net.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


#: Architecture name -> constructor taking (mean, std, num_classes).
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    # the original network
    "cnn": MnistCNN,
    "cnn-nodropout": lambda **kw: MnistCNN(dropout=False, **kw),
    "cnn-batchnorm": lambda **kw: MnistCNN(batchnorm=True, **kw),
    # whole channels dropped, as in the original's code
    "cnn-dropout2d": lambda **kw: MnistCNN(channel_dropout=True, **kw),
    # the original's exact network: channel dropout and no ReLU after conv2
    "cnn-original": lambda **kw: MnistCNN(channel_dropout=True, conv2_relu=False, **kw),
    # at the data's 28x28
    "resnet18": ResNet18,
    # the original's Exp 2 bis
    "resnet18-224": lambda **kw: ResNet18(input_size=224, **kw),
}


def build_model(arch: str, mean: float, std: float, num_classes: int = 10) -> nn.Module:
    """Construct one freshly initialised member of architecture ``arch``."""
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {arch!r}: expected one of {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[arch](mean=mean, std=std, num_classes=num_classes)


class Ensemble(nn.Module):
    """N independently initialised members evaluated side by side.

    ``forward(x)`` returns log-probabilities ``(N, B, C)``; ``logits(x)`` the raw
    logits ``(N, B, C)``. Index it (``ens[0]``) to get one member.
    """

    def __init__(
        self,
        members: list[nn.Module],
        check_input: Callable[[torch.Tensor], object] | None = check_images,
    ) -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.check_input = check_input

    @classmethod
    def build(
        cls,
        factory: Callable[[], nn.Module],
        n: int,
        seed: int,
        identical: bool = False,
    ) -> Ensemble:
        """Create ``n`` members with ``factory()``, member ``i`` initialised from seed
        ``seed + i``.

        With ``identical=True`` every member is initialised from ``seed``: separate
        copies (no shared parameters) with the same initial weights.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return cls.from_seeds(
            factory, [seed] * n if identical else range(seed, seed + n)
        )

    @classmethod
    def from_seeds(
        cls,
        factory: Callable[[], nn.Module],
        seeds: Sequence[int],
        check_input: Callable[[torch.Tensor], object] | None = check_images,
    ) -> Ensemble:
        """One member per seed: ``factory()`` called right after
        ``torch.manual_seed(seed)``.

        The members are built inside :func:`torch.random.fork_rng`: the global
        generators are left as they were."""
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            members = []
            for seed in seeds:
                torch.manual_seed(seed)
                members.append(factory())
        return cls(members, check_input)

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int) -> nn.Module:
        return self.members[i]

    def logits(
        self, x: torch.Tensor, streams: RandomStreams | None = None
    ) -> torch.Tensor:
        """Stacked logits ``(N, B, C)`` for images ``x: (B, 1, H, W)``.

        With ``streams`` (one per member), member ``i`` draws its dropout masks from
        stream ``i`` instead of the global generator, so what it draws does not depend
        on how many members run before it (see :class:`RandomStreams`)."""
        if self.check_input is not None:
            self.check_input(x)
        if streams is None:
            return torch.stack([m(x) for m in self.members])
        if len(streams) != len(self.members):
            raise ValueError(
                f"{len(streams)} random streams for {len(self.members)} members"
            )
        return torch.stack([streams.call(i, m, x) for i, m in enumerate(self.members)])

    def forward(
        self, x: torch.Tensor, streams: RandomStreams | None = None
    ) -> torch.Tensor:
        """Stacked log-probabilities ``(N, B, C)`` for images ``x: (B, 1, H, W)``."""
        return F.log_softmax(self.logits(x, streams), dim=-1)


class RandomStreams:
    """One random-number stream per ensemble member, for dropout during training.

    PyTorch's dropout draws from the device's global generator, so by default member 2's
    masks depend on what member 1 drew before it. Here member ``i`` runs with the global
    generator set to its own stream (seeded with ``seeds[i]``), which is saved
    afterwards and the global state restored. A member then trains exactly as it would
    alone: the same init, batches and stream give bit-identical weights whatever members
    train beside it. Members given the same seed draw the same masks (synchronised
    dropout).

    Args:
        seeds: one seed per member.
        device: the device the members run on (``cpu`` or ``cuda``).
    """

    def __init__(
        self, seeds: Sequence[int], device: torch.device | str = "cpu"
    ) -> None:
        self.device = torch.device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(
                f"random streams support cpu and cuda devices, not {self.device}"
            )
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.states = [
            torch.Generator(device=self.device).manual_seed(int(s)).get_state()
            for s in seeds
        ]
        self.slots = list(range(len(self.states)))

    @classmethod
    def shared(
        cls, state: torch.Tensor, n_members: int, device: torch.device | str = "cpu"
    ) -> RandomStreams:
        """One stream, from generator ``state``, that ``n_members`` members draw from in
        turn (member 0, then 1, ... at every step): how members drew from the global
        generator."""
        streams = cls([], device)
        streams.states, streams.slots = [state], [0] * n_members
        return streams

    def __len__(self) -> int:
        return len(self.slots)

    def _get(self) -> torch.Tensor:
        if self.device.type == "cuda":
            return torch.cuda.get_rng_state(self.device)
        return torch.get_rng_state()

    def _set(self, state: torch.Tensor) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state, self.device)
        else:
            torch.set_rng_state(state)

    def call(self, i: int, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` with the global generator on stream ``i``; advances stream
        ``i`` only."""
        outer = self._get()
        slot = self.slots[i]
        self._set(self.states[slot])
        try:
            result = fn(*args)
            self.states[slot] = self._get()
        finally:
            self._set(outer)
        return result


def max_weight_difference(a: nn.Module, b: nn.Module) -> float:
    """The largest absolute difference between the same entry of two modules' state
    dicts.

    0.0 means bit-identical weights and buffers. Raises ``ValueError`` if the two
    modules do not have the same entries and shapes."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ValueError(
            f"{type(a).__name__} and {type(b).__name__} do not have the same weights "
            "to compare"
        )
    return max(
        (
            float(
                (sa[k].detach().double() - sb[k].detach().double().to(sa[k].device))
                .abs()
                .max()
            )
            for k in sa
            if sa[k].numel()
        ),
        default=0.0,
    )


def input_normalization(model: nn.Module) -> tuple[float, float]:
    """``(mean, std)`` of the first :class:`Normalize` inside ``model`` (an ensemble's
    first member's).

    A member maps pixels ``x`` in ``[0, 1]`` to ``(x - mean) / std`` before its first
    layer; the original experiments fed ``torch.rand`` straight into that normalised
    space."""
    norm = next((m for m in model.modules() if isinstance(m, Normalize)), None)
    if norm is None:
        raise ValueError(
            f"{type(model).__name__} has no Normalize layer: its input normalisation "
            "is unknown"
        )
    return float(norm.mean), float(norm.std)


@contextmanager
def model_mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """Put ``model`` in train (``training=True``: dropout on) or eval mode, then restore
    its modes.

    Every submodule's own mode is restored, not just the top module's.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for m, was_training in modes:
            m.training = was_training


def eval_mode(model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """Put ``model`` in eval mode (dropout off, batch-norm statistics frozen), then
    restore its mode."""
    return model_mode(model, training=False)


@torch.inference_mode()
def predict_log_probs(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Evaluate ``model`` in eval mode on ``images: (M, 1, H, W)`` in batches; result on
    the CPU.

    Returns ``(N, M, C)`` log-probabilities for an :class:`Ensemble`, ``(M, C)`` for a
    single member."""
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    check_images(
        images, channels=first_conv.in_channels if first_conv is not None else None
    )
    device = (
        torch.device(device) if device is not None else next(model.parameters()).device
    )
    outs = []
    with eval_mode(model):
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device)
            out = model(x)
            if not isinstance(model, Ensemble):
                out = F.log_softmax(out, dim=-1)
            outs.append(out.cpu())
    return torch.cat(outs, dim=-2)
