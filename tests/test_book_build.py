"""The book, built once per session (see the ``book`` fixture): chapters, student
notebooks, site.

Every chapter listed in ``_toc.yml`` runs top to bottom in a fresh kernel, in *reverse*
reading order, so none may rely on a model or result that an earlier chapter made (with
CI's empty model cache, each trains what it needs). A chapter fails on any cell error
and on any warning printed to stderr. Chapters with exercises run as their student
version up to the first exercise, then with the solutions (tools/build_book.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import toc_notebooks  # noqa: E402
from student_notebooks import solution_blocks  # noqa: E402

NOTEBOOKS = toc_notebooks(ROOT)
CHAPTERS = [p for p in NOTEBOOKS if p.name[:2].isdigit()]


def test_toc_lists_the_chapters():
    assert [p.name for p in NOTEBOOKS] == [
        "01_fooling_attack.ipynb",
        "02_twin_training.ipynb",
        "03_kl_calibration.ipynb",
        "04_attacking_twins.ipynb",
        "05_mnist_fashion.ipynb",
        "06_identical_init.ipynb",
        "07_ensembles.ipynb",
        "08_training_schemes.ipynb",
        "09_baselines.ipynb",
        "10_weights_only.ipynb",
        "11_text.ipynb",
        "results.ipynb",
        "replication.ipynb",
    ]


@pytest.mark.notebooks
@pytest.mark.parametrize(
    "name", [p.name for p in NOTEBOOKS], ids=[p.stem for p in NOTEBOOKS]
)
def test_notebook_executes(book, name):
    rep = book["notebooks"][name]
    assert rep["error"] is None, f"{name} failed:\n{rep['error']}"
    assert not rep["warnings"], f"{name} printed warnings:\n" + "\n".join(
        rep["warnings"]
    )


@pytest.mark.notebooks
def test_book_executes_within_its_time_budget(book):
    """Issue 7: the fast profile runs in 15 minutes on 2 cores; fail above 1.5 times
    that.

    Judged on the wall time where the build had the machine to itself
    (tools/build_book.py, ``QUIET``). Where other work took more of the CPUs, the book's
    own time cannot be measured: the test is skipped, saying how busy the machine was,
    rather than failing for its sake."""
    from build_book import BUDGET_SECONDS, QUIET, describe

    times = "; ".join(
        f"{n}: {r['seconds']:.0f} s {describe(r)}" for n, r in book["notebooks"].items()
    )
    assert book["environment"]["profile"] == "fast"
    if book["busy_share"] is not None and book["busy_share"] >= QUIET:
        pytest.skip(
            f"other work took {book['busy_share']:.0%} of the CPUs during the build "
            f"({book['total_seconds']:.0f} s of wall time): the {BUDGET_SECONDS} s "
            "budget cannot be measured on this machine now"
        )
    assert book["total_seconds"] <= 1.5 * BUDGET_SECONDS, (
        f"executing the book took {book['total_seconds']:.0f} s, over 1.5 x the "
        f"{BUDGET_SECONDS} s budget ({times})"
    )


@pytest.mark.notebooks
def test_chapters_ran_in_reverse_order(book):
    """Last chapter first: none may depend on an earlier one; the results and
    replication pages collect them last."""
    assert book["order"] == [p.name for p in CHAPTERS][::-1] + [
        "results.ipynb",
        "replication.ipynb",
    ]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_student_notebook_runs_to_its_first_exercise(book, path):
    """The student version exists, hides every solution, and ran up to its first
    exercise."""
    student = ROOT / "_build" / "student" / path.relative_to(ROOT)
    assert student.exists(), f"no student notebook for {path.name}"
    nb = nbformat.read(student, as_version=4)
    stubs = [c for c in nb.cells if c.metadata.get("student_stub")]
    assert stubs and all(c.source.rstrip().endswith("...") for c in stubs)
    assert not any("solution-start" in c.source for c in nb.cells)
    book_nb = nbformat.read(path, as_version=4)
    solution_code = {
        c.source
        for _, a, b in solution_blocks(book_nb)
        for c in book_nb.cells[a + 1 : b]
        if c.cell_type == "code"
    }
    assert not solution_code & {c.source for c in nb.cells}, (
        "solution code leaked into the student notebook"
    )
    assert book["notebooks"][path.name]["student_cells_run"] > 0
    assert book["notebooks"][path.name]["error"] is None


@pytest.mark.notebooks
def test_site_builds_strictly(book):
    """Jupyter Book with ``-W -n --keep-going``: any warning or broken reference fails
    it."""
    assert book["sphinx"]["returncode"] == 0, book["sphinx"]["output"][-5000:]
    assert (ROOT / "_build" / "html" / "index.html").exists()
    import build_book

    # index.html only redirects here
    landing = ROOT / "_build" / "html" / "book" / "intro.html"
    assert f"ood-utils {build_book.package_version()}" in landing.read_text()


@pytest.mark.notebooks
def test_the_notebooks_the_site_offers_for_download_are_plain(book):
    """The ``.ipynb`` download button serves ``_sources/``: plain copies, no MyST fence,
    option or role (what Jupyter would show as raw text)."""
    from test_notebook_sources import RAW_MYST, markdown_of

    downloads = sorted((ROOT / "_build" / "html" / "_sources").rglob("*.ipynb"))
    assert len(downloads) == len(list((ROOT / "notebooks").glob("*.ipynb")))
    for path in downloads:
        raw = RAW_MYST.findall(markdown_of(nbformat.read(path, as_version=4)))
        assert not raw, (path.name, raw[:3])


@pytest.mark.notebooks
def test_no_progress_bar_is_frozen_into_a_page(book):
    """tqdm's bars (``42%|####  | 21/50``) belong to live runs: the built pages have
    none."""
    import re

    bar = re.compile(r"\d+%\|.*?\| *\d+/\d+")
    pages = sorted((ROOT / "_build" / "html" / "notebooks").glob("*.html"))
    assert pages
    frozen = [p.name for p in pages if bar.search(p.read_text())]
    assert not frozen, f"progress bars in {frozen}"


@pytest.mark.notebooks
def test_each_chapter_as_built_is_at_most_15_percent_apparatus(book):
    """Issue 23: of what a reader sees of a chapter's body without unfolding anything
    (prose, printed sentences included, and shown code), at most 15% is about the
    original's protocol, ladders, scale and verdicts (tools/apparatus.py)."""
    from apparatus import share

    over = {}
    for path in CHAPTERS:
        executed = nbformat.read(ROOT / "_build" / "src" / "notebooks" / path.name, 4)
        s = share(executed)
        if s.prose > 0.15 or s.code > 0.15:
            over[path.stem] = (f"prose {s.prose:.0%}", f"code {s.code:.0%}")
    assert not over, over
