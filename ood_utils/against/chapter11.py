"""Chapter 11 against the original: its text figures (Experiment 5), read as ratios,
and the same twins trained at its depth."""

from __future__ import annotations

import pandas as pd

from .. import languages, replication, text
from ..run import Run
from . import Section

FIGURES = """\
**What the original did.** Its second claim (Experiment 5): two language models, "a
simple transformer (6 layers deep)" in its words, trained at the same time on one
English book, whose divergence tells "different languages or different patterns of
writing (old english, irish, french, or event dictionnaries)" apart. It shows this
only in three figures, without code, data or the unit it tokenised text into; read off
them, the twin score is about 3 on its training book, below 20 on English test text,
and about 40 on a French book, and English paragraphs inside a French book score
*lower* than the French around them (about 30 against 40). Its model, text and tokens
are unknown, so the absolute values cannot be compared; their ratios to the training
text can."""

DEPTH = """\
**At the original's depth.** `tools/reproduce.py` trains the same twins with six
layers, on the same training chapters (`replication.e5_config()`: the original gives
no width, context or number of steps, so the width and the steps were chosen to reach
a plateau within about 45 minutes on 2 CPU cores), and scores the same texts. Its
per-text table, beside this chapter's:"""

COLUMNS = ["median twin score / reference", "AUROC twin score", "AUROC NLL"]
SHOWN = ["AUROC twin score", "AUROC NLL"]  # the medians are on the Replication page


def _depth(
    out: Section,
    run: Run,
    table: pd.DataFrame,
    cfg: text.TextConfig,
    ratios: dict[str, float],
) -> None:
    results = replication.load_results(run.original_scale_dir)
    out.say(DEPTH + " " + replication.original_scale_note(results, "E5"))
    deep = replication.original_scale_table(
        results, "E5", COLUMNS, groups=list(table.index)
    )
    if deep is None:
        return
    both = pd.concat(
        {
            f"{cfg.n_layers} layers (this chapter)": table[SHOWN],
            "6 layers": deep.loc["original"][SHOWN],
        },
        axis=1,
    )
    out.show(both.style.format("{:.3f}", na_rep=""))
    losses = list(results["E5", "original"]["numbers"]["training loss"].values())
    tail = len(losses) // 5  # the last fifth of the training
    deep_ratios = {
        k: replication.original_scale_value(results, k, "original") for k in ratios
    }
    others = deep.loc["original"].dropna(subset=["AUROC twin score"])
    mine = table.dropna(subset=["AUROC twin score"])
    wins = {
        "six": int((others["AUROC twin score"] > others["AUROC NLL"]).sum()),
        "this": int((mine["AUROC twin score"] > mine["AUROC NLL"]).sum()),
    }
    eng, fr = "E5 English test / training text", "E5 French / training text"
    out.say(
        "At six layers, relative to the training chapters: held-out English "
        f"**{deep_ratios[eng]:.1f}x** and French **{deep_ratios[fr]:.1f}x** (at "
        f"{cfg.n_layers} layers: {ratios[eng]:.1f}x and {ratios[fr]:.1f}x). The "
        f"cross-entropy per member moved from **{losses[-tail]:.3f}** to "
        f"**{losses[-1]:.3f}** nats per character over the last fifth of the training. "
        f"The twin score beats one model's NLL on **{wins['six']}** of the "
        f"{len(others)} other texts at six layers, and on **{wins['this']}** at "
        f"{cfg.n_layers}."
    )
    verdicts = {k: replication.scale_verdict(results, k) for k in (eng, fr)}
    if None not in verdicts.values():
        out.say(
            "Verdicts: " + "; ".join(f"{k[3:]}: {v}" for k, v in verdicts.items()) + "."
        )


def section(
    run: Run,
    *,
    scores: dict,
    table: pd.DataFrame,
    cfg: text.TextConfig,
) -> Section:
    """Chapter 11's section, from its paragraph scores per text (as
    :func:`ood_utils.languages.score_texts` returns them), its per-text table and its
    twins' configuration."""
    ratios = languages.e5_ratios(scores)
    out = Section()
    out.say(FIGURES)
    eng, fr = "E5 English test / training text", "E5 French / training text"
    out.say(
        "Mean paragraph twin score, relative to the training chapters: held-out "
        f"English **{ratios[eng]:.1f}x** (the original's figures: below "
        f"{replication.published(eng):.1f}x) and French **{ratios[fr]:.1f}x** (about "
        f"{replication.published(fr):.1f}x). This chapter's twins are smaller "
        f"({cfg.n_layers} layers, trained for {cfg.steps:,} steps in the "
        f"{run.profile.name} profile) than the original's six-layer transformer."
    )
    _depth(out, run, table, cfg, ratios)
    out.claims = {
        key: replication.claim_record(
            key,
            None,
            value,
            "the original's text, model and tokens are not published",
            f"{cfg.n_layers} layers, {cfg.steps:,} steps",
        )
        for key, value in ratios.items()
    }
    return out
