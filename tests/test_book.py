import json

import pytest
import torch

from ood_utils import book
from ood_utils.run import from_environment


def test_say_displays_markdown(capsys):
    book.say("**42**")  # outside a notebook, IPython's display prints the object's repr
    assert "Markdown" in capsys.readouterr().out


def test_record_writes_one_json_per_chapter_and_profile(monkeypatch, tmp_path):
    run = from_environment(
        "01_x", environ={"OOD_RESULTS_DIR": str(tmp_path)}, device="cpu"
    )
    path = book.record(
        run, {"accuracy": 0.97, "success": (1.0, 1.0), "auroc": (0.9, "about 0.9")}
    )
    assert path == tmp_path / "fast" / "01_x.json"
    data = json.loads(path.read_text())
    assert data["profile"] == "fast" and "torch" in data and "device" in data
    assert data["results"]["accuracy"] == {"value": 0.97, "original": None}
    assert data["results"]["success"] == {"value": 1.0, "original": 1.0}
    assert data["results"]["auroc"]["original"] == "about 0.9"
    # the chapter's seed is the run's, whatever the generators did since
    torch.manual_seed(5)
    data = json.loads(book.record(run.replace(seed=3), {"accuracy": 0.97}).read_text())
    assert (
        data["seed"] == 3
        and data["chapter"] == "01_x"
        and "CPU" in data["hardware"]
        or "cuda" in data["device"]
    )
    assert data["torchvision"] != "not installed" and data["numpy"] != "not installed"
    with pytest.raises(ValueError, match="empty"):
        book.record(run, {})


def test_record_saves_tables_and_load_results_reads_them_back(monkeypatch, tmp_path):
    import pandas as pd

    run = from_environment(
        "09_x", environ={"OOD_RESULTS_DIR": str(tmp_path)}, device="cpu"
    )
    assert book.load_results(run) == {}  # nothing has run yet
    table = pd.DataFrame({"method": ["MSP", "twin"], "AUROC": [0.9, 0.95]})
    book.record(run, {"n": 2}, tables={"metrics": table})
    loaded = book.load_results(run, "fast")
    assert list(loaded) == ["09_x"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(loaded["09_x"]["tables"]["metrics"]), table
    )
    assert book.load_results(run, "full") == {}
