"""Chapter 9 against the original: the same eleven detectors on the twins of its
Experiment 2, trained at its scale (``tools/reproduce.py --only baselines``)."""

from __future__ import annotations

import pandas as pd

from .. import replication
from ..run import Run
from . import Section

SCALE = """\
**At the original's scale.** Everything in this chapter ran in this build's profile.
`tools/reproduce.py --only baselines` runs the same eleven detectors on the same six
kinds of set on the twins of chapter 5's original-scale run (all 60,000 training
images, 14 epochs), with the full test sets and the full profile's attacks, noise and
MC-dropout passes. The original itself compared the twins with no other detector."""


def section(run: Run, *, summary: pd.DataFrame) -> Section:
    """Chapter 9's section, from its table of the twin score's rank per case (a
    ``twin rank`` column, one row per direction and OOD set)."""
    results = replication.load_results(run.original_scale_dir)
    out = Section()
    out.say(SCALE)
    lines = {
        protocol: payload["numbers"][replication.BASELINES_SUMMARY]
        for protocol in replication.PROTOCOLS
        if (payload := results.get(("baselines", protocol))) is not None
    }
    if not lines:
        out.say(
            "No original-scale results for this chapter are present in this copy of "
            "the book: `python tools/reproduce.py --only baselines` computes them."
        )
        return out
    out.say(
        "\n".join(
            "- " + replication.provenance_line(results["baselines", p]) for p in lines
        )
    )
    best_here = int((summary["twin rank"] == 1).sum())
    out.say(
        "; ".join(
            f"On E2's twins under the {protocol}'s protocol the twin score is the best "
            f"of **{t['methods']:.0f}** methods in **{t['best']:.0f}** of "
            f"**{t['cases']:.0f}** cases, beats MSP in **{t['beats MSP']:.0f}**, and "
            f"its median rank is **{t['median rank']:.0f}**"
            for protocol, t in lines.items()
        )
        + f" (this build: best in **{best_here}** of **{len(summary)}** cases, median "
        f"rank **{summary['twin rank'].median():.0f}**). "
        + (
            "At both scales the twins are never the best method."
            if best_here == 0 and all(t["best"] == 0 for t in lines.values())
            else "The two scales do not agree on whether the twins are ever the best "
            "method: the book states its bottom line at each."
        )
    )
    return out
