"""Train all members of an ensemble together, and cache the result keyed by its config.

Every member sees the same mini-batches in the same order; the loss is the sum
of the members' negative log-likelihoods, minimised by one Adadelta optimiser
(lr 1.0, StepLR gamma 0.7 per epoch, as in PyTorch's MNIST example). Since the
members share no parameters, the summed loss gives each member exactly the
gradient it would get alone; only the random init (and dropout masks) differ.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import data
from .config import Profile, atomic_write, cache_dir, cached, config_key, get_device, get_profile
from .models import Ensemble, build_model, predict_log_probs

#: Bumped whenever the training code changes in a way that changes the weights.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained ensemble (and so its cache key).

    Attributes:
        dataset: ``"mnist"`` or ``"fashionmnist"``.
        n_members: ensemble size (1 = a single model, 2 = twins).
        arch: architecture name in :data:`ood_utils.models.ARCHITECTURES`.
        epochs: training epochs.
        n_train: training images (``None`` = all).
        batch_size: mini-batch size.
        lr: Adadelta learning rate.
        gamma: StepLR decay per epoch.
        seed: member ``i`` is initialised from ``seed + i``; the batch order from ``seed``.
        weight_decay: L2 penalty passed to Adadelta.
        augment: shift each training image by up to 2 pixels (the same shifted batch for all members).
        identical_init: initialise every member from ``seed`` (the sanity check of chapter 6).
        sync_dropout: every member draws the same dropout masks at every step.
    """

    dataset: str = "mnist"
    n_members: int = 2
    arch: str = "cnn"
    epochs: int = 3
    n_train: int | None = 12_000
    batch_size: int = 64
    lr: float = 1.0
    gamma: float = 0.7
    seed: int = 0
    weight_decay: float = 0.0
    augment: bool = False
    identical_init: bool = False
    sync_dropout: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", data.check_name(self.dataset))
        if self.n_members < 1:
            raise ValueError(f"n_members must be at least 1, got {self.n_members}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if self.n_train is not None and self.n_train < 1:
            raise ValueError(f"n_train must be positive or None, got {self.n_train}")
        if not self.lr > 0 or not 0 < self.gamma <= 1:
            raise ValueError(f"need lr > 0 and 0 < gamma <= 1, got lr={self.lr}, gamma={self.gamma}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")

    @classmethod
    def from_profile(cls, profile: Profile | str | None = None, budget: str = "main",
                     **overrides: object) -> "TrainConfig":
        """The config of the active (or given) profile, with ``overrides`` applied.

        Args:
            budget: ``"main"`` (the profile's ``n_train``/``epochs``) or ``"sweep"``
                (``sweep_n_train``/``sweep_epochs``: for chapters that train many ensembles
                or a network that costs more per image, such as ResNet-18).
        """
        prof = profile if isinstance(profile, Profile) else get_profile(profile)
        if budget == "main":
            base = dict(epochs=prof.epochs, n_train=prof.n_train, batch_size=prof.batch_size)
        elif budget == "sweep":
            base = dict(epochs=prof.sweep_epochs, n_train=prof.sweep_n_train, batch_size=prof.batch_size)
        else:
            raise ValueError(f"budget must be 'main' or 'sweep', got {budget!r}")
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def key(self) -> str:
        """A short hash of every field plus :data:`FORMAT_VERSION`: the cache key."""
        return config_key(self, FORMAT_VERSION)


@dataclass
class History:
    """Per-epoch record of a training run.

    Attributes:
        loss: mean summed-NLL per epoch.
        train_accuracy: ``[epoch][member]`` accuracy on the training batches (dropout on).
        seconds: wall-clock training time per epoch.
        device: where it trained.
    """

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[list[float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    device: str = "cpu"


def make_ensemble(config: TrainConfig) -> Ensemble:
    """A freshly initialised ensemble for ``config`` (member ``i`` from seed ``config.seed + i``)."""
    mean, std = data.NORMALIZATION[config.dataset]
    n_classes = len(data.DATASETS[config.dataset][1])
    return Ensemble.build(lambda: build_model(config.arch, mean, std, n_classes),
                          config.n_members, config.seed, identical=config.identical_init)


def _step(ens: Ensemble, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          sync_dropout: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One joint step on a batch: the members' NLLs summed, one optimiser step.

    Returns the detached summed loss and the log-probabilities ``(N, B, C)``.
    """
    log_probs = ens(x, sync_rng=sync_dropout)                    # (N, B, C)
    loss = sum(F.nll_loss(lp, y) for lp in log_probs)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), log_probs.detach()


def train_ensemble(config: TrainConfig, device: torch.device | str | None = None,
                   progress: bool = True) -> tuple[Ensemble, History]:
    """Train ``config.n_members`` members together on the same batches.

    Returns the trained ensemble (in eval mode, on ``device``) and its :class:`History`.
    """
    device = get_device(str(device)) if device is not None else get_device()
    # n=None with the full profile means "all training images".
    train = data.load(config.dataset, "train", n=config.n_train, profile="full")
    ens = make_ensemble(config).to(device)
    opt = torch.optim.Adadelta(ens.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=config.gamma)
    order_gen = torch.Generator().manual_seed(config.seed)
    hist = History(device=str(device))
    n_batches = -(-len(train) // config.batch_size)
    bar = tqdm(total=config.epochs * n_batches, disable=not progress, mininterval=1.0,
               desc=f"{config.dataset} x{config.n_members}")
    ens.train()
    try:
        for _ in range(config.epochs):
            t0 = time.perf_counter()
            total_loss, correct, seen = 0.0, torch.zeros(config.n_members), 0
            for x, y in data.batches(train.images, train.labels, config.batch_size,
                                     shuffle=True, generator=order_gen):
                if config.augment:
                    x = data.random_shift(x, max_shift=2, generator=order_gen)
                x, y = x.to(device), y.to(device)
                loss, log_probs = _step(ens, opt, x, y, config.sync_dropout)
                total_loss += float(loss) * x.shape[0]
                correct += (log_probs.argmax(-1) == y).sum(1).cpu()
                seen += x.shape[0]
                bar.update()
            sched.step()
            hist.loss.append(total_loss / seen)
            hist.train_accuracy.append((correct / seen).tolist())
            hist.seconds.append(time.perf_counter() - t0)
            bar.set_postfix(loss=f"{hist.loss[-1]:.3f}")
    finally:
        bar.close()
    return ens.eval(), hist


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> list[float]:
    """Test accuracy of each member: a list of N floats (one for a single model)."""
    lp = predict_log_probs(model, images, batch_size)
    if lp.ndim == 2:
        lp = lp.unsqueeze(0)
    return (lp.argmax(-1) == labels).double().mean(1).tolist()


def checkpoint_path(config: TrainConfig, root: Path | str | None = None) -> Path:
    """Where the ensemble of ``config`` is cached: ``<cache>/<dataset>-<arch>-x<N>-<key>.pt``."""
    root = Path(root) if root is not None else cache_dir()
    return root / f"{config.dataset}-{config.arch}-x{config.n_members}-{config.key()}.pt"


def save_checkpoint(ens: Ensemble, hist: History, config: TrainConfig, path: Path) -> None:
    """Write atomically: to a temporary file in the same folder, then rename over ``path``."""
    payload = {"format": FORMAT_VERSION, "config": dataclasses.asdict(config),
               "history": dataclasses.asdict(hist),
               "state_dict": {k: v.detach().cpu() for k, v in ens.state_dict().items()}}
    atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(config: TrainConfig, path: Path,
                    device: torch.device | str | None = None) -> tuple[Ensemble, History]:
    """Load with ``weights_only=True``; raise ``ValueError`` if it was saved for another config."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT_VERSION or payload.get("config") != dataclasses.asdict(config):
        raise ValueError(f"checkpoint {path} was saved for another config or format")
    ens = make_ensemble(config)
    ens.load_state_dict(payload["state_dict"])
    device = get_device(str(device)) if device is not None else get_device()
    return ens.to(device).eval(), History(**payload["history"])


def get_ensemble(config: TrainConfig, device: torch.device | str | None = None,
                 root: Path | str | None = None, retrain: bool = False,
                 progress: bool = True) -> tuple[Ensemble, History]:
    """The trained ensemble for ``config``: from the cache if present, else trained and cached.

    A checkpoint that cannot be read or belongs to another config is reported and
    replaced by a fresh training run.
    """
    return cached(checkpoint_path(config, root),
                  load=lambda path: load_checkpoint(config, path, device),
                  train=lambda: train_ensemble(config, device, progress),
                  save=lambda result, path: save_checkpoint(*result, config, path),
                  retrain=retrain, progress=progress)


def time_steps(config: TrainConfig, n_steps: int = 50, device: torch.device | str | None = None,
               warmup: int = 5) -> float:
    """Seconds per training step of a fresh ensemble for ``config`` (same batches, measured now).

    Used to compare the cost of N members with one in the same run; ``warmup``
    steps are run first and not counted.
    """
    if n_steps < 1 or warmup < 0:
        raise ValueError(f"need n_steps >= 1 and warmup >= 0, got {n_steps}, {warmup}")
    device = get_device(str(device)) if device is not None else get_device()
    train = data.load(config.dataset, "train", n=(n_steps + warmup) * config.batch_size, profile="full")
    ens = make_ensemble(config).to(device).train()
    opt = torch.optim.Adadelta(ens.parameters(), lr=config.lr)
    elapsed = 0.0
    for i, (x, y) in enumerate(data.batches(train.images, train.labels, config.batch_size)):
        if i == warmup and device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        _step(ens, opt, x.to(device), y.to(device), config.sync_dropout)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            elapsed += time.perf_counter() - t0
    return elapsed / n_steps
