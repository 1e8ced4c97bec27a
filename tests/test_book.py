import json

import pytest
import torch

from ood_utils import book


def test_say_displays_markdown(capsys):
    book.say("**42**")     # outside a notebook, IPython's display prints the object's repr
    assert "Markdown" in capsys.readouterr().out


def test_record_writes_one_json_per_chapter_and_profile(monkeypatch, tmp_path):
    monkeypatch.setenv(book.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv("OOD_PROFILE", "fast")
    path = book.record("01_x", {"accuracy": 0.97, "success": (1.0, 1.0), "auroc": (0.9, "about 0.9")})
    assert path == tmp_path / "fast" / "01_x.json"
    data = json.loads(path.read_text())
    assert data["profile"] == "fast" and "torch" in data and "device" in data
    assert data["results"]["accuracy"] == {"value": 0.97, "original": None}
    assert data["results"]["success"] == {"value": 1.0, "original": 1.0}
    assert data["results"]["auroc"]["original"] == "about 0.9"
    torch.manual_seed(3)
    data = json.loads(book.record("01_x", {"accuracy": 0.97}).read_text())
    assert data["seed"] == 3 and "CPU" in data["hardware"] or "cuda" in data["device"]
    assert data["torchvision"] != "not installed" and data["numpy"] != "not installed"
    with pytest.raises(ValueError, match="empty"):
        book.record("01_x", {})


def test_record_saves_tables_and_load_results_reads_them_back(monkeypatch, tmp_path):
    import pandas as pd

    monkeypatch.setenv(book.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv("OOD_PROFILE", "fast")
    assert book.load_results() == {}                     # nothing has run yet
    table = pd.DataFrame({"method": ["MSP", "twin"], "AUROC": [0.9, 0.95]})
    book.record("09_x", {"n": 2}, tables={"metrics": table})
    loaded = book.load_results("fast")
    assert list(loaded) == ["09_x"]
    pd.testing.assert_frame_equal(pd.DataFrame(loaded["09_x"]["tables"]["metrics"]), table)
    assert book.load_results("full") == {}
