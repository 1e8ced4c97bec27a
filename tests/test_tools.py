import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import full_profile  # noqa: E402


def test_results_table_from_chapter_json(tmp_path):
    row = {"chapter": "05_mnist_fashion", "profile": "full", "device": "cuda", "machine": "x86_64",
           "torch": "2.14.1", "python": "3.11", "time": "2026-11-23 12:00:00",
           "results": {"cnn AUROC": {"value": 0.9612345, "original": 0.969},
                       "joint attack": {"value": 1.0, "original": "about 0%"}}}
    (tmp_path / "05_mnist_fashion.json").write_text(json.dumps(row))
    md = full_profile.table(tmp_path, {"05_mnist_fashion": 61.0})
    assert "# Results: full profile" in md and "on cuda" in md
    assert "| 05_mnist_fashion | cnn AUROC | 0.961 | 0.969 |" in md
    assert "| 05_mnist_fashion | joint attack | 1.000 | about 0% |" in md
    assert "| total | 61 |" in md
