"""Small helpers for the chapters: the setup line, sentences whose numbers come from the
run, and a record of each chapter's key results for the book's results tables."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from IPython.display import Markdown, display

from . import run as run_context
from .cache import atomic_write
from .profiles import ORIGINAL_BUDGET, Profile
from .run import Run

if TYPE_CHECKING:
    import pandas

__all__ = ["load_results", "record", "say", "scale_note", "setup"]

Number = float | int


def setup(
    chapter: str,
    seed: int = 0,
    environ: Mapping[str, str] | None = None,
    **overrides: object,
) -> Run:
    """A chapter's first line: every generator seeded with ``seed``, the run context
    read from the environment once (:func:`ood_utils.run.from_environment`; ``environ``
    defaults to ``os.environ``), and a line saying what it runs with.

    ``overrides`` set fields of the :class:`~ood_utils.run.Run` (``profile="full"``,
    ``device="cpu"``). Example::

        run = book.setup("02_twin_training")  # run.profile, run.device, ...
    """
    run_context.seed_everything(seed)
    run = run_context.from_environment(chapter, environ, seed=seed, **overrides)
    print(
        f"profile: {run.profile.name} | device: {run.device} | torch "
        f"{torch.__version__}"
    )
    return run


def say(text: str) -> None:
    """Display ``text`` as Markdown in the notebook (and on the website).

    Use it with an f-string so every number in a sentence is computed, never typed::

        say(f"The CNN classifies **{acc:.1%}** of the test digits correctly.")
    """
    display(Markdown(text))


def scale_note(profile: Profile, budgets: tuple[str, ...] = ("main",)) -> str:
    """One sentence saying at which scale a chapter's conclusions were drawn, and what
    would settle them.

    Args:
        profile: the chapter's profile (``run.profile``).
        budgets: the training budgets the chapter used: ``"main"`` and/or ``"sweep"``.

    Example: "Measured in the fast profile: 10,000 training images for 3 epochs (4,000
    for 2 where many networks are trained), not all 60,000 for 14 as the full profile
    does; where a claim was also run at that scale, the book follows that run." """
    prof = profile

    def words(n: int | None, epochs: int) -> str:
        images = "all 60,000" if n is None else f"{n:,}"
        return f"{images} training images for {epochs} epoch{'s' * (epochs != 1)}"

    parts = []
    if "main" in budgets:
        parts.append(words(prof.n_train, prof.epochs))
    if "sweep" in budgets:
        sweep = words(prof.sweep.n_train, prof.sweep.epochs)
        parts.append(f"({sweep} where many networks are trained)" if parts else sweep)
    if not parts:
        raise ValueError(f"budgets must name 'main' and/or 'sweep', got {budgets!r}")
    used = [prof.budget(b) for b in ("main", "sweep") if b in budgets]
    if all(b == ORIGINAL_BUDGET for b in used):
        return f"Measured in the {prof.name} profile, at full scale: {' '.join(parts)}."
    return (
        f"Measured in the {prof.name} profile: {' '.join(parts)}, not all 60,000 for "
        f"{ORIGINAL_BUDGET.epochs} as the full profile does; where a claim was also "
        "run at that scale, the book follows that run."
    )


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def record(
    run: Run,
    results: dict[str, Number | tuple[Number, Number | str | None]],
    tables: dict[str, pandas.DataFrame] | None = None,
    claims: dict[str, dict[str, object]] | None = None,
) -> Path:
    """Save a chapter's key numbers, with the original's value where there is one.

    Args:
        run: the chapter's run context (:func:`setup`): its chapter name, profile, seed
            and device are recorded; one JSON file per chapter and profile.
        results: ``{name: value}`` or ``{name: (value, original)}``.
        tables: optional ``{name: DataFrame}`` saved as lists of row records (read them
            back with :func:`load_results` and
            ``pandas.DataFrame(payload["tables"][name])``).
        claims: optional ``{claim key: row}`` of
            :func:`ood_utils.replication.claim_record`: this chapter's numbers for the
            original's claims, which the Replication page collects.

    Returns:
        The JSON file written: ``<run.results_dir>/<profile>/<chapter>.json``, with the
        profile, seed, device and hardware, library versions and the time of the run.
    """
    if not results:
        raise ValueError("results is empty")
    chapter, profile, device = run.chapter, run.profile.name, run.device
    rows = {}
    for name, item in results.items():
        value, original = item if isinstance(item, tuple) else (item, None)
        rows[name] = {"value": float(value), "original": original}
    payload = {
        "chapter": chapter,
        "profile": profile,
        "seed": run.seed,
        "device": str(device),
        "hardware": run_context.hardware(device),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "results": rows,
    }
    if tables:
        payload["tables"] = {
            name: json.loads(df.to_json(orient="records"))
            for name, df in tables.items()
        }
    if claims:
        from .replication import claim

        for key in claims:
            claim(key)  # refuses a key that names no claim of the original
        payload["claims"] = json.loads(json.dumps(claims, default=float))
    path = run.results_dir / profile / f"{chapter}.json"
    atomic_write(path, lambda fh: fh.write(json.dumps(payload, indent=1).encode()))
    return path


def load_results(run: Run, profile: str | None = None) -> dict[str, dict]:
    """Every chapter's saved results in ``run.results_dir`` for ``profile`` (default:
    ``run.profile``): ``{chapter: payload}``. Empty when no chapter has run yet in that
    profile."""
    folder = run.results_dir / (profile or run.profile.name)
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
