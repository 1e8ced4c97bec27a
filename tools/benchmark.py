"""Measure the package's speed against plain PyTorch, as ratios, and write the table.

    python tools/benchmark.py          # writes book/benchmark.md (the performance
                                       # appendix)
    python tools/benchmark.py --quick  # fewer steps, for a smoke test

Three comparisons, each in one run on the same machine and data:

(a) twin training throughput (images per second, both twins updated): the package's loop
    (tensor-resident data, both members in one step) against the PyTorch-examples loop
    (a torchvision ``MNIST`` dataset with per-sample ``ToTensor`` + ``Normalize``
    through a ``DataLoader``, each of the two models with its own optimiser step);
(b) ensemble training time per step for N = 1, 2, 4, 8 with the package's joint step,
    against N sequential single-model trainings (N times the one-model step);
(c) scoring throughput (images per second) of the twin detector against pytorch-ood's
    ``MaxSoftmax`` on member 0 of the same twins;
(d) the CNN's memory layout: the package's channels-last weights against PyTorch's
    default (contiguous) layout, for scoring (images per second) and for one model's
    training step;
(e) the memory-allocator settings the book's kernels run with (``MALLOC_ENV`` in
    ``tools/run_notebooks.py``) against glibc's defaults, each in a fresh process: twin
    scoring (images per second) and a twin training step.

Not part of the test suite: timings depend on the machine. Data come from
``$OOD_DATA_ROOT``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ood_utils import data, train  # noqa: E402
from ood_utils.detectors import TwinDetector  # noqa: E402
from ood_utils.models import Ensemble, MnistCNN  # noqa: E402
from ood_utils.run import cpu_model, from_environment  # noqa: E402

OUT = ROOT / "book" / "benchmark.md"
BATCH = 64
#: Data folder and device from the environment, read once.
RUN = from_environment("benchmark")


def package_throughput(n_batches: int) -> float:
    """Images/s of the package's twin training loop over ``n_batches`` batches."""
    cfg = train.TrainConfig(dataset="mnist", n_members=2, batch_size=BATCH)
    imgs = data.load("mnist", "train", n=n_batches * BATCH, root=RUN.data_root)
    ens = train.make_ensemble(cfg).train()
    opt = torch.optim.Adadelta(ens.parameters(), lr=cfg.lr)
    t0 = time.perf_counter()
    for x, y in data.batches(
        imgs.images,
        imgs.labels,
        BATCH,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    ):
        train.joint_step(ens, opt, x, y)
    return n_batches * BATCH / (time.perf_counter() - t0)


def examples_throughput(n_batches: int) -> float:
    """Images/s of the PyTorch-examples loop (DataLoader, per-sample transforms) for two
    models."""
    import torchvision
    from torchvision import transforms

    tf = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    ds = torchvision.datasets.MNIST(
        str(RUN.data_root), train=True, download=True, transform=tf
    )
    ds = torch.utils.data.Subset(ds, range(n_batches * BATCH))
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True)
    models = [MnistCNN(), MnistCNN()]
    opts = [torch.optim.Adadelta(m.parameters(), lr=1.0) for m in models]
    for m in models:
        m.train()
    t0 = time.perf_counter()
    for x, y in loader:
        for model, opt in zip(models, opts):
            opt.zero_grad()
            loss = F.nll_loss(F.log_softmax(model(x), -1), y)
            loss.backward()
            opt.step()
    return n_batches * BATCH / (time.perf_counter() - t0)


def step_seconds(n_members: int, n_steps: int) -> float:
    cfg = train.TrainConfig(dataset="mnist", n_members=n_members, batch_size=BATCH)
    return train.time_steps(cfg, n_steps=n_steps, run=RUN)


@torch.inference_mode()
def scoring_throughput(n_images: int, batch: int = 1000) -> tuple[float, float]:
    """Images/s of the twin detector and of pytorch-ood's MaxSoftmax on member 0."""
    from pytorch_ood.detector import MaxSoftmax

    torch.manual_seed(0)
    twins = Ensemble([MnistCNN(), MnistCNN()]).eval()
    x = data.load("mnist", "test", n=n_images, root=RUN.data_root).images
    twin, msp = TwinDetector(twins), MaxSoftmax(twins[0])
    rates = []
    for detector in (twin, msp):
        detector(x[:batch])  # warm-up
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            detector(x[i : i + batch])
        rates.append(len(x) / (time.perf_counter() - t0))
    return rates[0], rates[1]


def layout_rates(
    n_images: int, n_steps: int, batch: int = 1000
) -> dict[str, tuple[float, float]]:
    """(d) ``{"scoring": (channels-last, contiguous) images/s, "training": ... s per
    step}``."""
    x = data.load("mnist", "test", n=n_images, root=RUN.data_root).images
    tr = data.load("mnist", "train", n=(n_steps + 3) * BATCH, root=RUN.data_root)
    out: dict[str, list[float]] = {"scoring": [], "training": []}
    for layout in (torch.channels_last, torch.contiguous_format):
        torch.manual_seed(0)
        model = MnistCNN().to(memory_format=layout)
        with torch.inference_mode():
            model.eval()(x[:batch])  # warm-up
            t0 = time.perf_counter()
            for i in range(0, len(x), batch):
                model(x[i : i + batch])
            out["scoring"].append(len(x) / (time.perf_counter() - t0))
        model.train()
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
        elapsed = 0.0
        for i, (xb, yb) in enumerate(data.batches(tr.images, tr.labels, BATCH)):
            t0 = time.perf_counter()
            opt.zero_grad()
            F.nll_loss(F.log_softmax(model(xb), -1), yb).backward()
            opt.step()
            elapsed += (time.perf_counter() - t0) if i >= 3 else 0.0  # 3 warm-up steps
        out["training"].append(elapsed / n_steps)
    return {k: (v[0], v[1]) for k, v in out.items()}


def probe(n_images: int, n_steps: int) -> dict[str, float]:
    """Twin scoring (images/s, batches of 1000) and a twin training step (s), in this
    process."""
    from ood_utils.models import predict_log_probs

    torch.manual_seed(0)
    twins = Ensemble([MnistCNN(), MnistCNN()]).eval()
    x = data.load("mnist", "test", n=n_images, root=RUN.data_root).images
    predict_log_probs(twins, x[:1000])  # warm-up
    t0 = time.perf_counter()
    predict_log_probs(twins, x)
    rate = len(x) / (time.perf_counter() - t0)
    return {"scoring": rate, "training": step_seconds(2, n_steps)}


def allocator_rates(n_images: int, n_steps: int) -> dict[str, tuple[float, float]]:
    """(e) ``{"scoring": (kernels' settings, glibc defaults) images/s, "training": ... s
    per step}``, each measured by :func:`probe` in a fresh process (malloc reads its
    settings at start)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from run_notebooks import MALLOC_ENV

    plain = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
    runs = []
    for env in ({**plain, **MALLOC_ENV}, plain):
        out = subprocess.run(
            [sys.executable, __file__, "--probe", str(n_images), str(n_steps)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return {k: (runs[0][k], runs[1][k]) for k in ("scoring", "training")}


def table(quick: bool = False) -> str:
    n_batches, n_steps, n_images = (10, 5, 2000) if quick else (100, 30, 10000)
    ours, theirs = package_throughput(n_batches), examples_throughput(n_batches)
    steps = {n: step_seconds(n, n_steps) for n in (1, 2, 4, 8)}
    twin_rate, msp_rate = scoring_throughput(n_images)
    layout = layout_rates(n_images, n_steps)
    alloc = allocator_rates(n_images, n_steps)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lines = [
        "Measured by `python tools/benchmark.py` on "
        f"{cpu_model()} ({torch.get_num_threads()} "
        f"threads, {device}), torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| comparison | package | baseline | ratio |",
        "|---|---|---|---|",
        f"| (a) twin training, images/s ({n_batches} batches of {BATCH}) | "
        f"{ours:,.0f} | {theirs:,.0f} (PyTorch-examples loop) | {ours / theirs:.2f}x |",
    ]
    for n, t in steps.items():
        lines.append(
            f"| (b) N = {n}, seconds per step ({n_steps} steps) | {t:.4f} | "
            f"{n * steps[1]:.4f} ({n} sequential) | {n * steps[1] / t:.2f}x |"
        )
    lines.append(
        f"| (c) scoring, images/s ({n_images:,} images) | {twin_rate:,.0f} (twin "
        f"detector) | {msp_rate:,.0f} (pytorch-ood MaxSoftmax) | "
        f"{twin_rate / msp_rate:.2f}x |"
    )
    for label, rates, names in (
        ("(d) one CNN", layout, ("channels-last", "default layout")),
        ("(e) twins", alloc, ("kernels' malloc settings", "glibc defaults")),
    ):
        ours_s, base_s = rates["scoring"]
        lines.append(
            f"| {label}, scoring, images/s ({n_images:,} images) | {ours_s:,.0f} "
            f"({names[0]}) | {base_s:,.0f} ({names[1]}) | {ours_s / base_s:.2f}x |"
        )
        ours_t, base_t = rates["training"]
        lines.append(
            f"| {label}, seconds per training step ({n_steps} steps) | {ours_t:.4f} "
            f"({names[0]}) | {base_t:.4f} ({names[1]}) | {base_t / ours_t:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def arguments() -> argparse.ArgumentParser:
    """The command line (the book's commands are parsed with it in the tests)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps: a smoke test")
    parser.add_argument("--out", type=Path, default=OUT)
    # (e): one measurement, as JSON, in this process
    parser.add_argument(
        "--probe",
        nargs=2,
        type=int,
        metavar=("IMAGES", "STEPS"),
        help=argparse.SUPPRESS,
    )
    return parser


def main() -> int:
    args = arguments().parse_args()
    if args.probe:
        print(json.dumps(probe(*args.probe)))
        return 0
    md = table(args.quick)
    print(md)
    args.out.write_text(md)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
