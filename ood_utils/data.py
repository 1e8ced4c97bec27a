"""MNIST and FashionMNIST as in-memory tensors.

Images are kept as float tensors in ``[0, 1]`` of shape ``(N, 1, 28, 28)``; the
per-dataset normalisation is part of each model (see :mod:`ood_utils.models`),
so an attack or a noise image lives in the same pixel space as real data.

The files are read with :mod:`torchvision.datasets` (``download=True``) from
a data folder (a chapter's ``run.data_root``): offline, put the raw files there; online,
torchvision downloads and checks them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .run import ENV, Run, default_folder

#: Dataset name -> (torchvision class name, class names).
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": ("MNIST", tuple(str(i) for i in range(10))),
    "fashionmnist": (
        "FashionMNIST",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}

#: Mean and standard deviation of the training pixels (used inside the models).
NORMALIZATION: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),  # PyTorch's MNIST example
    "fashionmnist": (0.2860, 0.3530),
}

_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataNotFoundError(FileNotFoundError):
    """The dataset files are missing and could not be downloaded."""


@dataclass(frozen=True)
class ImageData:
    """A labelled image set held in memory.

    Attributes:
        images: ``(N, 1, 28, 28)`` float32 in ``[0, 1]``.
        labels: ``(N,)`` int64.
        name: dataset name, e.g. ``"mnist"``.
        split: ``"train"`` or ``"test"``.
        classes: class names, index = label.
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str
    split: str
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def check_name(name: str) -> str:
    """Normalise a dataset name (``"FashionMNIST"`` -> ``"fashionmnist"``) or raise
    ``ValueError``."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}: expected one of {sorted(DATASETS)}"
        )
    return key


#: Dataset name -> the name the book displays ("MNIST", "FashionMNIST").
DISPLAY: dict[str, str] = {name: cls for name, (cls, _) in DATASETS.items()}


def other_dataset(name: str) -> str:
    """The dataset used as out-of-distribution for a model trained on ``name``."""
    return "fashionmnist" if check_name(name) == "mnist" else "mnist"


def direction(name: str) -> str:
    """The name of the test of a model trained on ``name`` against the other dataset,
    as tables label it: ``"MNIST -> FashionMNIST"`` for ``"mnist"``."""
    return f"{DISPLAY[check_name(name)]} -> {DISPLAY[other_dataset(name)]}"


def trained_on(label: str) -> str:
    """The dataset of the model in a :func:`direction` label, looked up, not taken
    apart: ``"mnist"`` for ``"MNIST -> FashionMNIST"``."""
    names = {direction(name): name for name in DATASETS}
    if label not in names:
        raise ValueError(f"unknown direction {label!r}: expected one of {list(names)}")
    return names[label]


@functools.lru_cache(maxsize=8)
def _load_full(name: str, train: bool, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision

    cls_name, _ = DATASETS[name]
    cls = getattr(torchvision.datasets, cls_name)
    try:
        ds = cls(root=root, train=train, download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError offline
        raw = Path(root) / cls_name / "raw"
        files = "\n  ".join(str(raw / f) for f in _RAW_FILES)
        raise DataNotFoundError(
            f"{cls_name} could not be read from {root} nor downloaded "
            f"({type(err).__name__}: {err}).\nPut these files (uncompressed, or the "
            f".gz originals) there:\n  {files}\nor point ${ENV['data_root']} at a "
            f"folder that holds {cls_name}/raw/."
        ) from err
    images = ds.data.unsqueeze(1).to(torch.float32).div_(255.0)
    return images, ds.targets.to(torch.int64)


def _subset(n_total: int, n: int | None, seed: int) -> torch.Tensor | None:
    if n is None or n >= n_total:
        return None
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=gen)[:n].sort().values


def load(
    name: str,
    split: str = "train",
    n: int | None = None,
    root: str | Path | None = None,
    seed: int = 0,
) -> ImageData:
    """Load a dataset split into memory: all of it, or a deterministic random subset of
    ``n``.

    A chapter loads its profile's subset from its data folder with
    ``data.load(name, split, n=run.profile.n_test, root=run.data_root)``.

    Args:
        name: ``"mnist"`` or ``"fashionmnist"``.
        split: ``"train"`` or ``"test"``.
        n: number of images (a deterministic random subset); ``None`` = all of them.
        root: data folder; default ``<user cache>/twin-kl/data``
            (:func:`ood_utils.run.default_folder`).
        seed: seed of the subset choice (the same seed always gives the same images).

    Returns:
        :class:`ImageData` with images ``(n, 1, 28, 28)`` in ``[0, 1]``.

    Raises:
        ValueError: unknown name or split, or ``n < 1``.
        DataNotFoundError: the files are missing and cannot be downloaded.
    """
    key = check_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of images, got {n}")
    root_path = (
        Path(root).expanduser().resolve()
        if root is not None
        else default_folder("data")
    )
    images, labels = _load_full(key, split == "train", str(root_path))
    idx = _subset(len(labels), n, seed)
    if idx is not None:
        images, labels = images[idx], labels[idx]
    return ImageData(
        images=images, labels=labels, name=key, split=split, classes=DATASETS[key][1]
    )


def chapter_split(run: Run, name: str, split: str = "test", seed: int = 0) -> ImageData:
    """A chapter's images: its profile's subset of ``split`` (``n_train`` or ``n_test``
    images, all when ``None``) from ``run.data_root``."""
    n = run.profile.n_train if split == "train" else run.profile.n_test
    return load(name, split, n=n, root=run.data_root, seed=seed)


def uniform_noise(
    n: int, seed: int = 0, shape: tuple[int, ...] = (1, 28, 28)
) -> torch.Tensor:
    """``n`` images of i.i.d. uniform ``[0, 1)`` pixels, shape ``(n, *shape)``,
    deterministic in ``seed``."""
    if n < 1:
        raise ValueError(f"n must be a positive number of images, got {n}")
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


#: The corruptions :func:`corrupt` can draw.
CORRUPTIONS: tuple[str, ...] = ("strokes", "text")


@functools.lru_cache(maxsize=4)
def _font(size: int):  # noqa: ANN202 (PIL font)
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def corrupt(
    images: torch.Tensor,
    kind: str = "strokes",
    seed: int = 0,
    n: int = 3,
    font_size: int = 12,
) -> torch.Tensor:
    """Draw random white strokes or letters over each image, deterministically for
    ``seed``.

    The drawing is made on a separate black canvas with Pillow and combined with the
    image by a pixel-wise maximum, so the digit (or garment) stays visible underneath.

    Args:
        images: ``(B, 1, H, W)`` in ``[0, 1]``.
        kind: ``"strokes"``: ``n`` straight lines of width 2 between random points;
            ``"text"``: a random word of ``n`` capital letters at a random position.
        seed: the same seed gives the same drawings (image ``i`` always gets drawing
            ``i``).
        n: lines per image, or letters per word.
        font_size: letter height in pixels for ``"text"`` (Pillow's default font).

    Returns:
        A new tensor ``(B, 1, H, W)`` in ``[0, 1]``; ``images`` is not modified.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    from .validate import check_images

    check_images(images, channels=1)
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}: expected one of {CORRUPTIONS}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    b, _, h, w = images.shape
    rng = np.random.default_rng(seed)
    canvases = np.zeros((b, h, w), dtype=np.uint8)
    for i in range(b):
        canvas = Image.new("L", (w, h))
        draw = ImageDraw.Draw(canvas)
        if kind == "strokes":
            for _ in range(n):
                x0, x1 = rng.integers(0, w, 2)
                y0, y1 = rng.integers(0, h, 2)
                draw.line([(int(x0), int(y0)), (int(x1), int(y1))], fill=255, width=2)
        else:
            word = "".join(chr(ord("A") + int(c)) for c in rng.integers(0, 26, n))
            left, top, right, bottom = draw.textbbox(
                (0, 0), word, font=_font(font_size)
            )
            x = int(rng.integers(0, max(1, w - (right - left)) + 1)) - left
            y = int(rng.integers(0, max(1, h - (bottom - top)) + 1)) - top
            draw.text((x, y), word, fill=255, font=_font(font_size))
        canvases[i] = np.asarray(canvas)
    drawn = torch.from_numpy(canvases).to(images.dtype).div_(255.0).unsqueeze(1)
    return torch.maximum(images, drawn.to(images.device))


def batches(
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    batch_size: int = 64,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(x, y)`` mini-batches of in-memory tensors (``y`` is ``None`` without
    labels).

    Much faster than a ``DataLoader`` with per-sample transforms, and every member
    of an ensemble sees exactly the same batches in the same order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = images.shape[0]
    if labels is not None and labels.shape[0] != n:
        raise ValueError(f"{n} images but {labels.shape[0]} labels")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield images[idx], (labels[idx] if labels is not None else None)


def random_shift(
    images: torch.Tensor, max_shift: int = 2, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Translate each image by a random whole number of pixels in ``[-max_shift,
    max_shift]``.

    ``images: (B, C, H, W)``; the border is filled with 0 (black). Deterministic for a
    seeded ``generator``."""
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return images
    b, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)
    shifts = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=generator).tolist()
    return torch.stack(
        [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(shifts)]
    )
