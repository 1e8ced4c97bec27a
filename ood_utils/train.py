"""Train all members of an ensemble together, and cache each member keyed by its config.

Every member sees the same mini-batches in the same order; the loss is the sum
of the members' negative log-likelihoods, minimised by one optimiser: by default
Adadelta (lr 1.0, StepLR gamma 0.7 per epoch, as in PyTorch's MNIST example and the
original's Exp 1), or the original's Exp 2-4 recipe, Adam with a ``CyclicLR`` stepped
once per epoch (:data:`RECIPES`). Since the members share no parameters, the summed
loss gives each member exactly the gradient it would get alone; only the random init
and the dropout masks differ. Each member draws its masks from its own random stream,
so it trains bit for bit as it would alone, and the cache stores members, not ensembles.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from . import data
from .configs import KeyedConfig
from .models import Ensemble, RandomStreams, build_model, predict_log_probs
from .profiles import Profile, get_profile
from .progress import progress_bar
from .run import Run

#: Bumped whenever the training code changes in a way that changes the weights.
FORMAT_VERSION = 2

#: Training recipes (optimiser and learning-rate schedule), see :class:`TrainConfig`.
RECIPES = ("adadelta", "adam-cyclic")

#: Input normalisations, see :class:`TrainConfig`.
NORMALIZATIONS = ("dataset", "mnist")


@dataclass(frozen=True)
class TrainConfig(KeyedConfig):
    """Everything that determines a trained ensemble (and so its cache key,
    :meth:`~ood_utils.configs.KeyedConfig.key` with :data:`FORMAT_VERSION`).

    Attributes:
        dataset: ``"mnist"`` or ``"fashionmnist"``.
        n_members: ensemble size (1 = a single model, 2 = twins).
        arch: architecture name in :data:`ood_utils.models.ARCHITECTURES`.
        epochs: training epochs.
        n_train: training images (``None`` = all).
        batch_size: mini-batch size.
        lr: Adadelta learning rate.
        gamma: StepLR decay per epoch.
        seed: member ``i`` is initialised from ``seed + i``; the batch order from
            ``seed``.
        weight_decay: L2 penalty passed to Adadelta.
        augment: shift each training image by up to 2 pixels (the same shifted batch for
            all members).
        identical_init: initialise every member from ``seed`` (the sanity check of
            chapter 6).
        sync_dropout: every member draws the same dropout masks at every step.
        recipe: the optimiser and schedule, one of :data:`RECIPES`. ``"adadelta"``:
            Adadelta at ``lr``, multiplied by ``gamma`` after every epoch (PyTorch's
            MNIST example; the original's Exp 1 and attacks). ``"adam-cyclic"``: the
            original's Exp 2-4, Adam with ``CyclicLR(base_lr=0, max_lr=lr,
            step_size_up=200)`` stepped once per *epoch*, so epoch ``k`` trains at ``(k
            - 1) * lr / 200`` and epoch 1 at exactly 0 (the original used ``lr=1e-2``;
            ``gamma`` is unused).
        normalization: the members' input normalisation, one of :data:`NORMALIZATIONS`:
            ``"dataset"``, the training set's own pixel statistics (the book), or
            ``"mnist"``, MNIST's for both datasets (the original's code).
        shared_module: every member is one and the same module, as in the original's Exp
            3 (``MultiNet(m, m)``): it is trained by the members' summed loss, each
            member's pass with its own dropout masks, and in eval mode all members give
            bit-identical outputs.
    """

    dataset: str = "mnist"
    n_members: int = 2
    arch: str = "cnn"
    epochs: int = 3
    n_train: int | None = 10_000
    batch_size: int = 64
    lr: float = 1.0
    gamma: float = 0.7
    seed: int = 0
    weight_decay: float = 0.0
    augment: bool = False
    identical_init: bool = False
    sync_dropout: bool = False
    recipe: str = "adadelta"
    normalization: str = "dataset"
    shared_module: bool = False

    format_version: ClassVar[int] = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", data.check_name(self.dataset))
        if self.n_members < 1:
            raise ValueError(f"n_members must be at least 1, got {self.n_members}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if self.n_train is not None and self.n_train < 1:
            raise ValueError(f"n_train must be positive or None, got {self.n_train}")
        if not self.lr > 0 or not 0 < self.gamma <= 1:
            raise ValueError(
                f"need lr > 0 and 0 < gamma <= 1, got lr={self.lr}, gamma={self.gamma}"
            )
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.recipe not in RECIPES:
            raise ValueError(
                f"unknown recipe {self.recipe!r}: expected one of {RECIPES}"
            )
        if self.recipe == "adam-cyclic" and self.lr > 0.1:
            raise ValueError(
                "recipe 'adam-cyclic' takes Adam's largest learning rate as lr (the "
                f"original used 1e-2), got lr={self.lr} (Adadelta's default)"
            )
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {self.normalization!r}: expected one of "
                f"{NORMALIZATIONS}"
            )
        # a dataset's own statistics: one name, one key
        if self.normalization == self.dataset:
            object.__setattr__(self, "normalization", "dataset")

    @classmethod
    def from_profile(
        cls, profile: Profile | str, budget: str = "main", **overrides: object
    ) -> TrainConfig:
        """The config of ``profile`` (or its name), with ``overrides`` applied.

        Args:
            budget: ``"main"`` (the profile's main budget) or ``"sweep"`` (for chapters
                that train many ensembles or a network that costs more per image, such
                as ResNet-18).
        """
        prof = get_profile(profile)
        spend = prof.budget(budget)
        base = dict(
            epochs=spend.epochs, n_train=spend.n_train, batch_size=prof.batch_size
        )
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]


@dataclass
class History:
    """Per-epoch record of a training run.

    Attributes:
        loss: ``[epoch][member]`` mean NLL on the training batches (dropout on).
        train_accuracy: ``[epoch][member]`` accuracy on the training batches (dropout
            on).
        seconds: wall-clock training time per epoch, shared equally among the members
            that trained together (an ensemble assembled from the cache adds its
            members' shares).
        device: where it trained.
        lr: the learning rate of each epoch.
    """

    loss: list[list[float]] = field(default_factory=list)
    train_accuracy: list[list[float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    device: str = "cpu"
    lr: list[float] = field(default_factory=list)

    def member(self, i: int) -> History:
        """Member ``i``'s own record (its time share per epoch)."""
        n = len(self.loss[0]) if self.loss else 1
        return History(
            [[e[i]] for e in self.loss],
            [[e[i]] for e in self.train_accuracy],
            [t / n for t in self.seconds],
            self.device,
            list(self.lr),
        )

    @classmethod
    def join(cls, members: list[History]) -> History:
        """The record of an ensemble from its members' records (the inverse of
        :meth:`member`)."""
        return cls(
            [sum(e, []) for e in zip(*(h.loss for h in members))],
            [sum(e, []) for e in zip(*(h.train_accuracy for h in members))],
            [sum(e) for e in zip(*(h.seconds for h in members))],
            members[0].device,
            list(members[0].lr),
        )


#: Dropout stream seeds are offset from init seeds, so that a member's masks are not
#: drawn from the same random sequence as its initial weights.
DROPOUT_SEED_OFFSET = 10_000


def member_seeds(config: TrainConfig, i: int) -> tuple[int, int]:
    """``(init seed, dropout seed)`` of member ``i``: with the config, all that makes it
    unique.

    Member ``i`` is initialised from ``seed + i`` (``seed`` with ``identical_init`` or
    ``shared_module``) and draws its dropout masks from stream ``DROPOUT_SEED_OFFSET +
    seed + i`` (``+ seed`` for every member with ``sync_dropout``)."""
    if not 0 <= i < config.n_members:
        raise ValueError(
            f"member index {i} out of range for {config.n_members} members"
        )
    init = (
        config.seed
        if config.identical_init or config.shared_module
        else config.seed + i
    )
    drop = DROPOUT_SEED_OFFSET + (
        config.seed if config.sync_dropout else config.seed + i
    )
    return init, drop


def make_ensemble(
    config: TrainConfig, members: Sequence[int] | None = None
) -> Ensemble:
    """A freshly initialised ensemble for ``config`` (member ``i`` from its init seed).

    ``members`` picks which members to build (default: all ``config.n_members``). With
    ``shared_module`` there is one module, and every member is that module.
    """
    stats = (
        config.dataset if config.normalization == "dataset" else config.normalization
    )
    mean, std = data.NORMALIZATION[stats]
    n_classes = len(data.DATASETS[config.dataset][1])
    indices = list(range(config.n_members) if members is None else members)

    def factory() -> torch.nn.Module:
        return build_model(config.arch, mean, std, n_classes)

    if config.shared_module:
        return Ensemble([Ensemble.from_seeds(factory, [config.seed])[0]] * len(indices))
    return Ensemble.from_seeds(factory, [member_seeds(config, i)[0] for i in indices])


def make_optimiser(
    config: TrainConfig, params: Iterable[torch.nn.Parameter]
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser of ``config.recipe`` over ``params``, and its schedule (stepped
    once per epoch)."""
    if config.recipe == "adam-cyclic":
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        # The original's Exp 2-4: a schedule meant for batches, stepped once per epoch.
        return opt, torch.optim.lr_scheduler.CyclicLR(
            opt, base_lr=0.0, max_lr=config.lr, step_size_up=200, cycle_momentum=False
        )
    opt = torch.optim.Adadelta(params, lr=config.lr, weight_decay=config.weight_decay)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=config.gamma)


def joint_step(
    ens: Ensemble,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    streams: RandomStreams | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One joint step on a batch: the members' NLLs summed, one optimiser step.

    ``x`` is a batch of inputs (images ``(B, 1, H, W)``, or token ids ``(B, T)``) and
    ``y`` its targets (``(B,)`` or ``(B, T)``). Returns the detached summed loss and the
    log-probabilities ``(N, B, C)`` (``(N, B, T, V)`` for tokens)."""
    log_probs = ens(x, streams)
    loss = sum(F.nll_loss(lp.flatten(0, -2), y.flatten()) for lp in log_probs)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), log_probs.detach()


def joint_steps(
    ens: Ensemble,
    opt: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    streams: RandomStreams | None,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Train the members together: one :func:`joint_step` per batch, all on the same
    batches.

    The one training mechanism of the book, for the image ensembles
    (:func:`train_ensemble`) and the text twins (:func:`ood_utils.text.train_twins`):
    each caller brings its batches and optimiser and keeps its own records. Yields ``(y,
    loss, log_probs)`` after every step, with ``y`` on ``device``."""
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        loss, log_probs = joint_step(ens, opt, x, y, streams)
        yield y, loss, log_probs


def _streams(
    config: TrainConfig, members: Sequence[int], device: torch.device
) -> RandomStreams:
    return RandomStreams([member_seeds(config, i)[1] for i in members], device)


def train_ensemble(
    config: TrainConfig,
    run: Run,
    progress: bool = True,
    members: Sequence[int] | None = None,
) -> tuple[Ensemble, History]:
    """Train members of ``config`` together on the same batches (default: all of them).

    ``members`` picks the member indices to train; each trains exactly as it would alone
    or in the full ensemble (same init, batches and dropout stream: bit-identical
    weights). With ``shared_module`` the one module is trained by all members' passes,
    whatever ``members``. The data come from ``run.data_root``; it trains on
    ``run.device`` (another device: ``run.replace(device=...)``). Returns the trained
    ensemble (in eval mode, on that device) and its :class:`History`."""
    device = run.device
    every = members is None or config.shared_module
    members = list(range(config.n_members)) if every else list(members)
    train = data.load(config.dataset, "train", n=config.n_train, root=run.data_root)
    ens = make_ensemble(config, members).to(device)
    streams = _streams(config, members, device)
    opt, sched = make_optimiser(config, ens.parameters())
    order_gen = torch.Generator().manual_seed(config.seed)
    hist = History(device=str(device))
    n_batches = -(-len(train) // config.batch_size)
    bar = progress_bar(
        total=config.epochs * n_batches,
        progress=progress,
        mininterval=1.0,
        desc=f"{config.dataset} x{len(members)}",
    )
    ens.train()
    try:
        for _ in range(config.epochs):
            t0 = time.perf_counter()
            hist.lr.append(float(opt.param_groups[0]["lr"]))
            nll, correct, seen = torch.zeros(len(members)), torch.zeros(len(members)), 0
            batches = data.batches(
                train.images,
                train.labels,
                config.batch_size,
                shuffle=True,
                generator=order_gen,
            )
            if config.augment:
                batches = (
                    (data.random_shift(x, max_shift=2, generator=order_gen), y)
                    for x, y in batches
                )
            for y, _, log_probs in joint_steps(ens, opt, batches, streams, device):
                nll -= (
                    log_probs.gather(-1, y.expand(len(members), -1)[..., None])
                    .sum((1, 2))
                    .cpu()
                )
                correct += (log_probs.argmax(-1) == y).sum(1).cpu()
                seen += y.shape[0]
                bar.update()
            sched.step()
            hist.loss.append((nll / seen).tolist())
            hist.train_accuracy.append((correct / seen).tolist())
            hist.seconds.append(time.perf_counter() - t0)
            bar.set_postfix(loss=f"{sum(hist.loss[-1]):.3f}")
    finally:
        bar.close()
    return ens.eval(), hist


def accuracy(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 1000,
) -> list[float]:
    """Test accuracy of each member: a list of N floats (one for a single model)."""
    lp = predict_log_probs(model, images, batch_size)
    if lp.ndim == 2:
        lp = lp.unsqueeze(0)
    return (lp.argmax(-1) == labels).double().mean(1).tolist()


def time_steps(
    config: TrainConfig,
    n_steps: int = 50,
    *,
    run: Run,
    warmup: int = 5,
) -> float:
    """Seconds per training step of a fresh ensemble for ``config`` (same batches,
    measured now).

    Used to compare the cost of N members with one in the same run; ``warmup``
    steps are run first and not counted.
    """
    if n_steps < 1 or warmup < 0:
        raise ValueError(f"need n_steps >= 1 and warmup >= 0, got {n_steps}, {warmup}")
    device = run.device
    train = data.load(
        config.dataset,
        "train",
        n=(n_steps + warmup) * config.batch_size,
        root=run.data_root,
    )
    ens = make_ensemble(config).to(device).train()
    streams = _streams(config, range(config.n_members), device)
    opt, _ = make_optimiser(config, ens.parameters())
    elapsed = 0.0
    for i, (x, y) in enumerate(
        data.batches(train.images, train.labels, config.batch_size)
    ):
        if i == warmup and device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        joint_step(ens, opt, x.to(device), y.to(device), streams)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            elapsed += time.perf_counter() - t0
    return elapsed / n_steps
