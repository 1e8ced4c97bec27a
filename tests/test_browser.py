"""Every page of the built site in headless Chromium: loads cleanly, figures, math,
Colab links.

Needs the ``book`` fixture (the site under ``_build/html``) and Debian's ``chromium``
(``.ci/run`` installs it; ``$CHROMIUM`` overrides the path), driven by Playwright.
Screenshots go to ``_build/screenshots`` (test artifacts, not committed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urljoin

import nbformat
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from conftest import page_problems  # noqa: E402
from run_notebooks import toc_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


PAGES = toc_files(ROOT)


def expected_figures(page_name: str) -> int:
    """Figures the page must show: image outputs of its executed notebook that are not
    hidden."""
    executed = ROOT / "_build" / "src" / f"{page_name}.ipynb"
    if not executed.exists():
        return 1 if page_name == "book/intro" else 0
    nb = nbformat.read(executed, as_version=4)
    hidden = {"remove-output", "remove-cell"}
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code" and not hidden & set(cell.metadata.get("tags", []))
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )


def colab_url(page: str) -> str:
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    path = "/".join(
        x for x in (CONFIG["repository"].get("path_to_book", "").strip("/"), page) if x
    )
    return (
        f"{CONFIG['launch_buttons']['colab_url']}/github/{repo}/blob/"
        f"{CONFIG['repository']['branch']}/{path}.ipynb"
    )


@pytest.mark.notebooks
@pytest.mark.parametrize("page_name", PAGES)
def test_page_in_browser(site, browser, page_name):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = page_problems(page)
    response = page.goto(f"{site}/{page_name}.html", wait_until="networkidle")
    assert response is not None and response.ok, (
        f"{page_name}.html: HTTP {response and response.status}"
    )

    # Math: MathJax (served with the site) has typeset every formula, without errors.
    n_math = page.locator(".math").count()
    if n_math:
        page.wait_for_function(
            "document.querySelectorAll('mjx-container').length > 0", timeout=30_000
        )
        assert page.locator("mjx-merror").count() == 0, (
            "MathJax reported an error in a formula"
        )
        assert page.locator("mjx-container").count() >= n_math

    # Figures: every image loaded; the visible ones have a nonzero size on the page.
    images = page.eval_on_selector_all(
        "article img",
        "els => els.map(e => ({src: e.currentSrc || e.src, w: e.naturalWidth, h: "
        "e.naturalHeight, alt: e.alt, shown: e.getBoundingClientRect().width, "
        "hidden: !!e.closest('details, .toggle-hidden, .dropdown, .toggle')}))",
    )
    broken = [i["src"] for i in images if i["w"] == 0 or i["h"] == 0]
    assert all(i["alt"].strip() for i in images), (
        f"{page_name}: a figure without alt text"
    )
    assert not broken, f"images that did not load: {broken}"
    assert not [i["src"] for i in images if not i["hidden"] and i["shown"] == 0], (
        "an image has zero size"
    )
    expected = expected_figures(page_name)
    assert len(images) >= expected, (
        f"{page_name}: {expected} figures in the notebook, {len(images)} on the page"
    )

    # Launch buttons: Colab opens this page's notebook on the configured repository.
    source = ROOT / f"{page_name}.ipynb"
    colab = page.locator("a[href*='colab.research.google.com']")
    if source.exists():
        assert colab.count() >= 1, "no Colab link"
        assert colab.first.get_attribute("href") == colab_url(page_name)
        download = page.locator(
            f"a[href*='_sources/'][href$='{Path(page_name).name}.ipynb']"
        )
        assert download.count() >= 1, "no download link for the notebook"
        href = urljoin(page.url, download.first.get_attribute("href"))
        assert page.request.get(href).ok, f"the download link {href} is broken"
    else:  # a prose page links to Colab only for notebooks of the release
        prefix = colab_url("x").rsplit("/", 2)[0] + "/"
        for href in colab.evaluate_all("els => els.map(e => e.href)"):
            assert href.startswith(prefix), href
            assert (ROOT / href.removeprefix(prefix)).exists(), href

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SHOTS / f"{page_name.replace('/', '__')}.png"), full_page=True
    )
    page.close()
    assert not problems, "\n".join(problems)


TABLE_CHECK = """() => {
  const article = document.querySelector('article');
  const column = article.getBoundingClientRect().width;
  const luminance = (css) => {  // WCAG relative luminance
    const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(v => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ground = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (!/rgba\\(.*, 0\\)$/.test(c) && c !== 'transparent') return luminance(c);
    }
    return luminance(getComputedStyle(document.body).backgroundColor);
  };
  return [...article.querySelectorAll('table')].map(t => {
    const label = t.querySelector('caption') || t.querySelector('th') || {};
    const cells = [...t.querySelectorAll('td, th')].filter(c => c.textContent.trim());
    const contrast = Math.min(...cells.map(c => {
      const [a, b] = [luminance(getComputedStyle(c).color), ground(c)];
      return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    }));
    return {head: (label.textContent || '').trim().slice(0, 60),
            width: Math.round(t.getBoundingClientRect().width),
            column: Math.round(column), contrast: contrast, ground: ground(t)};
  });
}"""


@pytest.mark.notebooks
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_tables_fit_their_column_and_read_in_either_mode(site, browser, scheme):
    """Issue 23: at 1440 px, with every folded section opened, no table is wider than
    the content column; every cell's text has a WCAG contrast of at least 4.5 with its
    ground, and a table's ground follows the mode (dark in dark mode)."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    wide, unreadable = [], []
    for name in PAGES:
        page.goto(f"{site}/{name}.html")
        page.evaluate(f"document.documentElement.dataset.theme = '{scheme}'")
        page.evaluate(
            "document.querySelectorAll('details').forEach(d => d.open = true)"
        )
        for t in page.evaluate(TABLE_CHECK):
            if t["width"] > t["column"] + 1:
                wide.append((name, t["head"], t["width"], t["column"]))
            light_ground = t["ground"] >= 0.18  # mid-grey's relative luminance
            if t["contrast"] < 4.5 or light_ground != (scheme == "light"):
                unreadable.append((name, t["head"], t["contrast"], t["ground"]))
    page.close()
    assert not wide, f"tables wider than their column: {wide}"
    assert not unreadable, f"tables that do not follow the {scheme} mode: {unreadable}"
