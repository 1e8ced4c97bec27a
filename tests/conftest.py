"""Shared fixtures. Data come from $OOD_DATA_ROOT (CI: ../shared/data), read once into
``RUN``."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in tests

import pytest
import torch

from ood_utils import data
from ood_utils.run import from_environment
from ood_utils.train import TrainConfig, train_ensemble

#: The tests' run context: the environment's data and cache folders, on the CPU.
RUN = from_environment("tests", device="cpu")
DATA = RUN.data_root


def _data_available() -> bool:
    try:
        data.load("mnist", "test", n=10, root=DATA)
        data.load("fashionmnist", "test", n=10, root=DATA)
        return True
    except data.DataNotFoundError:
        return False


needs_data = pytest.mark.skipif(
    not _data_available(), reason="MNIST/FashionMNIST not found under $OOD_DATA_ROOT"
)


@pytest.fixture(scope="session")
def trained_cnn() -> torch.nn.Module:
    """A single MNIST CNN trained briefly (3000 images, 1 epoch): about 97% accurate, a
    few seconds."""
    if not _data_available():
        pytest.skip("MNIST not found under $OOD_DATA_ROOT")
    cfg = TrainConfig(dataset="mnist", n_members=1, epochs=1, n_train=3000, seed=0)
    ens, _ = train_ensemble(cfg, RUN, progress=False)
    return ens[0]


def random_log_probs(
    n: int, b: int, c: int = 10, seed: int = 0, scale: float = 3.0
) -> torch.Tensor:
    """Random log-probabilities ``(n, b, c)`` for unit tests."""
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(scale * torch.randn(n, b, c, generator=g), dim=-1)


ROOT = Path(__file__).resolve().parents[1]
_BOOK: dict = {}


@pytest.fixture(scope="session")
def book(request) -> dict:
    """The book built once for the session, as ``make book`` does, but chapters in
    reverse order.

    Returns the build report (``_build/execution.json``). Executing every chapter takes
    most of the suite's time; each chapter's line is printed as it finishes. With
    ``OOD_REUSE_BUILD=1`` an existing report is reused (for working on the tests only).
    """
    if not _data_available():
        pytest.skip("MNIST/FashionMNIST not found under $OOD_DATA_ROOT")
    sys.path.insert(0, str(ROOT / "tools"))
    import build_book

    report_file = ROOT / "_build" / "execution.json"
    if os.environ.get("OOD_REUSE_BUILD") == "1" and report_file.exists():
        _BOOK.update(json.loads(report_file.read_text()))
        return _BOOK
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def log(line: str) -> None:
        """Shown as each chapter finishes (pytest would otherwise hold it until the
        end)."""
        if terminal is None or capture is None:
            print(line, flush=True)
            return
        with capture.global_and_fixture_disabled():
            terminal.write_line(line)
            terminal.flush()

    log("")
    log("building the book (every chapter, reverse order, then the site) ...")
    _BOOK.update(build_book.build(reverse=True, log=log))
    return _BOOK


def pytest_collection_modifyitems(items: list) -> None:
    """Run the tests that need the built book last, so the unit tests report first."""
    items.sort(key=lambda item: "book" in getattr(item, "fixturenames", ()))


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 (pytest hook)
    """Print each chapter's execution time and the total at the end of the run."""
    if not _BOOK:
        return
    # tools/ is on sys.path once the book fixture ran
    from build_book import (
        BUDGET_SECONDS,
        describe,
    )

    terminalreporter.section("notebook execution times")
    for name in sorted(_BOOK["notebooks"]):
        rep = _BOOK["notebooks"][name]
        terminalreporter.write_line(f"{rep['seconds']:7.1f} s  {name}  {describe(rep)}")
    terminalreporter.write_line(
        f"{_BOOK['total_seconds']:7.1f} s  total (profile "
        f"{_BOOK['environment']['profile']}, budget {BUDGET_SECONDS} s; others took "
        f"{_BOOK['busy_share'] or 0:.0%} of the CPUs)"
    )
    terminalreporter.write_line(f"{_BOOK['sphinx']['seconds']:7.1f} s  site build")


#: Debian's Chromium, driven by Playwright (``.ci/run`` installs it; ``$CHROMIUM``
#: overrides the path).
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test log readable
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free port of 127.0.0.1; yield its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def page_problems(page) -> list[str]:  # noqa: ANN001 (a Playwright page)
    """What goes wrong on ``page`` from now on, as lines: console errors and warnings,
    uncaught errors, failed requests and HTTP errors (the list fills as it happens)."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on(
        "response",
        lambda r: (
            problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
        ),
    )
    return problems


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium for the session."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set "
            "$CHROMIUM)"
        )
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def site(book) -> str:
    """Serve the built site (``_build/html``) on a free localhost port; yield its base
    URL."""
    if book["sphinx"]["returncode"] != 0:
        pytest.fail("the site was not built (see test_site_builds_strictly)")
    with serve(ROOT / "_build" / "html") as base:
        yield base
