"""Chapter 3's live figure (issue 24): the exported graph against the PyTorch twins, and
the figure in Chromium, on twins trained here (seconds) and on the built site's.

In the browser tests a page is served from 127.0.0.1 only; every number the page shows
is compared with the PyTorch value, computed here, of the same graph on the same pixels.
"""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, RUN, needs_data, page_problems, serve

from ood_utils import cache, data, live, scores, train
from ood_utils.book import load_results
from ood_utils.models import predict_log_probs

sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402

K = scores.FLAG_K
SHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def twins():
    """Twins trained briefly (2000 digits, 1 epoch: a few seconds)."""
    cfg = train.TrainConfig(dataset="mnist", n_members=2, epochs=1, n_train=2000)
    ens, _ = train.train_ensemble(cfg, RUN, progress=False)
    return ens


@pytest.fixture(scope="module")
def images() -> dict[str, torch.Tensor]:
    return {
        name: data.load(name, "test", n=200, root=RUN.data_root).images
        for name in ("mnist", "fashionmnist")
    }


def example_inputs(images: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    noise = data.uniform_noise(2, seed=1)
    return live.examples(images["mnist"], images["fashionmnist"], noise[1:], noise)


@needs_data
def test_exported_graph_matches_the_pytorch_twins(twins, images, tmp_path):
    """On 200 test images of each dataset plus the examples: log-probabilities within
    1e-4 of PyTorch's, identical flags, disagreements and (within 1e-4) scores."""
    ort = pytest.importorskip("onnxruntime")
    ref = scores.reference(scores.twin_score(predict_log_probs(twins, images["mnist"])))
    graph = live.TwinsGraph(twins, ref, K)
    x = torch.cat(
        [
            images["mnist"],
            images["fashionmnist"],
            torch.stack(list(example_inputs(images).values())),
        ]
    )
    session = ort.InferenceSession(str(live.export(graph, tmp_path / "twins.onnx")))
    got = dict(zip(live.OUTPUTS, session.run(None, {"images": x.numpy()})))
    want = live.outputs(graph, x)
    assert np.abs(got["log_probs"] - want["log_probs"]).max() < 1e-4
    assert np.abs(got["score"] - want["score"]).max() < 1e-4
    assert np.array_equal(got["disagree"], want["disagree"])
    assert np.array_equal(got["flag"], want["flag"])
    assert 0 < want["flag"].sum() < len(x), "the comparison needs both verdicts"


@needs_data
def test_the_graph_computes_the_packages_formula(twins, images):
    """One source of truth: the graph's outputs are scores.twin_score,
    scores.disagreement and scores.flag of the twins' log-probabilities."""
    x = torch.cat([images["mnist"], images["fashionmnist"]])
    lp = predict_log_probs(twins, x)
    score = scores.twin_score(lp)
    ref = scores.reference(score[:200])
    out = live.outputs(live.TwinsGraph(twins, ref, K), x)
    assert torch.allclose(torch.from_numpy(out["log_probs"]), lp, atol=1e-6)
    assert torch.allclose(torch.from_numpy(out["score"]), score, atol=1e-6)
    disagree = scores.disagreement(lp)
    assert torch.equal(torch.from_numpy(out["disagree"]), disagree)
    flag = scores.flag(score, ref, K, disagree)
    assert torch.equal(torch.from_numpy(out["flag"]), flag)


def test_bad_inputs_say_what_is_wrong():
    x = torch.zeros(3, 1, 28, 28)
    with pytest.raises(ValueError, match="fooling must be"):
        live.examples(x, x, torch.zeros(0, 1, 28, 28), x)
    ens = train.make_ensemble(
        train.TrainConfig(dataset="mnist", n_members=3, n_train=10)
    )
    with pytest.raises(ValueError, match="two twins"):
        live.TwinsGraph(ens, 0.1)


def test_a_build_without_node_still_stages_and_says_so(tmp_path):
    """No runtime installed: nothing copied, the build goes on (the figure says what to
    install, see test_figure_explains_why_it_cannot_run)."""
    assert not build_book.stage_runtime(tmp_path / "site", tmp_path / "missing")
    assert (tmp_path / "site" / live.SITE_FOLDER).is_dir()
    runtime = ROOT / "node_modules" / "onnxruntime-web" / "dist"
    if runtime.exists():
        assert build_book.stage_runtime(tmp_path / "site", runtime)
        staged = sorted(
            p.name for p in (tmp_path / "site" / live.SITE_FOLDER).iterdir()
        )
        assert staged == sorted(live.RUNTIME_FILES)


# ---- in Chromium ------------------------------------------------------------

READ = """() => {
  const out = {};
  document.querySelectorAll('.twins-live [data-out]').forEach(e => {
    if (e.dataset.value !== undefined) out[e.dataset.out] = JSON.parse(e.dataset.value);
  });
  return out;
}"""


def write_page(folder: Path, figure: live.LiveFigure) -> Path:
    """A page like the site's: ``data-content_root`` set, the figure in its body."""
    page = folder / "notebooks" / "page.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        '<!DOCTYPE html><html data-content_root="../"><head><meta charset="utf-8">'
        "<title>live</title><link rel='icon' href='data:,'></head><body><article>"
        f"{figure._repr_html_()}</article></body></html>"
    )
    return page


def expected(figure_data: dict, graph: live.TwinsGraph) -> list[dict]:
    """PyTorch's outputs for each example's pixels, as the page shows them."""
    pixels = [
        np.frombuffer(base64.b64decode(ex["pixels"]), "<f4").reshape(1, 28, 28)
        for ex in figure_data["examples"]
    ]
    out = live.outputs(graph, torch.from_numpy(np.stack(pixels).copy()))
    return [live._result(out, i) for i in range(len(pixels))]


def assert_same(shown: dict, want: dict, where: str) -> None:
    """Within 1e-3 (relative for the ratio, which can be in the thousands)."""
    for key in ("p1", "p2"):
        assert np.abs(np.array(shown[key]) - np.array(want[key])).max() < 1e-3, where
    assert abs(shown["score"] - want["score"]) < 1e-3, where
    assert abs(shown["ratio"] - want["ratio"]) < 1e-3 * max(1.0, want["ratio"]), where
    assert shown["disagree"] == want["disagree"] and shown["flag"] == want["flag"], (
        where
    )


def watch(page, base: str) -> list[str]:
    """What goes wrong on ``page`` (:func:`conftest.page_problems`), and every request
    that leaves ``base``."""
    problems = page_problems(page)
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(base) or r.url.startswith("data:")
            else problems.append(f"request outside {base}: {r.url}")
        ),
    )
    return problems


def start(page) -> None:
    page.click(".twins-live button.tl-start")
    page.wait_for_function(
        "window.twinsLive && window.twinsLive.session && window.twinsLive.times.length",
        timeout=60_000,
    )


def examples_match(page, want: list[dict]) -> None:
    buttons = page.locator(".twins-live button.tl-example")
    assert buttons.count() == len(want)
    for i in range(len(want)):
        n = page.evaluate("window.twinsLive.times.length")
        buttons.nth(i).click()
        page.wait_for_function(f"window.twinsLive.times.length > {n}")
        page.wait_for_function("!window.twinsLive.busy")
        assert_same(page.evaluate(READ), want[i], buttons.nth(i).inner_text())


def draw(page, points: list[tuple[float, float]]) -> None:
    """A mouse stroke through ``points`` (fractions of the pad's side)."""
    box = page.locator(".twins-live canvas.tl-pad").bounding_box()
    xy = [
        (box["x"] + u * box["width"], box["y"] + v * box["height"]) for u, v in points
    ]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.wait_for_function("!window.twinsLive.busy")
    page.wait_for_timeout(100)
    page.wait_for_function("!window.twinsLive.busy")


SEVEN = [(0.2, 0.2), (0.8, 0.2), (0.45, 0.85)]


def assert_mnist_like(pixels: list[float]) -> None:
    """The drawing as the twins see it: largest side 20 pixels, centre of mass at the
    centre of 28x28 (within a pixel), as MNIST's digits."""
    x = np.array(pixels).reshape(28, 28)
    rows, cols = np.nonzero(x > 0)
    side = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    assert 19 <= side <= 21, side
    cy, cx = (np.indices(x.shape) * x).sum((1, 2)) / x.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1, (cy, cx)


@needs_data
def test_figure_in_the_browser_equals_pytorch(twins, images, tmp_path, browser):
    """Served from 127.0.0.1 with the runtime: each example button shows PyTorch's
    numbers; a drawn stroke changes them and reaches the twins MNIST-like; no console
    error; nothing is requested before Start, nothing from elsewhere after."""
    runtime = ROOT / "node_modules" / "onnxruntime-web" / "dist"
    if not runtime.exists():
        pytest.skip("onnxruntime-web is not installed (make env, with npm)")
    site = tmp_path / "site"
    build_book.stage_runtime(site / "_static", runtime)
    ref = scores.reference(scores.twin_score(predict_log_probs(twins, images["mnist"])))
    run = RUN.replace(site_dir=site / "_static")
    figure = live.figure(run, twins, ref, K, example_inputs(images))
    assert figure.manifest["model"] and figure.manifest["runtime"]
    write_page(site, figure)
    want = expected(figure.manifest, live.TwinsGraph(twins, ref, K))
    with serve(site) as base:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        problems = watch(page, base)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(f"{base}/notebooks/page.html", wait_until="networkidle")
        assert not [u for u in requested if "/_static/" in u], requested
        start(page)
        examples_match(page, want)
        before = page.evaluate(READ)
        draw(page, SEVEN)
        assert page.evaluate(READ) != before
        assert_mnist_like(page.evaluate("window.twinsLive.input"))
        page.close()
    assert not problems, problems


@needs_data
@pytest.mark.parametrize("case", ["no runtime", "file", "not built"])
def test_figure_explains_why_it_cannot_run(twins, images, tmp_path, browser, case):
    """Where the graph cannot run, the figure says why and what to do, and its example
    buttons show the PyTorch outputs stored at build time."""
    ref = scores.reference(scores.twin_score(predict_log_probs(twins, images["mnist"])))
    site = tmp_path / "site"
    build_book.stage_runtime(site / "_static", tmp_path / "missing")
    run = RUN.replace(site_dir=None if case == "not built" else site / "_static")
    figure = live.figure(run, twins, ref, K, example_inputs(images))
    if case == "file":  # a runtime is there, but a page from disk cannot load it
        figure.manifest["runtime"] = [
            {"file": f, "bytes": 1} for f in live.RUNTIME_FILES
        ]
    page_file = write_page(site, figure)
    message = {
        "no runtime": live.NO_RUNTIME,
        "file": "python -m http.server -d _build/html",
        "not built": "make book",
    }[case]
    with serve(site) as base:
        page = browser.new_page()
        problems = watch(page, "file://" if case == "file" else base)
        url = page_file.as_uri() if case == "file" else f"{base}/notebooks/page.html"
        page.goto(url)
        status = page.locator(".twins-live .twins-live-status").inner_text()
        assert message in status, status
        assert page.locator(".twins-live button.tl-start").is_disabled()
        buttons = page.locator(".twins-live button.tl-example")
        for i, ex in enumerate(figure.manifest["examples"]):
            buttons.nth(i).click()
            assert page.evaluate(READ) == json.loads(json.dumps(ex["torch"]))
        page.close()
    assert not problems, problems


# ---- on the built site ------------------------------------------------------

CHAPTER = "notebooks/03_kl_calibration"


def chapter_figure(page) -> dict:
    return json.loads(page.locator(".twins-live script.twins-live-data").text_content())


@pytest.mark.notebooks
def test_live_figure_on_the_built_chapter(site, browser):
    """Chapter 3 as built: the figure's files load only on Start; each example equals
    the chapter's twins in PyTorch; a drawing changes the outputs; the median in-page
    inference time is printed; screenshots of a drawn digit and a FashionMNIST item."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    problems = watch(page, site)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{site}/{CHAPTER}.html", wait_until="networkidle")
    assert not [u for u in requested if f"/_static/{live.SITE_FOLDER}/" in u]
    manifest = chapter_figure(page)
    assert manifest["model"] and manifest["runtime"], "the build exported no figure"
    # the chapter's reference, the chapter's twins (from the cache the build filled)
    recorded = load_results(RUN)["03_kl_calibration"]["results"]
    assert manifest["ref"] == recorded["reference (nats)"]["value"]
    twins, _ = cache.get_ensemble(
        train.TrainConfig.from_profile(RUN.profile, dataset="mnist", n_members=2), RUN
    )
    want = expected(manifest, live.TwinsGraph(twins, manifest["ref"], manifest["k"]))
    start(page)
    loaded = [u for u in requested if f"/_static/{live.SITE_FOLDER}/" in u]
    size = manifest["model"]["bytes"] + sum(f["bytes"] for f in manifest["runtime"])
    examples_match(page, want)
    fig = page.locator("figure:has(.twins-live)")
    page.locator(".twins-live button.tl-example", has_text="FashionMNIST").click()
    page.wait_for_function("!window.twinsLive.busy")
    SHOTS.mkdir(parents=True, exist_ok=True)
    fig.screenshot(path=str(SHOTS / "live-fashionmnist.png"))
    page.click(".twins-live button:has-text('Clear')")
    before = page.evaluate(READ)
    draw(page, SEVEN)
    assert page.evaluate(READ) != before, "a drawn stroke changed nothing"
    assert_mnist_like(page.evaluate("window.twinsLive.input"))
    fig.screenshot(path=str(SHOTS / "live-drawn-digit.png"))
    page.evaluate("window.twinsLive.times.length = 0")
    page.evaluate(
        "async () => { const t = window.twinsLive, x = Float32Array.from(t.input);"
        " for (let i = 0; i < 50; i++) await t.infer(x); }"
    )
    times = page.evaluate("window.twinsLive.times")
    print(
        f"\nlive figure: {size / 1e6:.1f} MB on Start ({len(loaded)} files), median "
        f"inference {statistics.median(times):.2f} ms over {len(times)} runs"
    )
    page.close()
    assert not problems, problems


@pytest.mark.notebooks
def test_live_figure_by_touch_on_a_phone(site, browser):
    """At 390 px with a touch screen: the figure fits, starts by a tap, and a finger's
    stroke (touch events) changes the outputs."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    problems = watch(page, site)
    page.goto(f"{site}/{CHAPTER}.html", wait_until="networkidle")
    live_box = page.locator(".twins-live").bounding_box()
    assert live_box["x"] >= 0 and live_box["x"] + live_box["width"] <= 390 + 1
    page.locator(".twins-live button.tl-start").tap()
    page.wait_for_function(
        "window.twinsLive.session && window.twinsLive.times.length", timeout=60_000
    )
    page.wait_for_function("!window.twinsLive.busy")
    page.click(".twins-live button:has-text('Clear')")
    page.wait_for_function("!window.twinsLive.busy")
    before = page.evaluate(READ)
    pad = page.locator(".twins-live canvas.tl-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    cdp = context.new_cdp_session(page)
    path = [(0.5, 0.15 + 0.07 * i) for i in range(11)]  # a "1"
    for i, (u, v) in enumerate(path):
        kind = "touchStart" if i == 0 else "touchMove"
        point = {"x": box["x"] + u * box["width"], "y": box["y"] + v * box["height"]}
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_timeout(200)
    page.wait_for_function("!window.twinsLive.busy")
    assert page.evaluate(READ) != before, "a finger's stroke changed nothing"
    assert sum(page.evaluate("window.twinsLive.input")) > 0
    context.close()
    assert not problems, problems


def test_runtime_is_pinned_and_carried():
    """onnxruntime-web is pinned by package-lock.json (installed by make env), and the
    files the page loads are the ones live.RUNTIME_FILES names."""
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/onnxruntime-web"]["version"]
    assert (
        pinned
        == json.loads((ROOT / "package.json").read_text())["dependencies"][
            "onnxruntime-web"
        ]
    )
    assert "npm ci" in (ROOT / "Makefile").read_text()
    dist = ROOT / "node_modules" / "onnxruntime-web" / "dist"
    if dist.exists():
        assert all((dist / f).exists() for f in live.RUNTIME_FILES)
    assert shutil.which("node") or not dist.exists()
