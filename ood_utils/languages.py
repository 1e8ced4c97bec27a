"""The texts the text twins are judged on, and their per-paragraph scores: which
languages (and kinds of English) twins trained on one English book tell apart.

Chapter 11 and the original-scale run of Experiment 5 (``tools/reproduce.py --only
E5``) score the same texts the same way: :func:`load_texts` cuts each text of
:data:`SOURCES` to a profile's length, :func:`score_texts` scores every character and
averages over paragraphs and lines, :func:`language_table` compares each text with the
English test texts, and :func:`e5_ratios` gives the two numbers the original's figures
show.

Shapes: per-character scores ``(L,)``; per-paragraph means ``(P,)``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import metrics, scores, text
from .models import Ensemble

#: label -> (group, source): a book of :data:`ood_utils.text.BOOKS`, or ``"train"`` /
#: ``"held_out"``, the two parts of the training book.
SOURCES: dict[str, tuple[str, str]] = {
    "English: training chapters": ("English (train)", "train"),
    "English: held-out chapters": ("English (test)", "held_out"),
    "English: Alice": ("English (test)", "alice_en"),
    "English: Sherlock Holmes": ("English (test)", "sherlock_holmes"),
    "French: Madame Bovary": ("French", "madame_bovary"),
    "French: Alice": ("French", "alice_fr"),
    "German: Die Verwandlung": ("German", "die_verwandlung"),
    "German: Alice": ("German", "alice_de"),
    "Irish: Seadna": ("Irish", "seadna"),
    "Old English: Beowulf": ("Old English", "beowulf"),
    "Middle English: Canterbury Tales": ("Middle English", "canterbury_tales"),
    "English dictionary (Devil's Dictionary)": ("dictionary", "devils_dictionary"),
    "English word list": ("word list", "word_list"),
}
#: The groups of English like the training book's (the reference's texts and the
#: training text); every other group is out of distribution.
ENGLISH = ("English (test)", "English (train)")
TRAINING_TEXT = "English: training chapters"


def english_test(sources: Mapping[str, tuple[str, str]] = SOURCES) -> list[str]:
    """The labels of the English test texts: the in-distribution side of every
    AUROC."""
    return [k for k, (group, _) in sources.items() if group == "English (test)"]


def load_texts(
    corpus: text.TextCorpus, chars: int, root: str | Path | None = None
) -> tuple[dict[str, str], dict[str, int]]:
    """Each text of :data:`SOURCES`, normalised to the training book's alphabet and cut
    to ``chars`` characters (from 30% into the book; the held-out chapters from their
    start): ``(texts, dropped)``, ``dropped`` the unknown characters removed from each
    whole text."""
    texts, dropped = {}, {}
    for label, (_group, source) in SOURCES.items():
        raw = (
            getattr(corpus, source)
            if source in ("train", "held_out")
            else text.load_book(source, root=root)
        )
        normalised, dropped[label] = text.normalise(raw, corpus.tokenizer.chars)
        texts[label] = text.excerpt(
            normalised, chars, at=0.0 if source == "held_out" else 0.3
        )
    return texts, dropped


@dataclass(frozen=True)
class ScoredTexts:
    """Every text scored: per character, and averaged per paragraph and per line.

    Attributes:
        scored: label -> :class:`ood_utils.text.CharScores`.
        spans: label -> paragraph spans ``(start, end)``.
        para, lines: label -> ``{"twin": (P,), "nll": (P,)}``, the mean scores of each
            paragraph (or line of at least 5 visible characters).
    """

    scored: dict[str, text.CharScores]
    spans: dict[str, list[tuple[int, int]]]
    para: dict[str, dict[str, torch.Tensor]]
    lines: dict[str, dict[str, torch.Tensor]]


def score_texts(
    twins: Ensemble, tokenizer: text.CharTokenizer, texts: Mapping[str, str]
) -> ScoredTexts:
    """Score every character of ``texts`` (already normalised) and average per
    paragraph and per line."""
    scored = {
        label: text.score_text(twins, tokenizer, t, normalise_text=False)
        for label, t in texts.items()
    }
    spans = {label: text.paragraphs(s.text) for label, s in scored.items()}
    line_spans = {label: text.line_spans(s.text) for label, s in scored.items()}

    def means(spans_of: Mapping[str, list[tuple[int, int]]]) -> dict:
        return {
            label: {
                "twin": text.paragraph_means(s.twin, spans_of[label]),
                "nll": text.paragraph_means(s.nll, spans_of[label]),
            }
            for label, s in scored.items()
        }

    return ScoredTexts(scored, spans, means(spans), means(line_spans))


def reference(s: ScoredTexts) -> float:
    """The mean paragraph twin score of the English test texts: the reference."""
    return scores.reference(
        torch.cat([s.para[k]["twin"] for k in english_test()]).float()
    )


def language_table(s: ScoredTexts) -> tuple[pd.DataFrame, float]:
    """One row per text of :data:`SOURCES`: its paragraphs' median twin score over the
    reference, the shares flagged by the 10x rule and at the English test texts' 95th
    percentile, its mean NLL, and for the texts that are not English of the training
    kind the AUROCs of the twin score and of the NLL against the English test texts,
    per paragraph and per line. Returns ``(table, k95)``, ``k95`` that percentile as a
    multiple of the reference."""
    ref, test = reference(s), english_test()
    ids = {
        (unit, kind): torch.cat([getattr(s, unit)[k][kind] for k in test])
        for unit in ("para", "lines")
        for kind in ("twin", "nll")
    }
    # a multiplier with 5% false alarms on English
    k95 = scores.budget_threshold(ids["para", "twin"], 0.05) / ref
    rows = {}
    for label, (group, _) in SOURCES.items():
        p = s.para[label]
        row = {
            "group": group,
            "paragraphs": len(p["twin"]),
            "median twin score / reference": float(p["twin"].median()) / ref,
            "flagged by the 10x rule": float((p["twin"] > 10 * ref).double().mean()),
            "flagged at the 95th percentile": float(
                (p["twin"] > k95 * ref).double().mean()
            ),
            "mean NLL (bits/char)": float(scores.nats_to_bits(p["nll"].mean())),
        }
        if group not in ENGLISH:
            line = s.lines[label]
            row["AUROC twin score"] = metrics.auroc(ids["para", "twin"], p["twin"])
            row["AUROC NLL"] = metrics.auroc(ids["para", "nll"], p["nll"])
            row["AUROC twin, lines"] = metrics.auroc(ids["lines", "twin"], line["twin"])
            row["AUROC NLL, lines"] = metrics.auroc(ids["lines", "nll"], line["nll"])
        rows[label] = row
    return pd.DataFrame(rows).T, k95


def e5_ratios(s: ScoredTexts) -> dict[str, float]:
    """The two numbers of the original's text figures, as this build's twins give them:
    the mean paragraph twin score of the French texts and of the English test texts,
    each over the training text's (claims ``"E5 French / training text"`` and ``"E5
    English test / training text"``)."""
    train_mean = float(s.para[TRAINING_TEXT]["twin"].mean())
    french = [k for k, (group, _) in SOURCES.items() if group == "French"]
    english = torch.cat([s.para[k]["twin"] for k in english_test()])
    return {
        "E5 French / training text": float(
            torch.cat([s.para[k]["twin"] for k in french]).mean()
        )
        / train_mean,
        "E5 English test / training text": float(english.mean()) / train_mean,
    }
