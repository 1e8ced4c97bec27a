"""What ``tools/reproduce.py`` runs at the original's scale (all 60,000 training
images, 14 epochs, the full test sets): each experiment's trainings, its spec (every
choice that determines its result, read from the protocols' records) and the spec's
hash, and the names under which its numbers are kept."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping

from .. import languages, text
from ..configs import config_fields
from ..train import FORMAT_VERSION, TrainConfig
from .ladders import e1_joint_walk
from .protocols import (
    ATTACK_REFERENCES,
    EXPERIMENTS,
    PROTOCOLS,
    Protocol,
    experiment_config,
    protocol,
)

#: What ``tools/reproduce.py`` runs at the original's scale: the image experiments and
#: the text one, E5, under the original's protocol only (its depth, 6 layers; the
#: book's text twins are chapter 11's).
SCALE_EXPERIMENTS = (*EXPERIMENTS, "E5", "baselines")

SCALE_PROTOCOLS = {
    **{e: PROTOCOLS for e in EXPERIMENTS},
    "E5": ("original",),
    # chapter 9's detectors on E2's twins of either protocol
    "baselines": PROTOCOLS,
}

#: Bumped when what an experiment measures changes (its numbers, or how they
#: are computed).
SPEC_VERSION = 1

#: The two datasets, in the original's order.
DATASETS = ("mnist", "fashionmnist")

#: The experiments kept one file per part (one per dataset), so that a long run is kept
#: piece by piece: E4's ensemble of 8 takes about 1.5 hours per dataset on 2 CPU cores.
#: :func:`load_results` reads an experiment's parts back as one result.
SCALE_PARTS: dict[str, tuple[str, ...]] = {"E4": DATASETS}


def experiment_parts(experiment: str) -> tuple[str | None, ...]:
    """The parts ``experiment`` is written in (:data:`SCALE_PARTS`); ``(None,)`` for
    one written whole."""
    return SCALE_PARTS.get(experiment, (None,))


#: The kinds of E1 ladder ``tools/reproduce.py`` runs at the original's scale.
SCALE_LADDERS = ("joint ladder", "joint alone")


def scale_ladder_group(kind: str, change: str) -> str:
    """The group of one row of an E1 ladder at the original's scale
    (:data:`SCALE_LADDERS`)."""
    return f"{kind}: {change}"


def ensemble_group(dataset: str, n: int) -> str:
    """The group of E4's ensemble of the first ``n`` members trained on ``dataset``:
    ``"mnist N=8"``."""
    return f"{dataset} N={n}"


def e1_pair_name(seed: int, kind: str = "twins") -> str:
    """The names of E1's pair of ``seed``: its training (``kind="twins"``), and the
    groups of its numbers (``"attacks"``, ``"accuracy"``): ``"twins"`` for the first
    pair, ``"twins, seed 10"`` for the others. Its grid's groups are
    :func:`joint_grid_group`'s."""
    first = protocol("original").e1_pair_seeds[0]
    return kind if seed == first else f"{kind}, seed {seed}"


def joint_grid_group(seed: int, lr: float, steps: int) -> str:
    """The group of one setting of the joint attack's grid on E1's pair of ``seed``."""
    return f"joint grid, seed {seed}, lr {lr:g}, {int(steps)} steps"


def e5_config() -> text.TextConfig:
    """E5's text twins at the original's depth: "a simple transformer (6 layers deep)"
    trained on one English book (the original gives no width, context or steps).

    Chapter 11's twins made three times deeper and a third wider (width 128, 4 heads,
    a context of 64 characters, batches of 16), trained for 12,000 steps: a step costs
    about 2.6 times the fast profile's (a probe on 2 CPU cores), so the run should take
    well under 45 minutes. The training loss each 50 steps is kept with the result, so
    whether it reached a plateau can be read off it."""
    return text.TextConfig(
        context=64, d_model=128, n_layers=6, n_heads=4, steps=12_000, batch_size=16
    )


#: The characters of each text E5 scores at the original's depth (chapter 11's
#: full-profile length).
E5_CHARS = text.PROFILE_SETTINGS["full"].chars


def experiment_trainings(
    experiment: str, protocol_name: str, part: str | None = None
) -> dict[str, TrainConfig]:
    """The networks an experiment trains at the original's scale (60,000 images, 14
    epochs); those of one ``part`` (:data:`SCALE_PARTS`: a dataset of E4) if given.

    ``{name: config}``: for E1 a pair per seed of the protocol's
    :attr:`Protocol.e1_pair_seeds` (:func:`e1_pair_name`); one pair per dataset
    (``"mnist"``, ``"fashionmnist"``) for E2, E2bis and E3; for E4 one ensemble of 8
    per dataset, read as N = 2, 4 and 8, under both protocols. The original trained a
    separate ensemble for each N; its members share no parameters, see the same
    batches and draw their own dropout streams, so the first N of 8 are distributed
    like an ensemble of N, at less than half the cost (8 networks per dataset, not
    14). What it changes: the three estimates share members, so they are not
    independent.

    Raises:
        ValueError: for a ``part`` the experiment is not written in."""
    if part is not None:
        if part not in SCALE_PARTS.get(experiment, ()):
            raise ValueError(
                f"{experiment} has no part {part!r}: expected one of "
                f"{SCALE_PARTS.get(experiment, ())}"
            )
        return {part: experiment_trainings(experiment, protocol_name)[part]}
    if experiment == "E1":
        return {
            e1_pair_name(seed): experiment_config(
                "E1", protocol_name, budget="original", seed=seed
            )
            for seed in protocol(protocol_name).e1_pair_seeds
        }
    if experiment == "E4":
        return {
            ds: experiment_config(
                "E4", protocol_name, dataset=ds, n_members=8, budget="original"
            )
            for ds in DATASETS
        }
    if experiment == "baselines":  # its fooling images first, then E2's twins
        chapter1 = TrainConfig.from_profile("full", dataset="mnist", n_members=1)
        trainings = experiment_trainings("E2", protocol_name)
        return {"chapter 1's CNN": chapter1, **trainings}
    return {
        ds: experiment_config(experiment, protocol_name, dataset=ds, budget="original")
        for ds in DATASETS
    }


def _attack_spec(record: Protocol) -> dict[str, object]:
    """E1's evaluation under ``record``: its attacks, the reference they are judged
    against and, where the protocol has them, the joint attack's grid and the walk to
    the book's attack."""
    spec: dict[str, object] = {"attacks": dataclasses.asdict(record.attacks)}
    if record.joint_grid is not None:
        spec["joint attack grid"] = {k: list(v) for k, v in record.joint_grid.items()}
        _, walk, _ = e1_joint_walk()
        spec["joint ladder at scale"] = {
            "kinds": list(SCALE_LADDERS),
            "steps": [dataclasses.asdict(step) for step in walk],
        }
    spec["reference"] = ATTACK_REFERENCES[record.attack_reference]
    return spec


def _baselines_spec() -> dict[str, object]:
    """Chapter 9's evaluation: its detectors and OOD sets with the full profile's
    budgets."""
    from ..benchmark import detector_needs
    from ..profiles import get_profile

    full = get_profile("full")
    return {
        "detectors": list(detector_needs(full.mc_samples)),
        "sets": "benchmark.ood_sets with the full profile's budgets",
        "profile": dataclasses.asdict(full),
    }


def experiment_spec(
    experiment: str, protocol_name: str, part: str | None = None
) -> dict[str, object]:
    """Everything that determines an original-scale result (of one ``part``, see
    :data:`SCALE_PARTS`): its trainings and its evaluation, the protocol's choices read
    from its record (:data:`~ood_utils.replication.protocols.RECORDS`), the same objects
    ``tools/reproduce.py`` runs with.

    The trainings are given by their non-default fields
    (:func:`ood_utils.configs.config_fields`) and the training code's format version, so
    that the hash (:func:`spec_hash`) changes when the code would train or measure
    something else, and not otherwise."""
    head: dict[str, object] = {
        "experiment": experiment,
        "protocol": protocol_name,
        "version": SPEC_VERSION,
        **({"part": part} if part is not None else {}),
    }
    if experiment == "E5":
        return {
            **head,
            "text format": text.TEXT_FORMAT_VERSION,
            "trainings": {"text twins": config_fields(e5_config())},
            "texts": {"sources": languages.SOURCES, "characters": E5_CHARS},
        }
    trainings = experiment_trainings(experiment, protocol_name, part)
    spec: dict[str, object] = {
        **head,
        "training format": FORMAT_VERSION,
        "trainings": {name: config_fields(cfg) for name, cfg in trainings.items()},
        "test sets": "all 10,000 test images of each dataset",
    }
    record = protocol(protocol_name)
    if experiment == "baselines":
        return {**spec, **_baselines_spec()}
    if experiment == "E1":
        return {**spec, **_attack_spec(record)}
    rule = dataclasses.asdict(record.rule)
    return {**spec, "rule": rule, "ranking": record.ranking}


def spec_hash(spec: Mapping[str, object]) -> str:
    """A short hash of an experiment's :func:`experiment_spec`."""
    return hashlib.sha256(
        json.dumps(spec, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
