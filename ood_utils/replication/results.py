"""The original-scale result files (``results/original-scale``, written by
``tools/reproduce.py``): validated on load and checked for staleness against the current
spec, merged from their parts, and read back as a claim's numbers, a ladder or a
chapter's table."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..run import ORIGINAL_SCALE_FOLDER
from .claims import claim
from .ladders import e1_joint_walk
from .measure import JOINT_METRICS
from .protocols import PROTOCOLS, protocol
from .spec import (
    DATASETS,
    SCALE_LADDERS,
    SCALE_PROTOCOLS,
    e1_pair_name,
    experiment_parts,
    experiment_spec,
    joint_grid_group,
    scale_ladder_group,
    spec_hash,
)

#: Where a claim without a group has its number in a result: E1's attacks, E5's ratios.
SCALE_GROUPS = {"E1": "attacks", "E5": "ratios"}

#: The fields every original-scale result file has (``provenance`` with its own fields).
RESULT_FIELDS = (
    "experiment",
    "protocol",
    "numbers",
    "provenance",
    "spec",
    "spec_hash",
    "trainings",
)


PROVENANCE_FIELDS = (
    "commit",
    "dirty",
    "allow_dirty",
    "date",
    "hardware",
    "device",
    "threads",
    "torch",
    "torchvision",
    "python",
)


def result_path(
    experiment: str, protocol: str, folder: Path, part: str | None = None
) -> Path:
    """The file of one original-scale result:
    ``<folder>/<experiment>-<protocol>.json``, or
    ``<experiment>-<protocol>-<part>.json`` for one part of it (:data:`SCALE_PARTS`)."""
    tail = f"-{part}" if part is not None else ""
    return Path(folder) / f"{experiment}-{protocol}{tail}.json"


def load_result(path: Path) -> dict[str, object]:
    """One original-scale result, validated, with ``stale`` set (its spec is not the
    current code's).

    Raises:
        ValueError: naming the file and the field that is missing or malformed.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(payload, dict):
        raise ValueError(
            f"{path}: expected a JSON object, got {type(payload).__name__}"
        )
    missing = [f for f in RESULT_FIELDS if f not in payload]
    if missing:
        raise ValueError(f"{path}: missing fields {missing}")
    prov = payload["provenance"]
    if not isinstance(prov, dict) or [f for f in PROVENANCE_FIELDS if f not in prov]:
        raise ValueError(f"{path}: provenance must hold {list(PROVENANCE_FIELDS)}")
    if payload["protocol"] not in SCALE_PROTOCOLS.get(payload["experiment"], ()):
        raise ValueError(
            f"{path}: unknown experiment or protocol {payload['experiment']!r}, "
            f"{payload['protocol']!r}"
        )
    part = payload.get("part")
    if part not in experiment_parts(payload["experiment"]):
        raise ValueError(
            f"{path}: {payload['experiment']} is written in the parts "
            f"{experiment_parts(payload['experiment'])}, not {part!r}"
        )
    where = (payload["experiment"], payload["protocol"], path.parent, part)
    if path.name != result_path(*where).name:
        raise ValueError(
            f"{path}: holds {payload['experiment']} / {payload['protocol']}"
            f"{f' / {part}' if part else ''}, not what its name says"
        )
    numbers = payload["numbers"]
    if not isinstance(numbers, dict) or not all(
        isinstance(v, dict)
        and all(isinstance(x, (int, float)) or x is None for x in v.values())
        for v in numbers.values()
    ):
        raise ValueError(f"{path}: numbers must be {{group: {{name: number}}}}")
    current = spec_hash(
        experiment_spec(payload["experiment"], payload["protocol"], part)
    )
    return {
        **payload,
        "part": part,
        "stale": payload["spec_hash"] != current,
        "path": str(path),
    }


def load_results(folder: Path | str) -> dict[tuple[str, str], dict[str, object]]:
    """Every original-scale result in ``folder`` (a chapter's
    ``run.original_scale_dir``: the repository's ``results/original-scale``, absent when
    the package was installed without the repository, as in Colab): ``{(experiment,
    protocol): payload}``; empty if there are none. An experiment kept in parts
    (:data:`SCALE_PARTS`) is one payload, from :func:`merge_parts`, of the parts
    present."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    found: dict[tuple[str, str], list[dict[str, object]]] = {}
    for path in sorted(folder.glob("*.json")):
        payload = load_result(path)
        found.setdefault((payload["experiment"], payload["protocol"]), []).append(
            payload
        )
    return {
        key: parts[0] if parts[0]["part"] is None else merge_parts(parts)
        for key, parts in found.items()
    }


def merge_parts(parts: list[Mapping[str, object]]) -> dict[str, object]:
    """The part files of one experiment and protocol (:func:`load_result`'s payloads)
    as one result: their numbers and trainings together, stale if any is, each kept
    under ``"parts"`` in the experiment's order of parts (whose provenance
    :func:`original_scale_note` lists one by one)."""
    order = experiment_parts(str(parts[0]["experiment"]))
    parts = sorted(parts, key=lambda p: order.index(p["part"]))
    return {
        **parts[0],
        "part": None,
        "numbers": {k: v for p in parts for k, v in p["numbers"].items()},
        "trainings": [t for p in parts for t in p["trainings"]],
        "stale": any(p["stale"] for p in parts),
        "parts": parts,
    }


def provenance_line(payload: Mapping[str, object]) -> str:
    """One line: where and when a result was computed, and how long its training
    took."""
    prov = payload["provenance"]
    minutes = sum(t["seconds"] for t in payload["trainings"]) / 60
    dirty = " (uncommitted changes)" if prov["dirty"] else ""
    stale = (
        "; **stale**: the current code would compute it differently"
        if payload.get("stale")
        else ""
    )
    part = f" ({payload['part']})" if payload.get("part") else ""
    return (
        f"{payload['experiment']}{part}, {payload['protocol']}'s protocol: "
        f"{_scale_words(payload)}, on {prov['hardware']} ({prov['device']}, "
        f"{prov['threads']} threads), "
        f"{prov['date']}, commit {str(prov['commit'])[:7]}{dirty}; training took "
        f"{minutes:.0f} min{stale}"
    )


def _scale_words(payload: Mapping[str, object]) -> str:
    """The scale of an original-scale result in words: the text twins' depth, width
    and steps for E5, the images and epochs otherwise."""
    text_twins = payload.get("spec", {}).get("trainings", {}).get("text twins")
    if text_twins:
        return (
            f"{text_twins['n_layers']} layer{'s' * (text_twins['n_layers'] != 1)} of "
            f"width {text_twins['d_model']}, "
            f"{text_twins['steps']:,} steps"
        )
    return "60,000 images, 14 epochs"


def member_accuracy_key(member: int) -> str:
    """The key of member ``member``'s (1-based) test accuracy in a group of an
    original-scale result, as ``tools/reproduce.py`` writes it."""
    return f"accuracy, member {member}"


def member_accuracies(row: Mapping[str, float]) -> list[float]:
    """The members' test accuracies in one group of an original-scale result, in
    member order (``[]`` when the group records none)."""
    accuracies, member = [], 1
    while member_accuracy_key(member) in row:
        accuracies.append(row[member_accuracy_key(member)])
        member += 1
    return accuracies


#: The fields of one case of an original-scale ``baselines`` result.
BASELINES_FIELDS = ("direction", "OOD set", "method")

#: The group of a ``baselines`` result that sums up the twin score's ranks over the
#: cases (named after the method).
BASELINES_SUMMARY = "twin max-KL"


def baselines_key(direction: str, ood_set: str, method: str) -> str:
    """The group of one case in an original-scale ``baselines`` result, as
    ``tools/reproduce.py`` writes it: ``"MNIST -> FashionMNIST, uniform noise,
    MSP"``."""
    return f"{direction}, {ood_set}, {method}"


def baselines_cases() -> dict[str, tuple[str, str, str]]:
    """Every case chapter 9 can measure, ``{baselines_key(*case): case}``, each case
    ``(direction, OOD set, method)`` of :data:`BASELINES_FIELDS`."""
    from .. import benchmark, data

    return {
        baselines_key(*case): case
        for name in DATASETS
        for case in itertools.product(
            [data.direction(name)], benchmark.set_names(name), benchmark.METHODS
        )
    }


def baselines_metrics(payload: Mapping[str, object]) -> pd.DataFrame:
    """Chapter 9's long table from an original-scale ``baselines`` result: one row per
    (direction, OOD set, method) with its AUROC, AUPR-IN, AUPR-OUT and FPR@95TPR, in the
    file's order, as :func:`ood_utils.benchmark.wins_and_losses` reads it. A case's
    fields are looked up from its key (:func:`baselines_cases`); a key that names no
    case is refused."""
    cases = baselines_cases()
    groups = {k: v for k, v in payload["numbers"].items() if k != BASELINES_SUMMARY}
    if unknown := [k for k in groups if k not in cases]:
        raise ValueError(
            f"the baselines result has groups that name no case of chapter 9: {unknown}"
        )
    return pd.DataFrame(
        [{**dict(zip(BASELINES_FIELDS, cases[k])), **v} for k, v in groups.items()]
    )


def original_scale_value(
    results: Mapping[tuple[str, str], Mapping[str, object]], key: str, protocol: str
) -> float | None:
    """This book's number for claim ``key`` at the original's scale under ``protocol``,
    from :func:`load_results`; ``None`` when that experiment has no result (or no such
    number). A claim's number is in its group (:attr:`Claim.group`, else
    :data:`SCALE_GROUPS`); an accuracy claim takes the lower of the members'."""
    c = claim(key)
    payload = results.get((c.experiment, protocol))
    if payload is None:
        return None
    row = payload["numbers"].get(c.group or SCALE_GROUPS[c.experiment])
    if row is None:
        return None
    if c.metric == "accuracy":
        members = member_accuracies(row)
        return min(members) if members else None
    return row.get(c.metric)


def original_scale_values(
    results: Mapping[tuple[str, str], Mapping[str, object]],
    key: str,
    protocol_name: str,
) -> list[float]:
    """Every number of claim ``key`` at the original's scale under ``protocol``.

    For an E1 attack claim: each pair's (the protocol's
    :attr:`~ood_utils.replication.protocols.Protocol.e1_pair_seeds`) at its own
    settings and, for the joint attack's two claims, each setting of its
    :attr:`~ood_utils.replication.protocols.Protocol.joint_grid`; otherwise the one
    :func:`original_scale_value`. Empty when there is none."""
    value = original_scale_value(results, key, protocol_name)
    c = claim(key)
    payload = results.get((c.experiment, protocol_name))
    if c.experiment != "E1" or payload is None or c.metric == "reference":
        return [] if value is None else [value]
    record = protocol(protocol_name)
    groups = [e1_pair_name(seed, "attacks") for seed in record.e1_pair_seeds]
    if c.metric in JOINT_METRICS and record.joint_grid is not None:
        groups += [
            joint_grid_group(seed, lr, steps)
            for seed in record.e1_pair_seeds
            for lr in record.joint_grid["lr"]
            for steps in record.joint_grid["steps"]
        ]
    found = [payload["numbers"].get(g, {}).get(c.metric) for g in groups]
    return [v for v in found if v is not None]


def scale_ladder(
    results: Mapping[tuple[str, str], Mapping[str, object]], kind: str = "joint ladder"
) -> pd.DataFrame | None:
    """An E1 ladder run at the original's scale (``"joint ladder"``: cumulative,
    ``"joint alone"``: each step alone), as a :func:`ladder` table; ``None`` without it.

    The cumulative one ends on the original's twins under the book's attack; where the
    book's protocol ran at that scale too, a last row ``"the book's twins (network and
    training)"`` carries its numbers, the one step no attack can take."""
    if kind not in SCALE_LADDERS:
        raise ValueError(f"unknown ladder {kind!r}: expected one of {SCALE_LADDERS}")
    payload = results.get(("E1", "original"))
    if payload is None:
        return None
    numbers = payload["numbers"]
    start, steps, _ = e1_joint_walk()
    changes = [("the original's protocol", "")] + [(s.change, s.kind) for s in steps]
    rows = []
    for change, step_kind in changes:
        group = numbers.get(scale_ladder_group(kind, change))
        if group is None:
            return None
        rows.append({"change": change, "kind": step_kind, **group})
    book = results.get(("E1", "book"))
    if kind == "joint ladder" and book is not None:
        attacks_book = book["numbers"].get("attacks", {})
        rows.append(
            {
                "change": "the book's twins (network and training)",
                "kind": "choice",
                **{
                    m: attacks_book.get(m)
                    for m in rows[0]
                    if m not in ("change", "kind")
                },
            }
        )
    return pd.DataFrame(rows).rename_axis("row")


def original_scale_table(
    results: Mapping[tuple[str, str], Mapping[str, object]],
    experiment: str,
    metrics_shown: Sequence[str],
    groups: Sequence[str] | None = None,
) -> pd.DataFrame | None:
    """The original-scale numbers of ``experiment`` under both protocols, for a chapter.

    Rows ``(protocol, group)`` (a group per dataset, per ensemble size, or
    ``"attacks"``; only ``groups`` if given), columns ``metrics_shown`` (missing ones
    are left empty); ``None`` if neither protocol has a result (a fresh fork, or Colab:
    the chapters then say so).
    """
    rows = {}
    for p in PROTOCOLS:
        payload = results.get((experiment, p))
        if payload is None:
            continue
        for group, values in payload["numbers"].items():
            if groups is not None and group not in groups:
                continue
            if any(m in values for m in metrics_shown):
                rows[p, group] = {m: values.get(m) for m in metrics_shown}
    if not rows:
        return None
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["p", "group"])


def joint_grid_table(
    results: Mapping[tuple[str, str], Mapping[str, object]],
    metric: str = "joint attack, no confidence",
) -> pd.DataFrame | None:
    """E1's joint attack at the original's scale, under the original's protocol, over
    its :attr:`~ood_utils.replication.protocols.Protocol.joint_grid`: rows ``(lr,
    steps)``, one column per pair's seed, values ``metric``'s share; ``None`` without
    that result."""
    payload, record = results.get(("E1", "original")), protocol("original")
    if payload is None or record.joint_grid is None:
        return None
    numbers = payload["numbers"]
    rows = {
        (f"{lr:g}", steps): {
            f"pair, seed {seed}": numbers.get(
                joint_grid_group(seed, lr, steps), {}
            ).get(metric)
            for seed in record.e1_pair_seeds
        }
        for lr in record.joint_grid["lr"]
        for steps in record.joint_grid["steps"]
    }
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis(["lr", "steps"])
    return None if table.isna().all().all() else table


def missing_parts(
    results: Mapping[tuple[str, str], Mapping[str, object]], experiment: str
) -> list[tuple[str, str | None]]:
    """The ``(protocol, part)`` of ``experiment`` that :func:`load_results` has no file
    for (``part`` is ``None`` for an experiment written whole)."""
    missing = []
    for p in SCALE_PROTOCOLS[experiment]:
        payload = results.get((experiment, p), {})
        present = [
            q["part"] for q in payload.get("parts", [payload] if payload else [])
        ]
        missing += [
            (p, part) for part in experiment_parts(experiment) if part not in present
        ]
    return missing


def original_scale_note(
    results: Mapping[tuple[str, str], Mapping[str, object]], experiment: str
) -> str:
    """Markdown: the provenance of ``experiment``'s original-scale results, or that
    there are none."""
    lines = [
        f"- {provenance_line(part)}"
        for p in PROTOCOLS
        if (experiment, p) in results
        for part in results[experiment, p].get("parts", [results[experiment, p]])
    ]
    if not lines:
        return (
            f"No original-scale results for {experiment} are present in this copy of "
            f"the book: `python tools/reproduce.py --only {experiment}` computes them "
            f"(all 60,000 images, 14 epochs) into `{ORIGINAL_SCALE_FOLDER}`."
        )
    missing = [
        f"the {p}'s protocol" + (f" on {part}" if part else "")
        for p, part in missing_parts(results, experiment)
    ]
    tail = f"\n- not run yet: {', '.join(missing)}" if missing else ""
    return "At the original's scale (`tools/reproduce.py`):\n" + "\n".join(lines) + tail
