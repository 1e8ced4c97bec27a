"""Verdicts: how this build's numbers relate to each claim of the original, at this
build's scale and at the original's, and the Replication page's tables."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from .claims import CLAIMS, Claim, claim
from .ladders import main_cause
from .measure import JOINT_METRICS
from .protocols import PROTOCOLS, protocol
from .results import original_scale_value, original_scale_values, scale_ladder


def verdict(
    key: str,
    original_protocol: float | None,
    book_protocol: float | None,
    cause: str | None = None,
    scale: str = "original",
) -> str:
    """How this run relates to the original's claim ``key``.

    Args:
        original_protocol: this run's number under the original's protocol (``None``:
            not run).
        book_protocol: under the book's protocol (``None``: not run).
        cause: the change that makes the difference (e.g. from :func:`main_cause`).
        scale: ``"original"`` (60,000 images, 14 epochs) or the profile that ran (e.g.
            ``"fast"``).

    Returns:
        ``"reproduced"``, ``"reproduced only under the original's protocol: the cause is
        ..."``, ``"not reproduced"`` (``"... at this scale"`` below the original's
        scale), or ``"not run at this scale"`` (followed by what the book's protocol
        gives, if it ran).
    """
    c = claim(key)
    if original_protocol is None:
        if book_protocol is None:
            return "not run at this scale"
        return "not run at this scale; the book's protocol " + (
            "reproduces it" if c.matches(book_protocol) else "does not reproduce it"
        )
    reduced = "" if scale == "original" else " at this scale"
    if c.matches(original_protocol):
        if book_protocol is None or c.matches(book_protocol):
            return "reproduced" + (
                "" if book_protocol is not None else " (the book's protocol not run)"
            )
        cause = cause or "not isolated at this scale"
        return f"reproduced only under the original's protocol: the cause is {cause}"
    if c.matches(book_protocol):
        return (
            f"not reproduced under the original's protocol{reduced}; the book's "
            "protocol gives it"
        )
    return "not reproduced" + reduced


def claim_record(
    key: str,
    original_protocol: float | None,
    book_protocol: float | None,
    cause: str | None,
    scale: str,
    protocol_cause: str | None = None,
) -> dict[str, object]:
    """A claim's row for :func:`ood_utils.book.record` (``claims=``): the numbers and
    the verdict.

    ``cause`` is the ladder's main cause at this build's scale (:func:`main_cause`);
    ``protocol_cause`` the main cause among the steps that are not the training budget
    (``skip_kinds=("scale",)``), which the Replication page names where it judges the
    claim at the original's scale (both protocols train alike there)."""
    c = claim(key)
    return {
        "original protocol": original_protocol,
        "book protocol": book_protocol,
        "cause": cause,
        "protocol cause": protocol_cause,
        "scale": scale,
        "published": c.published,
        "cell": c.cell,
        "verdict": verdict(key, original_protocol, book_protocol, cause, scale),
    }


def scale_verdict(
    results: Mapping[tuple[str, str], Mapping[str, object]],
    key: str,
    cause: str | None = None,
    ladder: str = "this build's",
    ladder_scale: str | None = None,
) -> str | None:
    """The verdict on claim ``key`` from its original-scale numbers (:func:`verdict`),
    or ``None`` when neither protocol has one in ``results`` (a chapter then keeps its
    own scale's verdict).

    ``cause``: what the verdict names if the claim is reproduced only under the
    original's protocol. The joint attack's claims take it from the ladder run at the
    original's scale (:func:`scale_ladder`) where there is one. Otherwise it is the
    largest step besides the training budget of a ladder run at a smaller scale, whose
    it is ``ladder`` says (``"this build's"``, ``"this chapter's"``) and at which scale
    it ran ``ladder_scale`` (e.g. ``"4,000 images, 2 epochs"``: :func:`scale_of`)."""
    values = {p: original_scale_value(results, key, p) for p in PROTOCOLS}
    if values["original"] is None and values["book"] is None:
        return None
    spread, judged = original_scale_values(results, key, "original"), ""
    if len(spread) > 1:
        # several pairs (and settings): the one closest to the published number
        published_value = claim(key).published
        values["original"] = min(spread, key=lambda v: abs(v - published_value))
        judged = (
            f"; judged on the closest of {len(spread)} measurements under the "
            f"original's protocol, {pair_and_grid(len(spread))}, which range from "
            f"{min(spread):.0%} to {max(spread):.0%}"
        )
    c = claim(key)
    joint = c.experiment == "E1" and c.metric in JOINT_METRICS
    at_scale = scale_ladder(results) if joint else None
    if at_scale is not None:
        change, delta = main_cause(at_scale, c.metric)
        cause = (
            f"{change}, {delta:+.0%}: the largest step of the ladder run at the "
            "original's scale on E1's first pair"
        )
    elif cause:
        where = f", run at {ladder_scale}" if ladder_scale else ""
        cause += (
            f" ({ladder} ladder{where}, its largest step besides the training budget; "
            "no ladder ran at the original's scale)"
        )
    return (
        verdict(key, values["original"], values["book"], cause, scale="original")
        + judged
    )


def pair_and_grid(n: int) -> str:
    """Words for ``n`` measurements of an E1 claim: pairs, and grid settings per
    pair."""
    pairs = len(protocol("original").e1_pair_seeds)
    per_pair = n // pairs - 1
    if n % pairs or per_pair < 0:
        return f"{n} measurements"
    each = "on each" if pairs > 1 else "on it"
    grid = f" and {per_pair} settings of the grid {each}" if per_pair else ""
    return (f"{pairs} twin pairs" if pairs > 1 else "one twin pair") + grid


def replication_table(
    chapters: Mapping[str, Mapping[str, object]],
    original_scale: Mapping[tuple[str, str], Mapping[str, object]] | None = None,
) -> pd.DataFrame:
    """One row per claim of :data:`CLAIMS`, from the chapters' saved records and the
    original-scale results.

    Args:
        chapters: ``{chapter: payload}`` as :func:`ood_utils.book.load_results` returns
            them; a payload's ``"claims"`` holds :func:`claim_record` rows.
        original_scale: :func:`load_results` (default: none). Where a claim has numbers
            at the original's scale, its verdict is judged on them: the book follows the
            larger run.

    Returns:
        Columns ``experiment``, ``claim``, ``published``, ``cell``, ``original
        protocol`` and ``book protocol`` (this build), ``scale`` (this build's),
        ``original protocol, original scale`` and ``book protocol, original scale``,
        ``verdict``, ``chapter`` and the claim's ``key``, in the order of
        :data:`CLAIMS`; a claim that nothing ran is "not run at this scale".
    """
    found: dict[str, tuple[str, Mapping[str, object]]] = {}
    for chapter, payload in chapters.items():
        for key, row in (payload.get("claims") or {}).items():
            if key in found:
                raise ValueError(
                    f"claim {key!r} recorded by both {found[key][0]} and {chapter}"
                )
            claim(key)
            found[key] = (chapter, row)
    rows = []
    for key, c in CLAIMS.items():
        chapter, row = found.get(key, ("", {}))
        at_scale = {
            p: original_scale_value(original_scale or {}, key, p) for p in PROTOCOLS
        }
        verdict_text = scale_verdict(
            original_scale or {},
            key,
            row.get("protocol cause"),
            ladder_scale=row.get("scale"),
        ) or row.get("verdict", "not run at this scale")
        rows.append(
            {
                "experiment": c.experiment,
                "claim": c.text,
                "published": c.published,
                "cell": c.cell,
                "original protocol": row.get("original protocol"),
                "book protocol": row.get("book protocol"),
                "scale": row.get("scale", ""),
                "original protocol, original scale": at_scale["original"],
                "book protocol, original scale": at_scale["book"],
                "verdict": verdict_text,
                "chapter": chapter,
                "key": key,
            }
        )
    return pd.DataFrame(rows)


def _number(c: Claim, value: object) -> str:
    """A claim's number as the Replication page prints it: a reference or ratio to 3
    significant digits, an AUROC to 3 decimals, a share as a percentage to 3
    significant digits (3.5%, 73.3%, 100%)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if c.relative:
        return f"{value:.3g}"
    return f"{value:.3f}" if "AUROC" in c.text else f"{100 * value:.3g}%"


def reading_table(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """One experiment's rows of :func:`replication_table`, one row per claim, for
    reading: ``claim``, ``published (cell)``, ``original's protocol here`` (this
    build, at its scale), ``at the original's scale`` (its protocol, run by
    ``tools/reproduce.py``) and ``verdict`` (with its cause)."""
    rows = table[table["experiment"] == experiment]
    if rows.empty:
        raise ValueError(f"no claims of experiment {experiment!r}")
    out = []
    for _, row in rows.iterrows():
        c = claim(row["key"])
        out.append(
            {
                "claim": c.text,
                "published (cell)": f"{_number(c, c.published)} ({c.cell})",
                "original's protocol here": _number(c, row["original protocol"]),
                "at the original's scale": _number(
                    c, row["original protocol, original scale"]
                ),
                "verdict": row["verdict"],
            }
        )
    return pd.DataFrame(out)
