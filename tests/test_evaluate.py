import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from evaluation_fixtures import analytic_scan, generated_scan

from medae.cli import main
from medae.errors import MedaeError
from medae.training import evaluate as E
from medae.training.evaluation_summary import TARGETS, summarise
from medae.training.lesions import LesionSpec, add_lesions, lesion_alpha

METRIC_KEYS = ("voxel_ap", "voxel_auroc", "best_dice", "dice_at_threshold", "detection_rate", "scan_auroc")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A model trained for a few steps by ``medae train`` on 5 generated scans (seeds 3000-3004)."""
    from medae.io.nifti import save_nifti

    root = tmp_path_factory.mktemp("tiny_model")
    data = root / "healthy"
    data.mkdir()
    # Uncompressed files and the process-wide template keep this quick; the manifest names the seeds,
    # as ``medae make-healthy`` writes it.
    for seed in range(3000, 3005):
        save_nifti(generated_scan(seed, cache=False).volume, data / f"healthy_{seed:05d}.nii")
    (data / "manifest.json").write_text(json.dumps({"scans": [{"seed": s} for s in range(3000, 3005)]}))
    rc = main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(root / "model"),
            "--set",
            "steps=4",
            "--set",
            "val_every=2",
            "--set",
            "checkpoint_every=2",
            "--set",
            "val_fraction=0.5",
            "--set",
            'architecture={"channels":[4,8,8,8]}',
        ]
    )
    assert rc == 0
    return root


def test_evaluate_command_end_to_end(tiny_model, tmp_path, capsys):
    from medae.model import load_model

    model = tmp_path / "model"
    shutil.copytree(tiny_model / "model", model)
    card_before = json.loads((model / "card.json").read_text())
    out = tmp_path / "eval"
    md = tmp_path / "docs" / "evaluation.md"
    rc = main(
        [
            "evaluate",
            "--model",
            str(model),
            "--out",
            str(out),
            "--n-healthy",
            "1",
            "--n-lesion",
            "1",
            "--seed",
            "700000",
            "--bootstrap",
            "20",
            "--markdown",
            str(md),
        ]
    )
    assert rc == 0
    report = json.loads((out / "evaluation.json").read_text())
    for key in (
        "model",
        "command",
        "date",
        "machine",
        "time_s",
        "settings",
        "protocol",
        "baselines",
        "methods",
        "comparison",
        "targets",
        "scans",
        "lesions",
    ):
        assert key in report, key
    assert report["command"].startswith("medae evaluate --model")
    assert set(report["methods"]) == {"model", "intensity", "zscore", "pca"}
    for method, sections in report["methods"].items():
        overall = sections["overall"]
        for key in METRIC_KEYS + ("fp_regions_per_healthy_scan",):
            assert set(overall[key]) == {"value", "ci95"}, (method, key)
        assert overall["voxel_ap"]["value"] is not None and 0 <= overall["voxel_ap"]["value"] <= 1
        assert overall["n_lesions"] == len(report["lesions"]) >= 1
        assert sections["by_kind"] and sections["by_size"]
    assert [t["metric"] for t in report["targets"]] == [t[0] for t in TARGETS]
    assert all(isinstance(t["met"], bool) for t in report["targets"])
    assert [s["seed"] for s in report["scans"]] == [700000, 700001]
    assert {s["kind"] for s in report["scans"]} == {"healthy", "hyper"}
    assert set(report["lesions"][0]["detected"]) == set(report["methods"])
    # The baselines were fitted on the model's own training scans.
    assert report["baselines"]["n_fit"] == 2 and report["baselines"]["n_calibration"] == 3
    # Markdown in both places, with the command and the targets.
    text = md.read_text()
    assert text == (out / "evaluation.md").read_text()
    assert "## Targets" in text and report["command"] in text and "| model (autoencoder) |" in text
    # The card gained the evaluation and kept everything else; the weights still verify.
    card = json.loads((model / "card.json").read_text())
    assert card["evaluation"]["metrics"]["voxel_ap"] == report["methods"]["model"]["overall"]["voxel_ap"]
    assert {k: v for k, v in card.items() if k != "evaluation"} == {
        k: v for k, v in card_before.items() if k != "evaluation"
    }
    assert load_model(model).card.evaluation["targets"] == report["targets"]
    assert "voxel average precision" in capsys.readouterr().out


def test_evaluate_refuses_training_seeds_and_missing_training_data(tiny_model, tmp_path, capsys):
    model = tiny_model / "model"
    rc = main(["evaluate", "--model", str(model), "--out", str(tmp_path / "a"), "--seed", "2990", "--no-card"])
    assert rc == 2
    assert "held out" in capsys.readouterr().err
    rc = main(
        [
            "evaluate",
            "--model",
            str(model),
            "--out",
            str(tmp_path / "b"),
            "--no-card",
            "--train-data",
            str(tmp_path / "nowhere"),
        ]
    )
    assert rc == 2
    assert "--train-data" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_settings_cases_and_validation():
    s = E.EvaluationSettings(n_healthy=2, n_lesion=7, seed=10)
    cases = s.cases()
    assert [c[0] for c in cases] == list(range(10, 19))
    assert [c[1] for c in cases[:2]] == [None, None]
    assert [c[1] for c in cases[2:]] == list(s.kinds) + [s.kinds[0]]
    with pytest.raises(MedaeError):
        E.EvaluationSettings(n_healthy=0)
    with pytest.raises(MedaeError):
        E.EvaluationSettings(kinds=("tumour",))


def test_map_to_box_equals_the_full_mapping_cropped():
    from medae import geometry
    from medae.model.preprocess import from_model_space

    rng = np.random.default_rng(0)
    model_map = rng.random((20, 24, 18)).astype(np.float32)
    m2i = np.eye(4)
    m2i[:3, :3] = geometry.rotation_matrix((10, -5, 20)) * 1.7
    m2i[:3, 3] = [5, -3, 8]
    mi = SimpleNamespace(model_to_input=m2i)
    shape = (50, 45, 40)
    full = from_model_space(model_map, mi, shape)
    box = (slice(7, 33), slice(4, 41), slice(10, 29))
    np.testing.assert_allclose(E.map_to_box(model_map, m2i, box), full[box], atol=1e-5)
    brain = np.zeros(shape, bool)
    brain[10:20, 12:15, 20:30] = True
    assert E.brain_box(brain, margin=3) == (slice(7, 23), slice(9, 18), slice(17, 33))


def _oracle_records():
    """Records of an analytic healthy scan and a lesion scan, with known-quality maps per method.

    ``model``: the lesions' own soft occupancy (a perfect detector); ``intensity``: random noise;
    ``zscore``: the occupancy inverted; ``pca``: the occupancy plus noise.
    """
    from scipy import ndimage

    healthy = analytic_scan()
    specs = [
        LesionSpec("hyper", (-20.0, -10.0, 15.0), 10.0, seed=1),
        LesionSpec("csf_hole", (20.0, -40.0, 5.0), 5.0, seed=2),
    ]
    sick = add_lesions(healthy, specs)
    rng = np.random.default_rng(0)
    records = []
    for kind, vol, truth, lesions in (
        (None, healthy.volume, np.zeros(healthy.volume.shape, np.int16), []),
        ("hyper", sick.volume, sick.labels, sick.lesions),
    ):
        brain = healthy.brain > 0.5
        occ = np.zeros(vol.shape, np.float32)
        for rec in lesions:
            box, alpha, _ = lesion_alpha(rec.spec, vol.affine, vol.shape)
            occ[box] = np.maximum(occ[box], alpha)
        occ *= brain
        noise = rng.random(vol.shape).astype(np.float32)
        maps = {"model": occ, "intensity": noise, "zscore": 1 - occ, "pca": occ + 0.3 * noise}
        methods = {}
        for name, heat in maps.items():
            regions = ndimage.label(heat >= 0.5)[0] if name == "model" else np.zeros(vol.shape, np.int32)
            methods[name] = E.score_method(heat, regions, truth, brain, float(heat[brain].max()))
        records.append(E.ScanRecord(700 + len(records), kind, 1.0, lesions, methods))
    return records


def test_summary_scores_a_perfect_detector_perfectly():
    records = _oracle_records()
    summary = summarise(records, n_boot=30, seed=0)
    model = summary["methods"]["model"]["overall"]
    assert model["voxel_ap"]["value"] > 0.99
    assert model["voxel_auroc"]["value"] > 0.999
    assert model["best_dice"]["value"] > 0.99
    assert model["dice_at_threshold"]["value"] > 0.99
    assert model["detection_rate"]["value"] == 1.0
    assert model["fp_regions_per_healthy_scan"]["value"] == 0.0
    assert model["scan_auroc"]["value"] == 1.0
    assert model["n_lesions"] == 2
    inverted = summary["methods"]["zscore"]["overall"]
    random = summary["methods"]["intensity"]["overall"]
    assert inverted["voxel_auroc"]["value"] < 0.01
    # Random scores: AUROC near 0.5 and AP near the prevalence of lesion voxels.
    assert abs(random["voxel_auroc"]["value"] - 0.5) < 0.02
    brain = analytic_scan().brain > 0.5
    prevalence = sum(r.voxels for r in records[1].lesions) / (2 * brain.sum())
    assert random["voxel_ap"]["value"] == pytest.approx(prevalence, rel=0.2)
    # Noisy occupancy sits in between.
    assert random["voxel_ap"]["value"] < summary["methods"]["pca"]["overall"]["voxel_ap"]["value"] < 1
    # Groups: one per kind present and per size bin holding a lesion.
    assert set(summary["methods"]["model"]["by_kind"]) == {"hyper"}
    assert set(summary["methods"]["model"]["by_size"]) == {"4-7 mm", "7-11 mm"}
    assert summary["methods"]["model"]["by_size"]["4-7 mm"]["n_lesions"] == 1
    comp = summary["comparison"]
    assert comp["best_baseline"] == "pca"
    targets = {t["metric"]: t for t in summary["targets"]}
    assert targets["voxel_ap"]["met"] and targets["fp_regions_per_healthy_scan"]["met"]
    assert targets["ap_ratio_to_best_baseline"]["value"] == comp["ap_ratio_to_best_baseline"]["value"]
    assert targets["ap_ratio_to_best_baseline"]["met"] == (comp["ap_ratio_to_best_baseline"]["value"] >= 2.0)


def test_evaluate_stops_when_cancelled(tiny_model):
    import threading

    from medae.analysis import analyze
    from medae.errors import CancelledError
    from medae.model import load_model

    cancel = threading.Event()
    cancel.set()
    seen = []
    with pytest.raises(CancelledError):
        E.evaluate(
            load_model(tiny_model / "model"),
            E.EvaluationSettings(n_healthy=1, n_lesion=1, seed=800000),
            analyze,
            progress=lambda f, m: seen.append(f),
            cancel=cancel,
        )
    assert seen and all(0.0 <= f <= 1.0 for f in seen)


def test_card_update_keeps_other_keys_and_refuses_replaced_weights(tmp_path):
    from medae.errors import OutputError
    from medae.training.evaluation_report import update_card

    card = {"id": "m", "sha256": "aaa", "calibration": {"threshold": 3.0}, "evaluation": {}}
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(OutputError, match="replaced"):
        update_card(tmp_path, {"metrics": {"voxel_ap": 0.5}}, sha256="bbb")
    assert json.loads((tmp_path / "card.json").read_text()) == card
    update_card(tmp_path, {"metrics": {"voxel_ap": 0.5, "nan": float("nan")}}, sha256="aaa")
    written = json.loads((tmp_path / "card.json").read_text())
    assert written == {**card, "evaluation": {"metrics": {"voxel_ap": 0.5, "nan": None}}}
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]  # no temporary file left behind
