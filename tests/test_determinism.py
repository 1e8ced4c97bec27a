"""Same profile and seed, two separate runs on the CPU: bit-identical weights, scores
and metrics.

Each run is a fresh Python process with its own empty model cache, so both train from
scratch: the chapter-5 pipeline in miniature (train twins, score MNIST and FashionMNIST,
reference, flags, AUROC). The outputs are compared exactly (SHA-256 of the raw bytes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import needs_data

PIPELINE = """
import hashlib, json
import torch
from ood_utils import cache, data, metrics, scores, train
from ood_utils.models import predict_log_probs
from ood_utils.run import from_environment, seed_everything

seed_everything(0)
run = from_environment("determinism")
cfg = train.TrainConfig(dataset="mnist", n_members=2, epochs=1, n_train=512, seed=0)
twins, hist = cache.get_ensemble(cfg, run, progress=False)
mnist = data.load("mnist", "test", n=500, root=run.data_root).images
fashion = data.load("fashionmnist", "test", n=500, root=run.data_root).images
lp_in, lp_out = predict_log_probs(twins, mnist), predict_log_probs(twins, fashion)
s_in, s_out = scores.twin_score(lp_in), scores.twin_score(lp_out)
ref = scores.reference(s_in)
flags = scores.flag(s_out, ref, 10, scores.disagreement(lp_out))
digest = lambda t: hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()
print(json.dumps({
    "weights": digest(torch.cat([p.flatten() for p in twins.parameters()])),
    "loss": hist.loss, "scores_in": digest(s_in), "scores_out": digest(s_out),
    "reference": ref.hex(), "flags": digest(flags),
    "auroc": metrics.auroc(s_in, s_out).hex()}))
"""


def run_once(cache: Path) -> dict:
    env = {**os.environ, "OOD_CACHE_DIR": str(cache), "OOD_DEVICE": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", PIPELINE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_data
def test_two_runs_give_bit_identical_numbers(tmp_path):
    first, second = run_once(tmp_path / "a"), run_once(tmp_path / "b")
    assert first == second
    # both trained
    assert list((tmp_path / "a").glob("*.pt")) and list((tmp_path / "b").glob("*.pt"))
