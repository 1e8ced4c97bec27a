"""Chapter 3's live figure: the twins running in the reader's browser.

The chapter's twins become one ONNX graph (:class:`TwinsGraph`, :func:`export`) that
takes raw images ``(B, 1, 28, 28)`` in ``[0, 1]`` and returns everything the figure
shows: both twins' log-probabilities, the twin score, its ratio to the reference, the
disagreement and the flag. Each is computed by the package's own functions
(:func:`ood_utils.scores.twin_score`, :func:`~ood_utils.scores.disagreement`,
:func:`~ood_utils.scores.flag`), traced into the graph, so the page's numbers come from
the same formula as the chapter's; the page itself computes nothing but the input.

The page runs the graph with onnxruntime-web, single-threaded WebAssembly (no
cross-origin-isolation headers needed). The book's build (``tools/build_book.py``)
copies the runtime from ``node_modules`` (``make env`` installs it from
``package-lock.json``) into ``run.site_dir`` before the chapters run; :func:`figure`
exports the graph there, and the site serves both from ``_static/live/``. Nothing loads
until the reader presses *Start*.

Example (chapter 3)::

    live.figure(run, twins, ref, k, live.examples(mnist, fashion, fooling_image))
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import scores
from .models import Ensemble, eval_mode
from .run import Run

#: The live figure's folder, under the site's ``_static`` and under ``run.site_dir``.
SITE_FOLDER = "live"
#: The graph the build exports (weights inside the file).
MODEL_FILE = "twins.onnx"
#: The files of onnxruntime-web the page loads: the JavaScript API with its WebAssembly
#: glue, and the single-threaded-capable WebAssembly module.
RUNTIME_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
#: The graph's outputs, in order, with their shapes for a batch of B images.
OUTPUTS = {
    "log_probs": "(2, B, 10)",
    "score": "(B,)",
    "ratio": "(B,)",
    "disagree": "(B,)",
    "flag": "(B,)",
}
#: What to install where the build found no browser runtime.
NO_RUNTIME = (
    "This build had no browser runtime: install Node.js 18 or newer with npm, run "
    "`make env` (it installs onnxruntime-web from package-lock.json), then `make book`."
)


class TwinsGraph(nn.Module):
    """Two twins and the flag rule as one module: what the page runs.

    Args:
        twins: an :class:`~ood_utils.models.Ensemble` of two members.
        ref: the in-distribution reference (:func:`ood_utils.scores.reference`).
        k: the flag rule's multiplier.

    ``forward(images: (B, 1, 28, 28))`` returns the tensors of :data:`OUTPUTS`.
    """

    def __init__(self, twins: Ensemble, ref: float, k: float = scores.FLAG_K) -> None:
        super().__init__()
        if len(twins) != 2:
            raise ValueError(f"the live figure shows two twins, got {len(twins)}")
        if not (ref > 0 and k > 0):
            raise ValueError(f"ref and k must be positive, got ref={ref}, k={k}")
        # the same members, without the input check (data-dependent: not traceable)
        self.twins = Ensemble(list(twins.members), check_input=None)
        self.ref, self.k = float(ref), float(k)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_probs = self.twins(images)  # (2, B, 10)
        score = scores.twin_score(log_probs, validate=False)
        disagree = scores.disagreement(log_probs, validate=False)
        flag = scores.flag(score, self.ref, self.k, disagree)
        return log_probs, score, score / self.ref, disagree, flag


def outputs(graph: TwinsGraph, images: torch.Tensor) -> dict[str, np.ndarray]:
    """The graph's outputs in PyTorch for ``images: (B, 1, 28, 28)``, by name."""
    with torch.no_grad(), eval_mode(graph):
        values = graph(images.float())
    return {name: v.numpy() for name, v in zip(OUTPUTS, values)}


def export(graph: TwinsGraph, path: Path) -> Path:
    """Write ``graph`` to ``path`` as one ONNX file (weights inside, any batch size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with eval_mode(graph):
        torch.onnx.export(
            graph,
            (torch.zeros(2, 1, 28, 28),),
            str(path),
            dynamo=True,
            external_data=False,
            verbose=False,
            input_names=["images"],
            output_names=list(OUTPUTS),
            dynamic_shapes=({0: batch},),
        )
    return path


def examples(
    digits: torch.Tensor,
    clothes: torch.Tensor,
    fooling: torch.Tensor,
    noise: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The figure's example inputs, each ``(1, 28, 28)`` in ``[0, 1]``, by button label.

    Args:
        digits, clothes: MNIST and FashionMNIST test images ``(B, 1, 28, 28)``; the
            first of each is used (the digit also turned by 90 degrees).
        fooling: fooling images ``(B, 1, 28, 28)`` (chapter 1's attack); the first.
        noise: uniform-noise images ``(B, 1, 28, 28)``; the first.
    """
    for name, x in {
        "digits": digits,
        "clothes": clothes,
        "fooling": fooling,
        "noise": noise,
    }.items():
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28) or len(x) == 0:
            raise ValueError(
                f"{name} must be (B >= 1, 1, 28, 28), got {tuple(x.shape)}"
            )
    digit = digits[0].float()
    return {
        "an MNIST digit": digit,
        "a FashionMNIST item": clothes[0].float(),
        "uniform noise": noise[0].float(),
        "a fooling image": fooling[0].float(),
        "the digit turned 90°": torch.rot90(digit, 1, (-2, -1)).contiguous(),
        "a blank image": torch.zeros(1, 28, 28),
    }


def _pixels(image: torch.Tensor) -> str:
    """``(1, 28, 28)`` float32 pixels, base64 of their little-endian bytes (exact)."""
    return base64.b64encode(image.float().numpy().astype("<f4").tobytes()).decode()


def _result(out: dict[str, np.ndarray], i: int) -> dict:
    """Input ``i``'s outputs as the page shows them: probabilities, not logs."""
    return {
        "p1": np.exp(out["log_probs"][0, i]).round(7).tolist(),
        "p2": np.exp(out["log_probs"][1, i]).round(7).tolist(),
        "score": float(out["score"][i]),
        "ratio": float(out["ratio"][i]),
        "disagree": bool(out["disagree"][i]),
        "flag": bool(out["flag"][i]),
    }


def _file_entry(path: Path) -> dict | None:
    return {"file": path.name, "bytes": path.stat().st_size} if path.exists() else None


def publish(run: Run, graph: TwinsGraph) -> dict:
    """Export ``graph`` into the build's site folder and describe what the page loads.

    Returns ``{"model": {file, bytes} | None, "runtime": [{file, bytes}] | None}``:
    ``None`` for the model outside a build (``run.site_dir`` unset), for the runtime
    where the build found none (no Node.js).
    """
    if run.site_dir is None:
        return {"model": None, "runtime": None}
    folder = Path(run.site_dir) / SITE_FOLDER
    model = export(graph, folder / MODEL_FILE)
    runtime = [_file_entry(folder / name) for name in RUNTIME_FILES]
    return {
        "model": _file_entry(model),
        "runtime": runtime if all(runtime) else None,
    }


@dataclass(frozen=True, repr=False)
class LiveFigure:
    """The live figure's HTML (``_repr_html_``): its data, styles and script inline."""

    manifest: dict

    def __repr__(self) -> str:
        names = ", ".join(ex["name"] for ex in self.manifest["examples"])
        return f"LiveFigure(twins with reference {self.manifest['ref']:.4g}; {names})"

    def _repr_html_(self) -> str:
        web = resources.files("ood_utils") / "web"
        data = json.dumps(self.manifest, separators=(",", ":")).replace("</", "<\\/")
        return (
            f"<style>{(web / 'twins_live.css').read_text()}</style>"
            '<div class="twins-live">'
            f'<script type="application/json" class="twins-live-data">{data}</script>'
            '<p class="twins-live-status">This figure needs JavaScript. '
            f"{html.escape(self.manifest['offline'])}</p></div>"
            f"<script>{(web / 'twins_live.js').read_text()}</script>"
        )


def figure(
    run: Run,
    twins: Ensemble,
    ref: float,
    k: float,
    inputs: dict[str, torch.Tensor],
) -> LiveFigure:
    """Chapter 3's live figure for ``twins`` with the flag rule ``score > k * ref`` or
    disagreement, and example buttons for ``inputs`` (:func:`examples`).

    Inside the book's build it also writes the graph beside the runtime
    (:func:`publish`); the examples' PyTorch outputs travel in the page, so that it can
    show them where the graph cannot run.
    """
    graph = TwinsGraph(twins, ref, k)
    batch = torch.stack([x.reshape(1, 28, 28) for x in inputs.values()])
    out = outputs(graph, batch)
    files = publish(run, graph)
    manifest = {
        "ref": float(ref),
        "k": float(k),
        "folder": SITE_FOLDER,
        **files,
        "no_runtime": NO_RUNTIME,
        "offline": (
            "The live figure runs on the book's website, built by `make book`; below "
            "are the examples' outputs, computed in PyTorch when this page was built."
        ),
        "examples": [
            {"name": name, "pixels": _pixels(x), "torch": _result(out, i)}
            for i, (name, x) in enumerate(inputs.items())
        ],
    }
    return LiveFigure(manifest)
