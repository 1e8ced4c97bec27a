"""Chapter 3 against the original: its flag rule (cells 35, 43 and 46), under its
protocol, one change at a time, and at its scale."""

from __future__ import annotations

import functools

import pandas as pd
import torch

from .. import cache, metrics, replication, train
from ..models import predict_log_probs
from ..run import Run
from . import Section

PROTOCOL = """\
**What the original did.** Its code differs from this chapter's rule in three ways
(published notebook, cells 35, 43 and 46; cell numbers are 0-based positions in the
published `.ipynb`). Its **statistic** is not the larger of the two directed KLs but,
class by class, the larger of the two directions' *terms*, summed over the classes:
`torch.max(F.kl_div(o0, o1.exp(), reduction='none'), F.kl_div(o1, o0.exp(),
reduction='none')).sum(-1)`; taking the maximum before the sum makes it at least as
large as the twin score. Its **reference** is the mean *symmetric* KL,
$\\tfrac12(\\mathrm{KL}(p_1 \\| p_2) + \\mathrm{KL}(p_2 \\| p_1))$, over the test set
(its prose says the training set): a different statistic from the one it thresholds.
The flagged shares it reports, **3.50%** of MNIST test and **73.34%** of FashionMNIST
(cell 35), come from its Experiment 2, whose twins trained with Adam under a schedule
that left the first epoch at learning rate 0, and with dropout that drops whole
channels.

`scores.ORIGINAL_RULE` and `scores.BOOK_RULE` name these choices. **The ladder**
starts from the original's protocol (its training, with the profile's small "sweep"
budget, and its rule), then changes one factor per row until it reaches this chapter's
twins and rule. Chapter 5 walks the same ladder for the reverse direction too."""


def _ladder(run: Run, sets: dict[str, torch.Tensor]) -> tuple[dict, pd.DataFrame]:
    @functools.cache
    def log_probs(cfg: train.TrainConfig) -> dict[str, torch.Tensor]:
        """The twins of ``cfg`` on the chapter's sets: (2, B, 10) each."""
        twins = cache.get_ensemble(cfg, run, progress=False)[0]
        return {name: predict_log_probs(twins, x) for name, x in sets.items()}

    def row(factors: dict) -> dict:
        lp = log_probs(replication.train_config(factors, profile=run.profile))
        rule = replication.flag_rule(factors)
        ref = rule.reference_of(lp["MNIST test"])
        out = {"reference (nats)": ref}
        for name in sets:
            if name != "MNIST train":
                out[f"flagged: {name}"] = float(
                    rule.flags(lp[name], ref).double().mean()
                )
        out["AUROC vs FashionMNIST"] = metrics.auroc(
            rule.score(lp["MNIST test"]), rule.score(lp["FashionMNIST test"])
        )
        return out

    start, steps, end = replication.e2_ladder("mnist")
    return start, replication.ladder(start, steps, row, end=end)


def _ladder_sentence(lad: pd.DataFrame, scale: str) -> str:
    first = lad.iloc[0]
    stat = lad.index[lad["change"].str.startswith("statistic")][0]
    ref_step = lad.loc[stat + 1]
    return (
        f"Under the original's protocol ({scale} of training) the rule flags "
        f"**{first['flagged: MNIST test']:.1%}** of MNIST test and "
        f"**{first['flagged: FashionMNIST test']:.1%}** of FashionMNIST, against 3.50% "
        "and 73.34% in the original (cell 35), with an AUROC of "
        f"**{first['AUROC vs FashionMNIST']:.3f}**. On this chapter's twins, the "
        "original's rule flags "
        f"**{lad.loc[stat - 1, 'flagged: MNIST test']:.1%}** of MNIST test; scoring "
        "with the larger directed KL instead gives "
        f"**{lad.loc[stat, 'flagged: MNIST test']:.1%}**, and calibrating with that "
        f"statistic's own mean **{ref_step['flagged: MNIST test']:.1%}**: the "
        "reference "
        f"moves from **{lad.loc[stat, 'reference (nats)']:.4f}** to "
        f"**{ref_step['reference (nats)']:.4f}** nats. The statistic moves the AUROC "
        f"from **{lad.loc[stat - 1, 'AUROC vs FashionMNIST']:.3f}** to "
        f"**{lad.loc[stat, 'AUROC vs FashionMNIST']:.3f}**; the reference cannot move "
        "it, since it divides every score by the same number."
    )


def section(
    run: Run, *, sets: dict[str, torch.Tensor], flagged: dict[str, float]
) -> Section:
    """Chapter 3's section, from its sets of inputs (name -> images) and the shares its
    rule flags in each (name -> share)."""
    start, lad = _ladder(run, sets)
    # the last row is the chapter's rule
    last = lad.iloc[-1]["flagged: FashionMNIST test"]
    assert abs(last - flagged["FashionMNIST test"]) < 1e-12
    scale = replication.scale_of(replication.train_config(start, profile=run.profile))
    out = Section()
    out.say(PROTOCOL)
    out.show(
        lad.style.format(
            {c: "{:.1%}" for c in lad.columns if c.startswith("flagged")}
            | {"reference (nats)": "{:.4f}", "AUROC vs FashionMNIST": "{:.3f}"}
        ).set_caption("The flag rule, from the original's protocol to the book's")
    )
    out.say(_ladder_sentence(lad, scale))
    results = replication.load_results(run.original_scale_dir)
    flags = {
        (m, p): replication.original_scale_value(
            results, replication.claim_key("E2", "mnist", m), p
        )
        for m in ("ID flagged", "OOD flagged")
        for p in replication.PROTOCOLS
    }
    ran = [p for p in replication.PROTOCOLS if flags["ID flagged", p] is not None]
    if ran:
        out.say(
            "**At the original's scale** (60,000 images, 14 epochs; chapter 5 and "
            "`results/original-scale`), "
            + " and ".join(
                f"the {p}'s protocol flags **{flags['ID flagged', p]:.1%}** of MNIST "
                f"test and **{flags['OOD flagged', p]:.1%}** of FashionMNIST"
                for p in ran
            )
            + " (published: 3.50% and 73.34%, cell 35). "
            + replication.original_scale_note(results, "E2")
        )
    out.tables = {"ladder": lad.reset_index()}
    return out
