"""Run the original's experiments at its scale, under its protocol and the book's, and
keep the numbers.

    python tools/reproduce.py                             # E1, E2, E3 (the CPU
                                                          # ones), both protocols
    python tools/reproduce.py --only E2 --protocol original  # one experiment, one
                                                             # protocol
    python tools/reproduce.py --only E2bis E4 --device cuda  # the GPU ones

The original's scale is all 60,000 training images for 14 epochs and the full
10,000-image test sets. What each experiment trains and measures is
``ood_utils.replication.experiment_spec``; the networks are trained by the package's one
training loop and cached as usual (``$OOD_CACHE_DIR``), so an interrupted run resumes
from the last network it finished.

Each finished (experiment, protocol) writes ``<out>/<experiment>-<protocol>.json`` (E4:
one ``<out>/E4-<protocol>-<dataset>.json`` per dataset, see ``replication.SCALE_PARTS``)
atomically (an interrupted run leaves no partial file), and is skipped next time unless
``--force``. The file holds the numbers and their provenance: git commit (a tree with
uncommitted changes is refused unless ``--allow-dirty``, which is recorded), date,
hardware, device, threads, library versions, the spec and its hash
(``tests/test_original_scale.py`` fails when the hash is stale), and each training's
wall time. The process restarts itself once with the settings of the book's kernels
(``run_notebooks.kernel_env``: the allocator's, and passive OpenMP threads if the
machine is busy as it starts), which are read at start."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported after the restart with the allocator settings
    import torch

    from ood_utils import replication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import BUSY_ENV, MALLOC_ENV, kernel_env, others_share  # noqa: E402

CPU_EXPERIMENTS = ("E1", "E2", "E3")


def git_state() -> tuple[str, bool]:
    """``(commit, dirty)`` of the repository (tracked files only)."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return commit, bool(status)


def train_or_load(
    name: str, cfg: object, run: object, progress: bool
) -> tuple[torch.nn.Module, dict]:
    """The ensemble of ``cfg``, loaded or trained, and the record of its training.

    Two members at a time: each pair is cached as it finishes, so an interrupted
    ensemble of 8 resumes from its last pair (members train bit for bit as alone)."""
    from ood_utils import cache

    t0 = time.perf_counter()
    for n in range(2, cfg.n_members + 1, 2):
        ens, hist = cache.get_ensemble(
            dataclasses.replace(cfg, n_members=n), run, progress=progress
        )
    if cfg.n_members % 2:
        ens, hist = cache.get_ensemble(cfg, run, progress=progress)
    return ens, {
        "name": name,
        "seconds": round(sum(hist.seconds), 1),
        "wall seconds": round(time.perf_counter() - t0, 1),
        "device": hist.device,
    }


def e1_numbers(
    seed: int,
    twins: torch.nn.Module,
    lp_in: torch.Tensor,
    accuracy: list[float],
    record: replication.Protocol,
    progress: bool,
) -> dict[str, dict[str, float]]:
    """E1's groups for its pair of ``seed`` (``replication.e1_pair_name``) under the
    protocol ``record``: its attacks, its accuracy and, where the protocol has a joint
    grid, the grid, and on its first pair the walk to the other protocol's attack."""
    from ood_utils import replication

    # both references (the ladders change one into the other), the protocol's judges
    refs = {
        name: replication.attack_reference(lp_in, name)
        for name in replication.ATTACK_REFERENCES
    }
    ref, settings = refs[record.attack_reference], record.attacks
    out = {
        replication.e1_pair_name(seed, "attacks"): {
            "reference": ref,
            **replication.attack_numbers(twins, ref, settings, progress=progress),
        },
        replication.e1_pair_name(seed, "accuracy"): {
            f"twin {i + 1}": a for i, a in enumerate(accuracy)
        },
    }
    if record.joint_grid is not None:
        grid = replication.joint_grid_numbers(
            twins, ref, settings, record.joint_grid, progress=progress
        )
        out.update(
            {
                replication.joint_grid_group(seed, lr, steps): v
                for (lr, steps), v in grid.items()
            }
        )
        if seed == record.e1_pair_seeds[0]:
            out.update(e1_scale_ladders(twins, refs, settings, progress))
    return out


def e1_scale_ladders(
    twins: torch.nn.Module,
    refs: dict[str, float],
    settings: replication.AttackSettings,
    progress: bool,
) -> dict[str, dict[str, float]]:
    """The joint attack's walk to the book's attack on these twins
    (``replication.e1_joint_walk``), cumulative and each step alone, one group per
    row; ``refs``: both references of the twins, by name."""
    import functools

    from ood_utils import replication

    @functools.cache
    def measure_items(items: tuple) -> dict[str, float]:
        return replication.joint_rates(
            twins, refs, dict(items), settings.n_restarts, settings.seed
        )

    def measure(factors: dict) -> dict[str, float]:
        return measure_items(tuple(sorted(factors.items())))

    start, steps, end = replication.e1_joint_walk()
    tables = {
        "joint ladder": replication.ladder(start, steps, measure, end, progress),
        "joint alone": replication.one_at_a_time(start, steps, measure),
    }
    return {
        replication.scale_ladder_group(kind, row["change"]): {
            k: v for k, v in row.items() if k not in ("change", "kind")
        }
        for kind, table in tables.items()
        for _, row in table.iterrows()
    }


def e5_numbers(run: object, progress: bool) -> tuple[dict, list[dict]]:
    """E5 at the original's depth: the text twins of ``replication.e5_config()`` on
    chapter 11's texts. Groups: ``ratios`` (the two numbers of the original's figures),
    one per text (chapter 11's per-language table) and ``training loss`` (each 50
    steps, per member)."""
    import math

    from ood_utils import cache, languages, replication

    cfg = replication.e5_config()
    twins, corpus, history = cache.get_text_twins(cfg, run, progress=progress)
    texts, _ = languages.load_texts(corpus, replication.E5_CHARS, root=run.data_root)
    scored = languages.score_texts(twins, corpus.tokenizer, texts)
    table, k95 = languages.language_table(scored)
    ratios = languages.e5_ratios(scored)
    numbers = {
        "ratios": {
            **{k.removeprefix("E5 "): v for k, v in ratios.items()},
            "95th percentile / reference": k95,
        },
        **{
            label: {
                k: None if isinstance(v, float) and math.isnan(v) else float(v)
                for k, v in row.items()
                if k != "group"
            }
            for label, row in table.iterrows()
        },
        "training loss": {
            f"step {50 * i}": loss / cfg.n_members
            for i, loss in enumerate(history.losses)
        },
    }
    trainings = [
        {
            "name": "text twins",
            "seconds": round(history.seconds, 1),
            "device": history.device,
        }
    ]
    return numbers, trainings


def baseline_numbers(
    run: object, protocol: str, progress: bool
) -> tuple[dict, list[dict]]:
    """Chapter 9 at the original's scale: its eleven detectors on E2's twins of
    ``protocol`` (all 60,000 training images, 14 epochs), against its six kinds of OOD
    set, with the full profile's budgets (attacks, noise, MC-dropout passes).

    Groups: one per case, ``replication.baselines_key(direction, OOD set, method)``
    (AUROC, AUPR-IN, AUPR-OUT, FPR@95TPR), and ``replication.BASELINES_SUMMARY``: the
    cases, in how many the twin score is the best, beats MSP, and its median rank."""
    import pandas as pd
    import torch

    from ood_utils import benchmark, data, profiles, replication

    full = run.replace(profile=profiles.get_profile("full"))
    trainings, tables = [], []
    for name, cfg in replication.experiment_trainings("baselines", protocol).items():
        ens, record = train_or_load(name, cfg, full, progress)
        trainings.append(record)
        if cfg.n_members < 2:  # chapter 1's CNN: the fooling images of every set
            continue
        twins, ds = ens.eval(), cfg.dataset
        test = data.load(ds, "test", root=full.data_root)
        sets = benchmark.ood_sets(full, ds, twins[0], test.images, progress=progress)
        dets = benchmark.make_detectors(
            twins, data.load(ds, "train", root=full.data_root), full.profile.mc_samples
        )
        torch.manual_seed(full.seed)  # MC dropout's masks
        table, _ = benchmark.evaluate(dets, twins, test.images, sets, progress=progress)
        tables.append(table.assign(direction=data.direction(ds)))
    long = pd.concat(tables, ignore_index=True)
    summary = benchmark.wins_and_losses(long)
    numbers = {
        replication.baselines_key(*(row[f] for f in replication.BASELINES_FIELDS)): {
            k: float(row[k]) for k in ("AUROC", "AUPR-IN", "AUPR-OUT", "FPR@95TPR")
        }
        for _, row in long.iterrows()
    }
    numbers[replication.BASELINES_SUMMARY] = {
        "cases": float(len(summary)),
        "best": float((summary["twin rank"] == 1).sum()),
        "beats MSP": float((summary["twin max-KL"] > summary["MSP"]).sum()),
        "median rank": float(summary["twin rank"].median()),
        "methods": float(long["method"].nunique()),
    }
    return numbers, trainings


def detection_groups(
    name: str,
    lp_in: torch.Tensor,
    lp_out: torch.Tensor,
    labels: torch.Tensor,
    accuracy: list[float],
    record: replication.Protocol,
    n_members: Sequence[int] | None = None,
) -> dict[str, dict[str, float]]:
    """The groups of one trained ensemble of E2, E2bis, E3 or E4: its detection numbers
    under the protocol's rule and ranking (``record``), with its members' accuracy; or,
    for ``n_members`` (E4: one ensemble of 8 read as 2, 4, 8), one group per size with
    that ensemble's accuracy."""
    from ood_utils import replication

    def numbers(n: int) -> dict[str, float]:
        return replication.detection_numbers(
            lp_in[:n], lp_out[:n], record.rule, record.ranking
        )

    if n_members is None:
        members = {
            replication.member_accuracy_key(i + 1): a for i, a in enumerate(accuracy)
        }
        return {name: {**numbers(len(lp_in)), **members}}
    return {
        replication.ensemble_group(name, n): {
            **numbers(n),
            "ensemble accuracy": float(
                (lp_in[:n].exp().mean(0).argmax(-1) == labels).double().mean()
            ),
        }
        for n in n_members
    }


def run_experiment(
    experiment: str,
    protocol: str,
    device: torch.device,
    progress: bool = True,
    part: str | None = None,
) -> tuple[dict, list[dict]]:
    """Train (or load) the networks of one experiment (of one ``part`` of it, see
    ``replication.SCALE_PARTS``) and measure it: ``(numbers, trainings)``.

    Every choice of the protocol is read from its record (``replication.protocol``),
    the objects ``replication.experiment_spec`` describes. ``numbers`` is ``{group:
    {name: value}}`` (a group per dataset, per ensemble size, or "attacks");
    ``trainings`` lists each network's name, wall time (0 if it was cached) and
    device."""
    import torch

    from ood_utils import data, replication, train
    from ood_utils.models import predict_log_probs
    from ood_utils.run import from_environment

    run = from_environment("reproduce", device=device)
    if experiment == "E5":
        return e5_numbers(run, progress)
    if experiment == "baselines":
        return baseline_numbers(run, protocol, progress)
    record = replication.protocol(protocol)
    trainings, numbers = [], {}
    tests = {
        ds: data.load(ds, "test", root=run.data_root) for ds in replication.DATASETS
    }
    for name, cfg in replication.experiment_trainings(
        experiment, protocol, part
    ).items():
        ens, training = train_or_load(name, cfg, run, progress)
        trainings.append(training)
        test = tests[cfg.dataset]
        lp_in = predict_log_probs(ens, test.images)
        accuracy = train.accuracy(ens, test.images, test.labels)
        if experiment == "E1":
            numbers.update(e1_numbers(cfg.seed, ens, lp_in, accuracy, record, progress))
            continue
        lp_out = predict_log_probs(ens, tests[data.other_dataset(cfg.dataset)].images)
        sizes = (2, 4, 8) if experiment == "E4" else None
        numbers.update(
            detection_groups(name, lp_in, lp_out, test.labels, accuracy, record, sizes)
        )
        del ens
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return numbers, trainings


def result_payload(
    experiment: str,
    protocol: str,
    numbers: dict,
    trainings: list[dict],
    commit: str,
    dirty: bool,
    allow_dirty: bool,
    device: torch.device,
    seconds: float,
    part: str | None = None,
) -> dict:
    """The JSON object of one result: numbers, provenance, spec and its hash,
    trainings."""
    import torch
    import torchvision

    from ood_utils import replication
    from ood_utils import run as run_context

    spec = replication.experiment_spec(experiment, protocol, part)
    return {
        "experiment": experiment,
        "protocol": protocol,
        **({"part": part} if part is not None else {}),
        "numbers": numbers,
        "provenance": {
            "commit": commit,
            "dirty": dirty,
            "allow_dirty": allow_dirty,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "hardware": run_context.hardware(device),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
            "allocator": {k: os.environ.get(k) for k in {**MALLOC_ENV, **BUSY_ENV}},
        },
        "spec": spec,
        "spec_hash": replication.spec_hash(spec),
        "trainings": trainings,
        "seconds": round(seconds, 1),
    }


def write_result(path: Path, payload: dict) -> None:
    from ood_utils.cache import atomic_write

    atomic_write(
        path,
        lambda fh: fh.write(
            (json.dumps(payload, indent=1, default=float) + "\n").encode()
        ),
    )


def arguments() -> argparse.ArgumentParser:
    """The command line (the README's commands are parsed with it in the tests)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="E",
        help="experiments (default: E1 E2 E3)",
    )
    parser.add_argument(
        "--protocol", choices=["original", "book", "both"], default="both"
    )
    parser.add_argument(
        "--device", help="cpu or cuda (default: $OOD_DEVICE, else CUDA when present)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "original-scale")
    parser.add_argument(
        "--force", action="store_true", help="rerun experiments whose file exists"
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes (recorded in the files)",
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main() -> int:
    parser = arguments()
    args = parser.parse_args()

    missing_env = {
        k: v for k, v in kernel_env(others_share()).items() if k not in os.environ
    }
    # read at start: restart once with them
    if missing_env and not os.environ.get("OOD_REPRODUCE_RESTARTED"):
        missing_env["OOD_REPRODUCE_RESTARTED"] = "1"
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, **missing_env}
        )

    from ood_utils import replication
    from ood_utils.run import from_environment

    experiments = args.only or list(CPU_EXPERIMENTS)
    unknown = [e for e in experiments if e not in replication.SCALE_EXPERIMENTS]
    if unknown:
        parser.error(
            f"unknown experiments {unknown}: choose from "
            f"{replication.SCALE_EXPERIMENTS}"
        )
    protocols = (
        list(replication.PROTOCOLS) if args.protocol == "both" else [args.protocol]
    )
    commit, dirty = git_state()
    if dirty and not args.allow_dirty:
        parser.error(
            "the tree has uncommitted changes: commit them, or pass --allow-dirty "
            "(recorded in every file this run writes)"
        )
    device = from_environment(
        "reproduce", **({"device": args.device} if args.device else {})
    ).device
    asked = [
        (e, p, part)
        for e in experiments
        for p in protocols
        if p in replication.SCALE_PROTOCOLS[e]
        for part in replication.experiment_parts(e)
    ]
    todo = [
        (e, p, part)
        for e, p, part in asked
        if args.force or not replication.result_path(e, p, args.out, part).exists()
    ]
    skipped = len(asked) - len(todo)
    print(
        f"{len(todo)} to run, {skipped} already done (--force reruns them); device "
        f"{device}, commit {commit[:7]}{' (dirty)' if dirty else ''}",
        flush=True,
    )
    started = time.perf_counter()
    for k, (experiment, protocol, part) in enumerate(todo):
        t0 = time.perf_counter()
        on = f" on {part}" if part else ""
        print(
            f"[{k + 1}/{len(todo)}] {experiment}, {protocol}'s protocol{on}", flush=True
        )
        numbers, trainings = run_experiment(
            experiment, protocol, device, progress=not args.no_progress, part=part
        )
        payload = result_payload(
            experiment,
            protocol,
            numbers,
            trainings,
            commit,
            dirty,
            args.allow_dirty,
            device,
            time.perf_counter() - t0,
            part,
        )
        path = replication.result_path(experiment, protocol, args.out, part)
        write_result(path, payload)
        done, left = time.perf_counter() - started, len(todo) - k - 1
        eta = f"; about {done / (k + 1) * left / 60:.0f} min left" if left else ""
        print(f"wrote {path} after {payload['seconds'] / 60:.1f} min{eta}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
