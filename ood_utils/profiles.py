"""Compute profiles: how much a chapter spends, from "a laptop CPU in minutes" to the
original's.

A :class:`Profile` holds compute budgets only (images, epochs, restarts, passes); what a
chapter trains or measures lives with that chapter's code. The run context
(:func:`ood_utils.book.setup`) picks the profile a chapter runs under.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How much one training sees: ``n_train`` images (``None`` = all 60,000) for
    ``epochs``."""

    n_train: int | None
    epochs: int


@dataclass(frozen=True)
class AttackBudget:
    """What an attack spends: random ``restarts`` of ``steps`` optimisation steps each,
    and ``ladder_restarts`` restarts of each attack in the ladders from the original's
    protocol to the book's (the chapters' first ones; the original ran 100)."""

    restarts: int = 100
    steps: int = 300
    ladder_restarts: int = 100


@dataclass(frozen=True)
class Profile:
    """How much compute a chapter spends: its training budgets, test images, attack
    restarts and steps, noise images and MC-dropout passes (each documented below)."""

    #: ``"fast"`` or ``"full"``.
    name: str
    #: The training budget of a chapter's networks.
    main: Budget
    #: The budget of chapters that train many ensembles, or a network that costs more
    #: per image (ResNet-18).
    sweep: Budget
    #: Test images per dataset used for evaluation (``None`` = all 10,000).
    n_test: int | None
    #: Training batch size (PyTorch's MNIST example uses 64).
    batch_size: int = 64
    #: What the attacks spend.
    attack: AttackBudget = AttackBudget()
    #: Uniform-noise images used as an out-of-distribution set.
    n_noise: int = 1000
    #: Stochastic forward passes of MC dropout (chapter 9).
    mc_samples: int = 5

    @property
    def n_train(self) -> int | None:
        """The main budget's training images."""
        return self.main.n_train

    @property
    def epochs(self) -> int:
        """The main budget's epochs."""
        return self.main.epochs

    def budget(self, name: str) -> Budget:
        """The budget called ``"main"`` or ``"sweep"``."""
        if name not in ("main", "sweep"):
            raise ValueError(f"budget must be 'main' or 'sweep', got {name!r}")
        return self.main if name == "main" else self.sweep

    def replace(self, **changes: object) -> Profile:
        """A copy with some fields changed (``main=Budget(500, 1)`` for a quick
        test)."""
        return dataclasses.replace(self, **changes)


#: The original's training budget: all 60,000 images for 14 epochs (PyTorch's MNIST
#: example), the full profile's.
ORIGINAL_BUDGET = Budget(None, 14)

PROFILES: dict[str, Profile] = {
    # A chapter in a few minutes on 2 CPU cores.
    "fast": Profile(
        name="fast",
        main=Budget(10_000, 3),
        sweep=Budget(4_000, 2),
        n_test=2_000,
        attack=AttackBudget(ladder_restarts=20),
    ),
    # The original experiments.
    "full": Profile(
        name="full",
        main=ORIGINAL_BUDGET,
        sweep=ORIGINAL_BUDGET,
        n_test=None,
        attack=AttackBudget(steps=1000),
        n_noise=10_000,
        mc_samples=30,
    ),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (a :class:`Profile` is returned as it is).

    Raises:
        ValueError: the name is not one of :data:`PROFILES`.
    """
    if isinstance(name, Profile):
        return name
    key = str(name).strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}: expected one of {sorted(PROFILES)}"
        )
    return PROFILES[key]
