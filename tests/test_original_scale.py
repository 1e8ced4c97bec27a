"""The original-scale results (results/original-scale, written by tools/reproduce.py):
current, valid, and readable by the chapters."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from conftest import needs_data, random_log_probs

from ood_utils import cache, replication, scores
from ood_utils.run import ORIGINAL_SCALE_FOLDER

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ORIGINAL_SCALE_FOLDER
COMMITTED = sorted(FOLDER.glob("*.json")) if FOLDER.is_dir() else []


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_results_are_valid_and_current(path):
    """A file whose spec hash is not what the current code would use is stale: rerun
    it."""
    payload = replication.load_result(path)
    e, p = payload["experiment"], payload["protocol"]
    assert not payload["stale"], (
        f"{path.name} is stale: rerun `tools/reproduce.py --only {e} --protocol {p}`"
    )
    assert not payload["provenance"]["dirty"] or payload["provenance"]["allow_dirty"]
    assert set(payload["spec"]["trainings"]) == {
        t["name"] for t in payload["trainings"]
    }


def test_the_spec_hash_follows_what_is_trained_and_measured():
    base = replication.spec_hash(replication.experiment_spec("E2", "book"))
    assert base == replication.spec_hash(replication.experiment_spec("E2", "book"))
    assert base != replication.spec_hash(replication.experiment_spec("E2", "original"))
    cfgs = replication.experiment_trainings("E2", "original")
    # the original's scale
    assert all(c.n_train is None and c.epochs == 14 for c in cfgs.values())
    assert (
        cfgs["fashionmnist"].normalization == "mnist"
        and cfgs["mnist"].recipe == "adam-cyclic"
    )
    assert replication.experiment_trainings("E3", "original")["mnist"].shared_module
    # one ensemble of 8 per dataset, read as N = 2, 4, 8, under both protocols
    for protocol in replication.PROTOCOLS:
        e4 = replication.experiment_trainings("E4", protocol)
        assert {c.n_members for c in e4.values()} == {8} and set(e4) == {
            "mnist",
            "fashionmnist",
        }
    assert e4["mnist"].recipe == "adadelta"  # the book's
    original = replication.experiment_trainings("E4", "original")
    assert original["fashionmnist"].normalization == "mnist"
    assert original["mnist"].recipe == "adam-cyclic"


def test_each_spec_is_built_from_the_protocols_record():
    """The protocol's choices are in its record only: the spec of every experiment
    reads them from it, and changing the record changes the spec."""
    for p, record in replication.RECORDS.items():
        assert replication.protocol(p) is record
        for e in ("E2", "E2bis", "E3", "E4"):
            spec = replication.experiment_spec(e, p, replication.experiment_parts(e)[0])
            assert spec["rule"] == dataclasses.asdict(record.rule)
            assert spec["ranking"] == record.ranking
        e1 = replication.experiment_spec("E1", p)
        assert e1["attacks"] == dataclasses.asdict(record.attacks)
        assert e1["reference"] == replication.ATTACK_REFERENCES[record.attack_reference]
        assert ("joint attack grid" in e1) == (record.joint_grid is not None)
        assert [t for t in e1["trainings"]] == [
            replication.e1_pair_name(seed) for seed in record.e1_pair_seeds
        ]
        factors = replication.protocol_factors("E2", p, "fashionmnist")
        assert replication.flag_rule(factors) == record.rule
        assert (factors["recipe"], factors["network"]) == (
            record.recipe,
            record.network,
        )
    with pytest.raises(ValueError, match="unknown protocol 'paper'"):
        replication.protocol("paper")


def test_reproduce_runs_with_the_objects_of_the_protocols_record(monkeypatch, tmp_path):
    """``tools/reproduce.py`` takes the rule, ranking, attacks and reference it runs
    with from the record the spec is built from: the very objects."""
    sys.path.insert(0, str(ROOT / "tools"))
    import reproduce

    used = []
    real_trainings = replication.experiment_trainings
    monkeypatch.setenv("OOD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(
        replication,
        "experiment_trainings",
        lambda e, p, part=None: {
            k: dataclasses.replace(v, n_train=128, epochs=1)
            for k, v in real_trainings(e, p, part).items()
        },
    )
    monkeypatch.setattr(
        replication,
        "detection_numbers",
        lambda lp_in, lp_out, rule, ranking: used.append((rule, ranking)) or {},
    )
    monkeypatch.setattr(
        replication,
        "attack_numbers",
        lambda twins, ref, settings, progress: used.append((settings, ref)) or {},
    )
    monkeypatch.setattr(
        replication,
        "attack_reference",
        lambda lp, name: {"mean-score": 1.0}.get(name, 2.0),
    )
    for p in replication.PROTOCOLS:
        record = replication.RECORDS[p]
        monkeypatch.setitem(
            replication.RECORDS, p, dataclasses.replace(record, joint_grid=None)
        )
        record = replication.RECORDS[p]
        used.clear()
        reproduce.run_experiment("E2", p, torch.device("cpu"), progress=False)
        assert used and all(
            rule is record.rule and ranking == record.ranking for rule, ranking in used
        )
        used.clear()
        reproduce.run_experiment("E1", p, torch.device("cpu"), progress=False)
        reference = 1.0 if record.attack_reference == "mean-score" else 2.0
        assert len(used) == len(record.e1_pair_seeds) and all(
            settings is record.attacks and ref == reference for settings, ref in used
        )


def _payload(tmp_path: Path, **changes: object) -> Path:
    spec = replication.experiment_spec("E2", "book")
    payload = {
        "experiment": "E2",
        "protocol": "book",
        "numbers": {"mnist": {"AUROC": 0.97}},
        "provenance": {f: "x" for f in replication.PROVENANCE_FIELDS}
        | {"dirty": False},
        "spec": spec,
        "spec_hash": replication.spec_hash(spec),
        "trainings": [
            {"name": "mnist", "seconds": 60.0},
            {"name": "fashionmnist", "seconds": 60.0},
        ],
    }
    payload.update(changes)
    path = tmp_path / "E2-book.json"
    path.write_text(json.dumps(payload))
    return path


def test_a_result_file_is_validated_when_loaded(tmp_path):
    ok = replication.load_result(_payload(tmp_path))
    assert not ok["stale"] and "E2, book's protocol" in replication.provenance_line(ok)
    assert replication.load_result(_payload(tmp_path, spec_hash="0" * 16))["stale"]
    bad = {
        "a field missing": ({"numbers": None}, "numbers must be"),
        "no provenance fields": (
            {"provenance": {"commit": "abc"}},
            "provenance must hold",
        ),
        "an unknown experiment": ({"experiment": "E9"}, "unknown experiment"),
    }
    for _what, (change, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            replication.load_result(_payload(tmp_path, **change))
    path = _payload(tmp_path)
    data = json.loads(path.read_text())
    del data["trainings"]
    path.write_text(json.dumps(data))
    with pytest.raises(
        ValueError, match=r"E2-book.json: missing fields \['trainings'\]"
    ):
        replication.load_result(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable JSON file"):
        replication.load_result(path)
    renamed = tmp_path / "E3-book.json"
    _payload(tmp_path).rename(renamed)
    with pytest.raises(ValueError, match="not what its name says"):
        replication.load_result(renamed)


def test_an_experiment_kept_in_parts_is_read_back_as_one_result(tmp_path):
    """E4 is written one file per dataset (a run of hours is kept piece by piece);
    load_results merges the parts present and the note names the missing ones."""
    assert replication.experiment_parts("E4") == replication.DATASETS
    assert replication.experiment_parts("E2") == (None,)
    with pytest.raises(ValueError, match="E2 has no part 'mnist'"):
        replication.experiment_trainings("E2", "book", "mnist")
    specs = {
        part: replication.experiment_spec("E4", "original", part)
        for part in replication.DATASETS
    }
    assert set(specs["mnist"]["trainings"]) == {"mnist"}
    assert replication.spec_hash(specs["mnist"]) != replication.spec_hash(
        specs["fashionmnist"]
    )
    for part, spec in specs.items():
        payload = {
            "experiment": "E4",
            "protocol": "original",
            "part": part,
            "numbers": {f"{part} N=2": {"AUROC": 0.9}},
            "provenance": {f: "x" for f in replication.PROVENANCE_FIELDS}
            | {"dirty": False},
            "spec": spec,
            "spec_hash": replication.spec_hash(spec),
            "trainings": [{"name": part, "seconds": 60.0}],
        }
        path = replication.result_path("E4", "original", tmp_path, part)
        assert path.name == f"E4-original-{part}.json"
        path.write_text(json.dumps(payload))
        if part == "mnist":  # one part present so far
            one = replication.load_results(tmp_path)[("E4", "original")]
            assert list(one["numbers"]) == ["mnist N=2"]
            note = replication.original_scale_note({("E4", "original"): one}, "E4")
            assert "E4 (mnist), original's protocol" in note
            assert "not run yet: the original's protocol on fashionmnist" in note
    merged = replication.load_results(tmp_path)[("E4", "original")]
    assert set(merged["numbers"]) == {"mnist N=2", "fashionmnist N=2"}
    assert [t["name"] for t in merged["trainings"]] == ["mnist", "fashionmnist"]
    assert not merged["stale"] and len(merged["parts"]) == 2
    value = replication.original_scale_value(
        {("E4", "original"): merged}, "E4 fashionmnist N=2 AUROC", "original"
    )
    assert value == 0.9
    assert replication.missing_parts({("E4", "original"): merged}, "E4") == [
        ("book", "mnist"),
        ("book", "fashionmnist"),
    ]
    # a part file under another part's name is refused
    wrong = tmp_path / "E4-original-mnist.json"
    data = json.loads(wrong.read_text())
    wrong.write_text(json.dumps({**data, "part": "fashionmnist"}))
    with pytest.raises(ValueError, match="not what its name says"):
        replication.load_result(wrong)
    wrong.write_text(json.dumps({**data, "part": "cifar"}))
    with pytest.raises(ValueError, match="written in the parts"):
        replication.load_result(wrong)


def test_an_accuracy_claim_reads_the_members_by_their_keys():
    """The members' accuracies are read by the keys ``tools/reproduce.py`` writes, in
    member order; an accuracy claim takes the lowest, a group without them has none."""
    row = {
        replication.member_accuracy_key(2): 0.91,
        "AUROC": 0.8,
        replication.member_accuracy_key(1): 0.93,
    }
    assert replication.member_accuracies(row) == [0.93, 0.91]
    assert replication.member_accuracies({"AUROC": 0.8}) == []
    results = {("E2", "original"): {"numbers": {"fashionmnist": row}}}
    (accuracy,) = replication.find("E2", "fashionmnist", "accuracy")
    key = accuracy.key
    assert replication.original_scale_value(results, key, "original") == 0.91
    no_members = {("E2", "original"): {"numbers": {"fashionmnist": {"AUROC": 0.8}}}}
    assert replication.original_scale_value(no_members, key, "original") is None


def test_without_a_results_folder_there_are_no_results(tmp_path):
    assert replication.load_results(tmp_path / "absent") == {}


def test_detection_numbers_rank_by_score_over_a_negative_reference():
    lp_in, lp_out = (
        random_log_probs(2, 200, seed=1),
        random_log_probs(2, 200, seed=2, scale=6.0),
    )
    book = replication.detection_numbers(lp_in, lp_out, scores.BOOK_RULE, "score")
    assert (
        book["AUROC"] > 0.5
        and 0 <= book["ID flagged"] <= 1
        and book["non-zero ID scores"] == 1.0
    )
    same = lp_in[:1].expand(2, -1, -1)  # one network twice: round-off only
    exact = replication.detection_numbers(
        same,
        lp_out[:1].expand(2, -1, -1),
        dataclasses.replace(scores.ORIGINAL_RULE, log_target=True),
    )
    assert (
        exact["reference"] == 0
        and math.isnan(exact["ID flagged"])
        and exact["AUROC"] == 0.5
    )
    rounded = replication.detection_numbers(
        same, lp_out[:1].expand(2, -1, -1), scores.ORIGINAL_RULE
    )
    raw = replication.detection_numbers(
        same, lp_out[:1].expand(2, -1, -1), scores.ORIGINAL_RULE, "score"
    )
    if rounded["reference"] < 0:
        assert rounded["AUROC"] == pytest.approx(1 - raw["AUROC"])
    else:
        assert rounded["AUROC"] == raw["AUROC"]


@needs_data
def test_reproduce_writes_a_file_the_chapters_can_read(tmp_path, monkeypatch):
    """tools/reproduce.py end to end on a tiny budget: E1 (trained twins and all
    attacks)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import reproduce

    monkeypatch.setenv("OOD_CACHE_DIR", str(tmp_path / "cache"))
    real_trainings = replication.experiment_trainings
    monkeypatch.setattr(
        replication,
        "experiment_trainings",
        lambda e, p, part=None: {
            k: dataclasses.replace(v, n_train=256, epochs=1)
            for k, v in real_trainings(e, p, part).items()
        },
    )
    # tiny attacks in both records; the original's joint attack (lr 0.1) and one other
    # setting in its grid
    for name, joint_steps in (("original", 3), ("book", 4)):
        record = replication.RECORDS[name]
        small = dataclasses.replace(
            record.attacks, steps=3, joint_steps=joint_steps, n_restarts=4
        )
        grid = {"lr": (0.1, 1.0), "steps": (3,)} if record.joint_grid else None
        monkeypatch.setitem(
            replication.RECORDS,
            name,
            dataclasses.replace(record, attacks=small, joint_grid=grid),
        )
    numbers, trainings = reproduce.run_experiment(
        "E1", "original", torch.device("cpu"), progress=False
    )
    seeds = replication.protocol("original").e1_pair_seeds
    for seed in seeds:
        group = replication.e1_pair_name(seed, "attacks")
        assert set(numbers[group]) >= {
            "reference",
            "fooling success",
            "twin-1 attack flagged",
            "joint attack",
            "joint attack, no confidence",
        }
        # the grid's setting of the original is the pair's own joint attack, redone
        same = numbers[replication.joint_grid_group(seed, 0.1, 3)]
        assert same == {k: numbers[group][k] for k in same}
        assert replication.joint_grid_group(seed, 1.0, 3) in numbers
    # the ladder at scale starts from the pair's own joint attack and walks to the
    # book's, cumulatively and each step alone
    loaded_like = {("E1", "original"): {"numbers": numbers}}
    for kind in replication.SCALE_LADDERS:
        table = replication.scale_ladder(loaded_like, kind)
        assert (
            table is not None and table["change"].iloc[0] == "the original's protocol"
        )
        for metric in ("joint attack", "joint attack, no confidence"):
            assert table[metric].iloc[0] == numbers["attacks"][metric]
    assert len(replication.scale_ladder(loaded_like)) == 10
    assert [t["name"] for t in trainings] == [
        replication.e1_pair_name(s) for s in seeds
    ]
    assert trainings[0]["name"] == "twins" and trainings[0]["seconds"] > 0
    # a pair per seed, each its own initialisation
    groups = [replication.e1_pair_name(s, "attacks") for s in seeds]
    assert len({numbers[g]["reference"] for g in groups}) == len(seeds)
    payload = reproduce.result_payload(
        "E1",
        "original",
        numbers,
        trainings,
        "c0ffee",
        True,
        True,
        torch.device("cpu"),
        12.0,
    )
    path = replication.result_path("E1", "original", tmp_path)
    reproduce.write_result(path, payload)
    # no temporary file
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["E1-original.json"]
    loaded = replication.load_results(tmp_path)[("E1", "original")]
    monkeypatch.undo()
    # a tiny budget is not what the current code runs
    assert replication.load_result(path)["stale"]
    assert loaded["provenance"]["dirty"] and loaded["provenance"]["allow_dirty"]
    value = replication.original_scale_value(
        {("E1", "original"): loaded}, "E1 joint attack", "original"
    )
    assert value == numbers["attacks"]["joint attack"]
    original = replication.RECORDS["original"]
    small_grid = {"lr": (0.1, 1.0), "steps": (3,)}
    monkeypatch.setitem(
        replication.RECORDS,
        "original",
        dataclasses.replace(original, joint_grid=small_grid),
    )
    values = replication.original_scale_values(
        {("E1", "original"): loaded}, "E1 joint attack", "original"
    )
    assert len(values) == len(seeds) * 3  # each pair, and its two grid settings
    grid = replication.joint_grid_table({("E1", "original"): loaded})
    assert grid.shape == (2, len(seeds)) and not grid.isna().any().any()


@needs_data
def test_reproduce_e4_trains_eight_members_two_at_a_time_and_reads_2_4_8(
    tmp_path, monkeypatch
):
    """E4: one ensemble of 8 per dataset, cached a pair at a time (an interruption
    loses one pair at most), read as N = 2, 4 and 8."""
    sys.path.insert(0, str(ROOT / "tools"))
    import reproduce

    from ood_utils import data

    monkeypatch.setenv("OOD_CACHE_DIR", str(tmp_path / "cache"))
    real_load = data.load
    monkeypatch.setattr(  # 500 test images, not 10,000
        data,
        "load",
        lambda name, split="train", n=None, **kw: real_load(
            name, split, 500 if split == "test" else n, **kw
        ),
    )
    real = replication.experiment_trainings
    monkeypatch.setattr(
        replication,
        "experiment_trainings",
        lambda e, p, part=None: {
            k: dataclasses.replace(v, n_train=128, epochs=1)
            for k, v in real(e, p, part).items()
        },
    )
    asked = []
    real_get = cache.get_ensemble
    monkeypatch.setattr(
        cache,
        "get_ensemble",
        lambda cfg, *a, **k: asked.append(cfg.n_members) or real_get(cfg, *a, **k),
    )
    numbers, trainings = reproduce.run_experiment(
        "E4", "original", torch.device("cpu"), progress=False, part="mnist"
    )
    assert asked == [2, 4, 6, 8] and [t["name"] for t in trainings] == ["mnist"]
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 8
    assert set(numbers) == {"mnist N=2", "mnist N=4", "mnist N=8"}
    assert all(0 <= numbers[g]["AUROC"] <= 1 for g in numbers)
    # the first N of the 8: N = 2 is scored on members 0 and 1 only
    assert numbers["mnist N=2"]["reference"] != numbers["mnist N=8"]["reference"]


def test_reproduce_e5_scores_chapter_11s_texts_at_the_original_depth(
    tmp_path, monkeypatch
):
    """E5 end to end on a tiny model: the two ratios of the original's figures, the
    per-language table and the training loss, in a file the chapters can read."""
    sys.path.insert(0, str(ROOT / "tools"))
    import reproduce

    from ood_utils import text

    monkeypatch.setenv("OOD_CACHE_DIR", str(tmp_path / "cache"))
    tiny = text.TextConfig(
        context=32, d_model=32, n_layers=1, n_heads=2, steps=20, batch_size=4
    )
    # what reproduce.py runs (the package's names) and what the spec says (its module)
    for where in (replication, replication.spec):
        monkeypatch.setattr(where, "e5_config", lambda: tiny)
        monkeypatch.setattr(where, "E5_CHARS", 3000)
    numbers, trainings = reproduce.run_experiment(
        "E5", "original", torch.device("cpu"), progress=False
    )
    assert set(numbers["ratios"]) >= {
        "French / training text",
        "English test / training text",
    }
    assert numbers["French: Madame Bovary"]["AUROC twin score"] is not None
    assert numbers["English: Alice"]["AUROC twin score"] is None  # English: no AUROC
    assert list(numbers["training loss"]) == ["step 0"]  # 20 steps: one record
    payload = reproduce.result_payload(
        "E5",
        "original",
        numbers,
        trainings,
        "c0ffee",
        False,
        False,
        torch.device("cpu"),
        1.0,
    )
    path = replication.result_path("E5", "original", tmp_path)
    reproduce.write_result(path, payload)
    loaded = replication.load_results(tmp_path)
    assert not loaded["E5", "original"]["stale"]
    value = replication.original_scale_value(
        loaded, "E5 French / training text", "original"
    )
    assert value == numbers["ratios"]["French / training text"]
    line = replication.provenance_line(loaded["E5", "original"])
    assert "1 layer of width 32, 20 steps" in line and "images" not in line
    monkeypatch.undo()
    assert replication.load_result(path)["stale"]  # not the real depth
    with pytest.raises(ValueError, match="unknown experiment or protocol"):
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "E5-book.json").write_text(json.dumps({**payload, "protocol": "book"}))
        replication.load_result(bad / "E5-book.json")


@needs_data
def test_reproduce_baselines_ranks_the_twins_among_chapter_9s_detectors(
    tmp_path, monkeypatch
):
    """Chapter 9 at scale, end to end on tiny budgets: every detector on every OOD set
    of both directions, and where the twin score ranks."""
    sys.path.insert(0, str(ROOT / "tools"))
    import reproduce

    from ood_utils import data, profiles

    monkeypatch.setenv("OOD_CACHE_DIR", str(tmp_path / "cache"))
    tiny = profiles.Profile(
        name="full",
        main=profiles.Budget(256, 1),
        sweep=profiles.Budget(256, 1),
        n_test=200,
        attack=profiles.AttackBudget(restarts=3, steps=3, ladder_restarts=3),
        n_noise=40,
        mc_samples=2,
    )
    monkeypatch.setitem(profiles.PROFILES, "full", tiny)
    real_load, real = data.load, replication.experiment_trainings
    monkeypatch.setattr(
        data,
        "load",
        lambda name, split="train", n=None, **kw: real_load(
            name, split, 200 if n is None else min(n, 200), **kw
        ),
    )
    monkeypatch.setattr(
        replication,
        "experiment_trainings",
        lambda e, p, part=None: {
            k: dataclasses.replace(v, n_train=256, epochs=1)
            for k, v in real(e, p, part).items()
        },
    )
    numbers, trainings = reproduce.run_experiment(
        "baselines", "original", torch.device("cpu"), progress=False
    )
    assert [t["name"] for t in trainings] == [
        "chapter 1's CNN",
        "mnist",
        "fashionmnist",
    ]
    summary = numbers.pop("twin max-KL")
    assert summary["methods"] == 11
    # MNIST: 5 sets (its model is not chapter 1's CNN here: 6); FashionMNIST: 6
    assert summary["cases"] in (11, 12) and len(numbers) == 11 * summary["cases"]
    assert (
        1 <= summary["median rank"] <= 11 and 0 <= summary["best"] <= summary["cases"]
    )
    assert all(0 <= v["AUROC"] <= 1 for v in numbers.values())
    # what it wrote reads back by fields, every case of both directions
    long = replication.baselines_metrics({"numbers": numbers})
    assert len(long) == len(numbers) and long["method"].nunique() == 11
    assert set(long["direction"]) == {data.direction(d) for d in replication.DATASETS}


def test_a_baselines_result_is_read_by_its_cases_fields():
    """Each group of a ``baselines`` result is a case looked up by its key, never
    split apart; a group that names no case is refused."""
    case = ("FashionMNIST -> MNIST", "ID + strokes", "KNN (k=50)")
    key = replication.baselines_key(*case)
    assert replication.baselines_cases()[key] == case
    values = {"AUROC": 0.7, "AUPR-IN": 0.6, "AUPR-OUT": 0.8, "FPR@95TPR": 0.5}
    long = replication.baselines_metrics(
        {"numbers": {key: values, replication.BASELINES_SUMMARY: {"cases": 1.0}}}
    )
    assert long.to_dict("records") == [
        dict(zip(replication.BASELINES_FIELDS, case)) | values
    ]
    with pytest.raises(ValueError, match="name no case"):
        replication.baselines_metrics({"numbers": {"MNIST, noise, MSP": values}})


def test_the_replication_page_judges_a_claim_on_the_larger_run():
    chapters = {
        "05_mnist_fashion": {
            "claims": {
                "E2 mnist AUROC": replication.claim_record(
                    "E2 mnist AUROC",
                    0.55,
                    0.962,
                    "the recipe (+0.35)",
                    "4,000 images, 2 epochs",
                )
            }
        }
    }
    fast_only = replication.replication_table(chapters).set_index("claim")
    row = fast_only.loc["CNN twins, MNIST -> FashionMNIST: AUROC"]
    assert row["verdict"].startswith(
        "not reproduced under the original's protocol at this scale"
    )
    assert row["original protocol, original scale"] is None
    at_scale = {
        ("E2", "original"): {"numbers": {"mnist": {"AUROC": 0.968}}},
        ("E2", "book"): {"numbers": {"mnist": {"AUROC": 0.985}}},
    }
    table = replication.replication_table(chapters, at_scale).set_index("claim")
    row = table.loc["CNN twins, MNIST -> FashionMNIST: AUROC"]
    assert (
        row["original protocol, original scale"],
        row["book protocol, original scale"],
    ) == (0.968, 0.985)
    # both scales shown
    assert row["verdict"] == "reproduced" and row["original protocol"] == 0.55
    assert (
        table.loc["ensemble of 8, MNIST -> FashionMNIST: AUROC", "verdict"]
        == "not run at this scale"
    )


def test_at_the_original_scale_the_verdict_names_a_cause_other_than_the_budget():
    """Both protocols train alike at the original's scale, so the fast ladder's
    training-budget step cannot be the cause there: the page names the chapter's
    ``protocol_cause`` or none."""
    record = replication.claim_record(
        "E1 joint attack",
        0.0,
        1.0,
        "the book's training budget (+30%)",
        "4,000 images, 2 epochs",
        protocol_cause="noise in pixel space (+75%)",
    )
    at_scale = {
        ("E1", "original"): {"numbers": {"attacks": {"joint attack": 0.0}}},
        ("E1", "book"): {"numbers": {"attacks": {"joint attack": 1.0}}},
    }
    claim_text = replication.claim("E1 joint attack").text
    for row, named in (
        (record, "noise in pixel space (+75%)"),
        ({**record, "protocol cause": None}, None),
    ):
        table = replication.replication_table(
            {"04_attacking_twins": {"claims": {"E1 joint attack": row}}}, at_scale
        ).set_index("claim")
        text = table.loc[claim_text, "verdict"]
        assert (
            text.startswith("reproduced only under the original's protocol")
            and "budget" not in text.split("(this")[0]
        )
        assert (named in text) if named else text.endswith("not isolated at this scale")


def test_a_chapter_gets_the_verdict_of_the_larger_run_or_none():
    at_scale = {("E2", "original"): {"numbers": {"mnist": {"AUROC": 0.968}}}}
    assert (
        replication.scale_verdict(at_scale, "E2 mnist AUROC")
        == "reproduced (the book's protocol not run)"
    )
    assert replication.scale_verdict(at_scale, "E2 fashionmnist AUROC") is None
    at_scale["E2", "book"] = {"numbers": {"mnist": {"AUROC": 0.80}}}
    assert replication.scale_verdict(at_scale, "E2 mnist AUROC").startswith(
        "reproduced only under the original's protocol"
    )
    with pytest.raises(ValueError, match="claim"):
        replication.scale_verdict(at_scale, "E2 cifar AUROC")


def test_an_e1_claim_at_scale_is_judged_on_its_range_of_pairs_and_settings(
    monkeypatch,
):
    """The original's 30% is prose about "various learning rates and attack steps": it
    is judged on the measurement closest to it, and the verdict gives the range."""
    record = replication.protocol("original")
    seeds = record.e1_pair_seeds
    key, name = "E1 joint attack, no confidence", "joint attack, no confidence"
    numbers = {
        replication.e1_pair_name(s, "attacks"): {
            name: rate,
            "fooling success": 1.0,
        }
        for s, rate in zip(seeds, (0.09, 0.12, 0.10))
    }
    at_scale = {("E1", "original"): {"numbers": numbers}}
    # three pairs, all far from 30%: not reproduced, with the range
    text = replication.scale_verdict(at_scale, key)
    assert text.startswith("not reproduced") and "9% to 12%" in text
    assert "3 twin pairs" in text
    # one setting of the grid gets there
    for s in seeds:
        for lr in record.joint_grid["lr"]:
            for steps in record.joint_grid["steps"]:
                numbers[replication.joint_grid_group(s, lr, steps)] = {
                    name: 0.28 if (s, lr, steps) == (seeds[1], 0.3, 400) else 0.05
                }
    text = replication.scale_verdict(at_scale, key)
    assert text.startswith("reproduced") and "5% to 28%" in text
    assert "9 settings of the grid" in text
    # the table still shows the first pair at the original's settings
    assert replication.original_scale_value(at_scale, key, "original") == 0.09
    # a claim without a grid: the pairs only
    assert (
        replication.original_scale_values(at_scale, "E1 fooling success", "original")
        == [1.0] * 3
    )
