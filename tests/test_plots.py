from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from ood_utils import plots

ROOT = Path(__file__).resolve().parents[1]


def test_image_grid_layout_and_titles():
    fig = plots.image_grid(
        torch.rand(7, 1, 28, 28), [str(i) for i in range(7)], ncols=3
    )
    axes = fig.axes
    assert len(axes) == 9  # 3 rows x 3 columns
    assert [ax.get_title() for ax in axes[:7]] == [str(i) for i in range(7)]
    assert sum(bool(ax.images) for ax in axes) == 7
    plt.close(fig)
    with pytest.raises(ValueError, match="titles"):
        plots.image_grid(torch.rand(2, 1, 28, 28), ["only one"])


def test_score_histograms_log_axis_handles_zero_scores():
    fig = plots.score_histograms(
        {"in": torch.zeros(50), "out": torch.rand(50) + 0.1}, reference=0.01, k=10
    )
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("in (n=50)") and any(
        "10 x reference" in t for t in labels
    )
    plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        plots.score_histograms({})


def test_roc_curves_one_line_per_pair_with_auroc_in_label():
    rng = np.random.default_rng(0)
    fig = plots.roc_curves(
        {
            "a": (rng.normal(size=100), rng.normal(size=100) + 3),
            "b": (np.zeros(10), np.ones(10)),
        }
    )
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[1] == "b (AUROC 1.000)" and labels[0].startswith("a (AUROC 0.9")
    plt.close(fig)


def test_heatmap_and_coloured_text():
    import pandas as pd

    grid = pd.DataFrame(
        [[0.9, 0.5], [0.2, float("nan")]], index=["a", "b"], columns=["x", "y"]
    )
    fig = plots.heatmap(grid, highlight="a")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "0.90" in texts and len(texts) == 3  # NaN cells are left blank
    s = "ab c\nlonger line here"
    fig = plots.coloured_text(s, torch.linspace(0, 1, len(s)), boxes=[(5, 11)], width=8)
    drawn = [t for t in fig.axes[0].texts if t.get_text().strip()]
    assert len(drawn) == len(s.replace(" ", "").replace("\n", ""))
    assert {t.get_color() for t in drawn} == {"black", "blue"}
    with pytest.raises(ValueError, match="characters"):
        plots.coloured_text("abc", torch.zeros(2))
    u = plots.log_unit(np.array([0.0, 1e-4, 0.1, 1.0]), vmax=1.0)
    assert u[0] == 0 and u[-1] == 1 and np.all(np.diff(u) >= 0)


def test_every_chapter_has_a_concept_diagram_drawn_from_its_table():
    """One box per entry of the chapter's row of `diagrams.CONCEPTS`, an arrow from
    every box of a stage to every box of the next; an unknown chapter is refused."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from ood_utils import diagrams

    chapters = sorted(p.name[:2] for p in (ROOT / "notebooks").glob("[01]*.ipynb"))
    assert sorted(diagrams.CONCEPTS) == chapters
    for chapter, stages in diagrams.CONCEPTS.items():
        fig = diagrams.concept_diagram(chapter)
        patches = fig.axes[0].patches
        boxes = [p for p in patches if isinstance(p, FancyBboxPatch)]
        arrows = [p for p in patches if isinstance(p, FancyArrowPatch)]
        assert len(boxes) == sum(len(s) for s in stages)
        assert len(arrows) == sum(len(a) * len(b) for a, b in zip(stages, stages[1:]))
        texts = {t.get_text() for t in fig.axes[0].texts}
        assert texts == {b.text for s in stages for b in s}
        assert all(b.kind in diagrams.KIND_COLOURS for s in stages for b in s)
        plt.close(fig)
    with pytest.raises(ValueError, match="no diagram for chapter '12'"):
        diagrams.concept_diagram("12")


def test_the_rank_chart_puts_the_best_rank_on_top_and_reads_every_case():
    import pandas as pd

    from ood_utils import benchmark, replication

    sets = {"uniform noise": (0.9, 0.8, 0.7), "FashionMNIST": (0.6, 0.95, 0.5)}
    numbers = {
        replication.baselines_key("MNIST -> FashionMNIST", s, m): {
            "AUROC": a,
            "AUPR-IN": a,
            "AUPR-OUT": a,
            "FPR@95TPR": 0.1,
        }
        for s, aurocs in sets.items()
        for m, a in zip(("MSP", "twin max-KL", "Energy"), aurocs)
    }
    numbers[replication.BASELINES_SUMMARY] = {"cases": 2.0}  # not a case
    long = replication.baselines_metrics({"numbers": numbers})
    assert len(long) == 6 and set(long["OOD set"]) == set(sets)
    assert set(long["direction"]) == {"MNIST -> FashionMNIST"}
    summary = benchmark.wins_and_losses(long)
    assert summary["twin rank"].tolist() == [2, 1]
    fig = plots.rank_chart({"here": summary, "there": summary.iloc[:1]}, 3)
    ax = fig.axes[0]
    assert ax.get_ylim() == (3.5, 0.5)  # rank 1 at the top
    assert [len(line.get_xdata()) for line in ax.lines[:2]] == [2, 1]
    assert len(ax.get_xticklabels()) == 2
    plt.close(fig)
    assert isinstance(long, pd.DataFrame)
