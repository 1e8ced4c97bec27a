"""Each chapter's closing section, "Against the original".

A chapter teaches with the book's protocol; what the original post did differently,
the ladders that change one of its factors at a time, its numbers at its own scale and
the verdicts live here, one module per chapter, so that the chapter shows one call::

    from ood_utils import against

    against.the_original(run, strict=strict, loose=loose)  # folded on the site

The :class:`Section` it returns displays itself (prose and tables, in order) and holds
what the chapter saves: the claims it judges, its ladders and its key numbers. The
Replication page gathers every chapter's claims.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
from IPython.display import Markdown, display

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["CHAPTERS", "Section", "the_original"]

#: chapter name (``Run.chapter``) -> the module of this package that writes its section
CHAPTERS = {
    "01_fooling_attack": "chapter01",
    "02_twin_training": "chapter02",
    "03_kl_calibration": "chapter03",
    "04_attacking_twins": "chapter04",
    "05_mnist_fashion": "chapter05",
    "06_identical_init": "chapter06",
    "07_ensembles": "chapter07",
    "09_baselines": "chapter09",
    "11_text": "chapter11",
}


@dataclass
class Section:
    """A chapter's "Against the original" section.

    Attributes:
        parts: what it shows, in order: Markdown strings, DataFrames or Stylers
            (``None`` parts, a table whose numbers are absent, are skipped).
        claims: claim key -> :func:`ood_utils.replication.claim_record`, for the
            chapter's record and the Replication page.
        tables: ladders and other tables the chapter saves with its record.
        numbers: named results (the chapter's record and its prose read them).
    """

    parts: list[object] = field(default_factory=list)
    claims: dict[str, dict] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    numbers: dict[str, object] = field(default_factory=dict)

    def say(self, text: str) -> None:
        """Add a paragraph (Markdown)."""
        self.parts.append(text)

    def show(self, table: object) -> None:
        """Add a table (a DataFrame or a Styler; ``None`` adds nothing). A ladder (a
        ``change`` column over plain row numbers) is shown without the row numbers."""
        if table is None:
            return
        data = getattr(table, "data", None)
        if (
            data is not None
            and "change" in data.columns
            and isinstance(data.index, pd.RangeIndex)
        ):
            table = table.hide(axis="index")
        self.parts.append(table)

    def at_original_scale(self, run: Run, experiment: str, what: str) -> dict:
        """Open the part "At the original's scale": say what ran there (``what``, a
        sentence) and which of ``experiment``'s results are present; return them
        (:func:`ood_utils.replication.load_results`)."""
        from .. import replication

        results = replication.load_results(run.original_scale_dir)
        self.say(
            f"**At the original's scale.** {what} "
            + replication.original_scale_note(results, experiment)
        )
        return results

    def _ipython_display_(self) -> None:
        for part in self.parts:
            display(Markdown(part) if isinstance(part, str) else part)


def the_original(run: Run, **results: object) -> Section:
    """The section of ``run.chapter``, computed from the chapter's ``results`` (its
    attacks, scores or tables, named as the chapter's module asks)."""
    if run.chapter not in CHAPTERS:
        raise ValueError(
            f"chapter {run.chapter!r} has no 'Against the original' section; "
            f"those that do: {sorted(CHAPTERS)}"
        )
    module = importlib.import_module(f".{CHAPTERS[run.chapter]}", __name__)
    return module.section(run, **results)
