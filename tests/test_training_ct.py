"""Training end to end on small synthetic CT volumes: HU windowing, body mask, resume, torchrun (gloo)."""

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from medae.errors import CancelledError, MedaeError
from medae.io.nifti import save_nifti
from medae.volume import Volume

CT_CFG = {
    "id": "ct-test",
    "name": "synthetic CT test model",
    "modality": "CT",
    "body_part": "CHEST",
    "space": {
        "shape": [32, 32, 16],
        "spacing": 8.0,
        "centre": [0.0, 0.0, 0.0],
        "alignment": "center",
        "reference": "none",
    },
    "intensity": {"method": "window", "low": -1000.0, "high": 400.0, "clip": [-0.2, 1.5], "pad": -1000.0},
    "mask": {"source": "threshold", "threshold": -500.0},
    "architecture": {"variant": "dae", "channels": [4, 8], "latent_channels": 4, "skip": True},
    "noise": {"kind": "coarse", "factor": 4, "std": 0.2, "prob": 1.0},
    "steps": 4,
    "val_every": 2,
    "checkpoint_every": 2,
    "val_fraction": 0.4,
    "num_workers": 0,
    "seed": 3,
    "augment": {
        "affine_prob": 0.5,
        "rotate_deg": 3.0,
        "scale": 0.03,
        "translate_vox": 1,
        "elastic_prob": 0.0,
        "bias_prob": 0.0,
        "gamma_prob": 0.3,
        "noise_prob": 0.3,
        "blur_prob": 0.0,
    },
    "postprocess": {"median": 3, "smooth_sigma_vox": 1.0, "erode_vox": 1, "min_region_ml": 1.0},
}


def synthetic_ct(seed: int) -> Volume:
    """A chest-like CT in HU: air, body ellipse (fat rim, soft tissue), two lungs, a spine; LPS grid."""
    rng = np.random.default_rng(seed)
    shape = (80, 64, 40)
    sp = np.array([3.0, 3.0, 5.0])
    i, j, k = np.indices(shape, dtype=np.float32)
    x, y = (i - shape[0] / 2) * sp[0], (j - shape[1] / 2) * sp[1]
    a, b = 110 * rng.uniform(0.9, 1.1), 80 * rng.uniform(0.9, 1.1)
    body = (x / a) ** 2 + (y / b) ** 2 < 1
    hu = np.full(shape, -1000.0, np.float32)
    hu[body] = -90
    hu[(x / (a - 12)) ** 2 + (y / (b - 12)) ** 2 < 1] = 40
    for cx in (-45, 45):
        hu[((x - cx) / 35) ** 2 + ((y + 5) / 50) ** 2 < 1] = -850
    hu[(x**2 + (y - 55) ** 2) < 15**2] = 700
    hu += rng.normal(0, 15, shape).astype(np.float32)
    aff = np.diag([-sp[0], -sp[1], sp[2], 1.0])
    aff[:3, 3] = [120 + rng.uniform(-5, 5), 96, -100]
    return Volume(np.round(hu).astype(np.int16), aff, modality="CT", meta={"body_part": "CHEST"})


@pytest.fixture(scope="module")
def ct_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ct")
    for s in range(5):
        save_nifti(synthetic_ct(s), d / f"ct_{s}.nii.gz")
    return d


def _run(data, out, **over):
    from medae.training.config import load_config
    from medae.training.train import train

    return train(data, out, load_config(overrides={**CT_CFG, **over}), device="cpu", **{})


def test_ct_pipeline_trains_and_analyses(ct_data, tmp_path):
    from medae.analysis import analyze
    from medae.io import load
    from medae.model import load_model
    from medae.model.preprocess import to_model_space

    out = _run(ct_data, tmp_path / "m")
    card = json.loads((out / "card.json").read_text())
    assert card["modality"] == "CT" and card["training"]["steps"] == 4
    assert card["calibration"]["threshold"] > 0 and len(card["calibration"]["scan_scores"]) >= 2
    model = load_model(out, device="cpu")
    vol = load(ct_data / "ct_0.nii.gz")
    assert vol.modality == "CT"
    mi = to_model_space(vol, model.card)
    # Window: air -> 0, soft tissue (40 HU) -> about (40 + 1000) / 1400; body mask from the threshold.
    assert mi.image.min() >= -0.2 and mi.mask.mean() > 0.2
    centre = tuple(s // 2 for s in model.card.shape)
    assert abs(mi.image[centre[0], centre[1] + 6, centre[2]] - 1040 / 1400) < 0.2
    res = analyze(vol, model)
    assert res.heatmap.shape == vol.shape and np.allclose(res.heatmap.affine, vol.affine)
    # A brain-MR model must refuse this scan; the CT model takes it.
    mr_vol = Volume(vol.array, vol.affine, modality="MR")
    from medae.errors import ModelMismatchError

    with pytest.raises(ModelMismatchError, match="CT"):
        analyze(mr_vol, model)


def _stopped_at_step_two(data, out, cfg) -> None:
    """A training run into ``out`` cancelled once its second step is taken."""
    from medae.training.train import train

    cancel = threading.Event()

    def stop_after_two(fraction, message):
        if message.startswith("step 2/"):
            cancel.set()

    with pytest.raises(CancelledError):
        train(data, out, cfg, device="cpu", progress=stop_after_two, cancel=cancel)


def test_resume_after_interruption_matches_uninterrupted(ct_data, tmp_path):
    from safetensors.numpy import load_file

    from medae.training.config import load_config
    from medae.training.train import train

    cfg = load_config(overrides=CT_CFG)
    full = train(ct_data, tmp_path / "full", cfg, device="cpu")
    _stopped_at_step_two(ct_data, tmp_path / "cut", cfg)
    state = json.loads((tmp_path / "cut" / "train_state" / "checkpoint.json").read_text())
    assert state["step"] == 2
    resumed = train(ct_data, tmp_path / "cut", cfg, device="cpu", command="second run")
    a, b = load_file(str(full / "weights.safetensors")), load_file(str(resumed / "weights.safetensors"))
    for k in a:
        if k.startswith("net."):
            np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5)

    # A finished run started again with another setting only recalibrates; the card keeps naming the
    # runs that trained the weights and what they were trained with.
    changed = {**cfg, "calibration": {**cfg["calibration"], "fp_rate": 0.5}}
    train(ct_data, tmp_path / "cut", changed, device="cpu", command="recalibration")
    card = json.loads((tmp_path / "cut" / "card.json").read_text())["training"]
    assert card["command"] == "recalibration" and card["config"]["calibration"]["fp_rate"] == 0.5
    assert [r["steps"] for r in card["runs"]] == [[0, 2], [2, 4]]
    assert card["runs"][1]["command"] == "second run"
    assert card["runs"][1]["config_differences"] == {"calibration.fp_rate": {"trained": 0.25, "now": 0.5}}
    c = load_file(str(resumed / "weights.safetensors"))
    assert all(np.array_equal(b[k], c[k]) for k in b if k.startswith("net."))


def test_ensemble_members_and_their_mean_reconstruction(ct_data, tmp_path):
    import torch
    from safetensors.numpy import load_file

    from medae.model import load_model
    from medae.training.config import load_config
    from medae.training.train import train

    with pytest.raises(MedaeError, match="held out from all 2 ensemble members"):
        _run(ct_data, tmp_path / "few", ensemble=2)
    extra = tmp_path / "extra"
    for s in (10, 11, 12):
        save_nifti(synthetic_ct(s), extra / f"ct_{s}.nii.gz")
    single = _run(ct_data, tmp_path / "one")
    ensemble = train(
        ct_data,
        tmp_path / "two",
        load_config(overrides={**CT_CFG, "ensemble": 2}),
        device="cpu",
        calibration_data=extra,
    )
    a, b = load_file(str(single / "weights.safetensors")), load_file(str(ensemble / "weights.safetensors"))
    net_keys = sorted(k for k in a if k.startswith("net."))
    # Member 0 is the very model the same config trains alone; member 1 the same network trained apart.
    for k in net_keys:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5)
    assert sorted(k[len("member1.") :] for k in b if k.startswith("member1.")) == net_keys
    assert any(not np.allclose(b[k], b[f"member1.{k}"]) for k in net_keys)
    card = json.loads((ensemble / "card.json").read_text())
    assert card["architecture"]["ensemble"] == 2
    assert [(m["seed"], m["steps"]) for m in card["training"]["members"]] == [(3, 4), (4, 4)]
    # Each member draws its own validation split; calibration takes the scans no member trained on.
    from medae.training.train import _split

    held_out = set(_split(5, 3, 3)[0]) & set(_split(5, 3, 4)[0])
    assert _split(5, 3, 3) != _split(5, 3, 4) and card["training"]["n_calibration"] == len(held_out) + 3
    assert (ensemble / "train_state" / "member1" / "checkpoint.json").exists()
    model = load_model(ensemble, device="cpu")
    assert len(model.members) == 1
    x = np.random.default_rng(0).random(model.card.shape).astype(np.float32)
    with torch.inference_mode():
        t = torch.from_numpy(x)[None, None]
        mean = (model.net(t) + model.members[0](t))[0, 0].numpy() / 2
    np.testing.assert_allclose(model.reconstruct(x), mean, atol=1e-6)
    assert not np.allclose(load_model(single, device="cpu").reconstruct(x), mean, atol=1e-4)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_gloo(ct_data, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(CT_CFG))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "medae",
        "train",
        "--data",
        str(ct_data),
        "--out",
        str(tmp_path / "ddp"),
        "--config",
        str(cfg),
        "--device",
        "cpu",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    card = json.loads((tmp_path / "ddp" / "card.json").read_text())
    assert card["training"]["world_size"] == 2 and card["training"]["steps"] == 4


def test_vae_trains_and_samples(ct_data, tmp_path):
    from medae.cli import main
    from medae.io import load

    over = {
        "architecture": {"variant": "vae", "channels": [4, 8], "latent_channels": 4, "skip": False},
        "noise": {"kind": "none"},
    }
    out = _run(ct_data, tmp_path / "vae", **over)
    assert main(["sample", "--model", str(out), "--out", str(tmp_path / "s"), "--n", "2", "--device", "cpu"]) == 0
    v = load(tmp_path / "s" / "sample_001.nii.gz")
    assert v.shape == (32, 32, 16) and np.isfinite(v.array).all()
    # A denoising model with skip connections cannot sample: a clear error, exit status 2.
    dae = _run(ct_data, tmp_path / "dae")
    assert main(["sample", "--model", str(dae), "--out", str(tmp_path / "s2")]) == 2


def test_extra_calibration_scans_join_the_validation_split(ct_data, tmp_path):
    from medae.errors import MedaeError
    from medae.training.config import load_config
    from medae.training.train import train

    extra = tmp_path / "cal"
    for s in range(10, 13):
        save_nifti(synthetic_ct(s), extra / f"cal_{s}.nii.gz")
    cfg = load_config(overrides=CT_CFG)
    out = train(ct_data, tmp_path / "m", cfg, device="cpu", calibration_data=extra)
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["n_calibration"] == card["training"]["n_val"] + 3
    assert card["calibration"]["n_scans"] == card["training"]["n_calibration"]
    with pytest.raises(MedaeError, match="never saw"):
        train(ct_data, tmp_path / "m2", cfg, device="cpu", calibration_data=ct_data)


@pytest.mark.parametrize("loss", ["mse", "l1+ssim"])
def test_other_losses_train(ct_data, tmp_path, loss):
    out = _run(ct_data, tmp_path / loss.replace("+", "_"), loss=loss, steps=2, val_every=1, checkpoint_every=1)
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["config"]["loss"] == loss
    assert np.isfinite(card["training"]["best_val_loss"])


def test_a_grid_the_network_cannot_halve_is_refused_when_the_configuration_is_read():
    from medae.training.config import load_config

    # Four levels halve the grid four times: 152 is a multiple of 8 but not of 16.
    with pytest.raises(MedaeError, match=r"multiple of 16.*\[128, 160, 128\]"):
        load_config(overrides={"space": {"shape": [128, 152, 128], "spacing": 1.5}})
    with pytest.raises(MedaeError, match="multiple of 8"):
        load_config(overrides={"space": {"shape": [20, 24, 16]}, "architecture": {"channels": [8, 16, 32]}})
    fine = load_config(overrides={"space": {"shape": [128, 144, 128], "spacing": 1.5}})
    assert fine["space"]["shape"] == [128, 144, 128]


def test_config_differences_name_added_removed_and_nested_settings():
    from medae.training.provenance import config_differences

    trained = {"steps": 4, "space": {"spacing": 2.0, "registration": "affine"}}
    now = {"steps": 4, "space": {"spacing": 2.0, "brain_refine_mm": 25.0}, "seed": 1}
    assert config_differences(trained, now) == {
        "seed": {"trained": None, "now": 1},
        "space.brain_refine_mm": {"trained": None, "now": 25.0},
        "space.registration": {"trained": "affine", "now": None},
    }
    assert config_differences(now, now) == {}


def test_preprocessing_cache_is_not_reused_when_the_mapping_code_changes(ct_data, tmp_path, monkeypatch):
    import medae.training.data as data
    from medae.training.config import load_config
    from medae.training.train import card_from_config

    card = card_from_config(load_config(overrides=CT_CFG))
    scans = [(str(ct_data / "ct_0.nii.gz"), None)]
    cache = tmp_path / "cache"
    first, _, _ = data.preprocess_scans(scans, card, None, None, cache=cache)
    again, _, _ = data.preprocess_scans(scans, card, None, None, cache=cache)
    assert len(list(cache.iterdir())) == 1 and np.array_equal(first, again)
    # Any edit to the mapping code (here a copy of preprocess.py with one more line) is a new key.
    import medae.model.preprocess as preprocess

    edited = tmp_path / "preprocess.py"
    edited.write_bytes(Path(preprocess.__file__).read_bytes() + b"# edited\n")
    before = data.mapping_fingerprint()
    monkeypatch.setattr(preprocess, "__file__", str(edited))
    assert data.mapping_fingerprint() != before
    data.preprocess_scans(scans, card, None, None, cache=cache)
    assert len(list(cache.iterdir())) == 2


def test_a_resume_screens_the_scans_it_finds_prepared_as_a_fresh_run_does(ct_data, tmp_path):
    # Scans prepared by an earlier run were taken from the cache unscreened: a label map or a T2 that a screen
    # added since (or one of medae's own maps) was trained on by the resume, and left out by a fresh run.
    from medae.training.config import load_config
    from medae.training.data import preprocess_scans
    from medae.training.train import card_from_config

    card = card_from_config(load_config(overrides=CT_CFG))
    scans = [(str(ct_data / f"ct_{s}.nii.gz"), None) for s in range(4)]
    reference = np.random.default_rng(0).normal(size=card.shape).astype(np.float32)
    cache = tmp_path / "cache"
    preprocess_scans(scans, card, reference, None, cache=cache)  # the first run, before the screens

    def screens():
        seen = []

        def screen(vol, card):
            if vol.location.endswith("ct_1.nii.gz"):
                raise MedaeError("looks like a label map")

        def screen_contrast(r, card):
            seen.append(r)
            if len(seen) == 2:
                raise MedaeError(f"another contrast (r = {r:.3f})")

        return {"screen": screen, "screen_contrast": screen_contrast}

    fresh = preprocess_scans(scans, card, reference, None, **screens())
    resumed = preprocess_scans(scans, card, reference, None, cache=cache, **screens())
    assert len(fresh[2]) == 2 and "ct_1.nii.gz: looks like a label map" in fresh[2][0]
    assert resumed[2] == fresh[2] and np.array_equal(resumed[0], fresh[0]) and np.array_equal(resumed[1], fresh[1])
    # A modality the model does not learn is said of a cached scan too.
    mr = card_from_config(load_config(overrides={**CT_CFG, "modality": "MR"}))
    with pytest.raises(MedaeError, match="a CT scan, and the model learns MR"):
        preprocess_scans(scans[:1], mr, reference, None, cache=cache)


def test_a_scan_exported_again_under_its_name_is_prepared_again(tmp_path):
    # The cache was keyed by the path alone: the scan first prepared under that name was trained on for good.
    import os

    from medae.training.config import load_config
    from medae.training.data import preprocess_scans
    from medae.training.train import card_from_config

    card = card_from_config(load_config(overrides=CT_CFG))
    path = tmp_path / "ct.nii.gz"
    save_nifti(synthetic_ct(0), path)
    first, _, _ = preprocess_scans([(str(path), None)], card, None, None, cache=tmp_path / "cache")
    stamp = os.stat(path).st_mtime_ns
    save_nifti(synthetic_ct(7), path)
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))  # a second later, whatever the file system's clock
    again, _, _ = preprocess_scans([(str(path), None)], card, None, None, cache=tmp_path / "cache")
    fresh, _, _ = preprocess_scans([(str(path), None)], card, None, None)
    assert not np.array_equal(first, again) and np.array_equal(again, fresh)


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"step": 5}, "unknown training setting(s) step"),
        ({"steps": "abc"}, "steps = 'abc': expected a whole number"),
        ({"steps": 5.7}, "steps = 5.7: expected a whole number"),
        ({"steps": 0}, "steps = 0: expected a whole number of at least 1"),
        ({"batch": 0}, "batch = 0: expected a whole number of at least 1"),
        ({"lr": -1}, "lr = -1: expected a number above 0"),
        ({"loss": "l2"}, "loss = 'l2': choose one of"),
        ({"architecture": 5}, "architecture = 5: expected a JSON object"),
        ({"architecture": {"variant": "vqvae"}}, "architecture.variant = 'vqvae': choose one of ae, dae, vae"),
        ({"kl_weight": "a"}, "kl_weight = 'a': expected a number"),
        # Inside a section: a misspelt key was ignored in silence (this one trained a U-Net all the same), a
        # wrong value failed at the first training step, after every scan was prepared, or not at all.
        ({"architecture": {"skp": False}}, "unknown training setting(s) architecture.skp; architecture holds"),
        ({"augment": {"rotate_deg": "4"}}, "augment.rotate_deg = '4': expected a number"),
        ({"space": {"spacing": -2}}, "space.spacing = -2: expected a number above 0"),
        ({"space": {"shape": [96, 112]}}, "space.shape = [96, 112]: expected 3 whole numbers"),
        ({"augment": {"affine_prob": 5}}, "augment.affine_prob = 5: expected a number from 0 to 1"),
        ({"noise": {"kind": "gaussian"}}, "noise.kind = 'gaussian': choose one of coarse, none"),
        ({"noise": {"factor": [4, "8"]}}, "noise.factor = [4, '8']: expected a whole number or a list of them"),
        # Out of range or not finite (Python's JSON reads NaN and Infinity): these were taken, and a run then
        # trained on 1 scan in 100, stepped by an infinite rate, or smoothed with a negative sigma.
        ({"val_fraction": 0.99}, "val_fraction = 0.99: expected a number above 0 and at most 0.5"),
        ({"lr": float("inf")}, "lr = inf: expected finite numbers (no NaN or Infinity)"),
        ({"lr": float("nan")}, "lr = nan: expected finite numbers"),
        ({"weight_decay": -1e-5}, "weight_decay = -1e-05: expected a number of at least 0"),
        ({"seed": 2**70}, "seed = 1180591620717411303424: expected a whole number from 0 to 4294967295"),
        ({"space": {"centre": [0, float("nan"), 0]}}, "space.centre = [0, nan, 0]: expected finite numbers"),
        ({"space": {"shape": [-16, 16, 16]}}, "space.shape = [-16, 16, 16]: expected 3 whole numbers, each at least 1"),
        ({"space": {"alignment": "rigid"}}, "space.alignment = 'rigid': choose one of register, center, identity"),
        (
            {"postprocess": {"smooth_sigma_vox": -1}},
            "postprocess.smooth_sigma_vox = -1: expected a number of at least 0",
        ),
        ({"postprocess": {"median": 0}}, "postprocess.median = 0: expected a whole number of at least 1"),
        ({"noise": {"std": -0.2}}, "noise.std = -0.2: expected a number of at least 0"),
        (
            {"patches": {"count": [3, 1]}},
            "patches.count = [3, 1]: expected 2 whole numbers, each at least 1, the first no",
        ),
        ({"patches": {"alpha": [0.3, 2]}}, "patches.alpha = [0.3, 2]: expected 2 numbers, each from 0 to 1"),
        ({"intensity": {"clip": [3.0, -0.5]}}, "intensity.clip = [3.0, -0.5]: expected 2 numbers, the first below"),
        ({"intensity": {"high": 150}}, "intensity.high = 150: percentiles are from 0 to 100, low below high"),
        ({"calibration": {"score_top_fraction": 0}}, "score_top_fraction = 0: expected a number above 0 and at most 1"),
        ({"architecture": {"channels": []}}, "architecture.channels = []: expected one or more whole numbers"),
        ({"architecture": {"latent_channels": 0}}, "latent_channels = 0: expected a whole number of at least 1"),
        ({"jobs": ["anomaly", "segmentation"]}, "jobs = ['anomaly', 'segmentation']: expected a list of one or more"),
        ({"jobs": []}, "jobs = []: expected a list of one or more of anomaly, compression, sampling"),
        ({"id": " "}, "id = ' ': expected a text that is not empty"),
        # A null was taken inside a section and failed where the setting is read (after every scan was prepared).
        ({"intensity": {"pad": None}}, "intensity.pad = None: expected a number"),
        ({"postprocess": {"median": None}}, "postprocess.median = None: expected a whole number"),
        (
            {"architecture": {"inference": {"mode": "sliding_window", "roi_size": [60, 64, 64]}}},
            "roi_size must be three whole numbers, each a multiple of 16",
        ),
        ({"architecture": {"inference": {"mode": "patches"}}}, 'expected {"mode": "whole"} or'),
    ],
)
def test_a_setting_the_training_cannot_use_is_refused_before_any_scan_is_prepared(overrides, said):
    from medae.errors import MedaeError
    from medae.training.config import load_config

    with pytest.raises(MedaeError, match=re.escape(said)):
        load_config(overrides=overrides)


def test_the_settings_of_the_shipped_models_and_documented_overrides_are_accepted():
    from medae.training.config import load_config

    for name in ("brain-t1-dae", "brain-t1-codec"):
        card = json.loads((Path(__file__).parents[1] / "models" / name / "card.json").read_text())
        assert load_config(overrides=card["training"]["config"])["space"] == card["training"]["config"]["space"]
    # null turns the brain refinement off (the model's README trains so); a CT model thresholds its mask.
    assert load_config(overrides={"space": {"brain_refine_mm": None}})["space"]["brain_refine_mm"] is None
    assert load_config(overrides={"noise": {"factor": [4, 8]}, "calibration": {"margin": 1.2}})
    assert load_config(overrides=CT_CFG)["mask"]["threshold"] == -500.0


def test_a_configuration_file_that_is_not_an_object_is_refused(tmp_path):
    from medae.errors import MedaeError
    from medae.training.config import load_config

    (tmp_path / "c.json").write_text("[1, 2, 3]")
    with pytest.raises(MedaeError, match="must be a JSON object"):
        load_config(tmp_path / "c.json")
    # Saved by Windows Notepad (a byte-order mark first) it was refused; a scan given by mistake was a traceback.
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"steps": 3}')
    assert load_config(tmp_path / "bom.json")["steps"] == 3
    (tmp_path / "scan.json").write_bytes(b"\x1f\x8b\x08\x00 a gzip stream")
    with pytest.raises(MedaeError, match=r"scan\.json: cannot read the training configuration"):
        load_config(tmp_path / "scan.json")
    # A model's card, to train like it: refused for five unknown settings, with no word of where its own are.
    card = Path(__file__).parents[1] / "models" / "brain-t1-dae" / "card.json"
    with pytest.raises(MedaeError, match=r"card\.json is a model card.*its training\.config holds"):
        load_config(card)
    assert load_config(overrides={"steps": 5, "lr": 1, "architecture": {"variant": "vae"}})["steps"] == 5


def test_too_few_usable_scans_are_said_before_the_training_not_after_it(tmp_path, monkeypatch):
    # Broken files are counted as scans when the folder is listed; the calibration found too few usable
    # validation scans only once every step had been trained, and did so again on every rerun.
    import medae.training.train

    data = tmp_path / "data"
    data.mkdir()
    for s in range(2):
        save_nifti(synthetic_ct(s), data / f"ct_{s}.nii.gz")
    for s in range(3):
        (data / f"broken_{s}.nii.gz").write_bytes(b"not a scan")
    monkeypatch.setattr(medae.training.train, "train_member", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(MedaeError, match=r"could be used; training needs at least 2 and 3\. Replace or remove"):
        _run(data, tmp_path / "out")


def test_calibration_scans_that_are_training_data_are_said_before_the_training(ct_data, tmp_path, monkeypatch):
    import medae.training.train

    monkeypatch.setattr(medae.training.train, "train_member", lambda *a, **k: pytest.fail("training started"))
    from medae.training.config import load_config
    from medae.training.train import train

    with pytest.raises(MedaeError, match="also training data"):
        train(ct_data, tmp_path / "out", load_config(overrides=CT_CFG), device="cpu", calibration_data=ct_data)
    # The same scan named otherwise: an absolute path in a list, the data folder given from the working folder.
    (tmp_path / "cal.txt").write_text(f"{ct_data / 'ct_0.nii.gz'}\n")
    monkeypatch.chdir(ct_data.parent)
    cfg = load_config(overrides=CT_CFG)
    with pytest.raises(MedaeError, match=r"also training data \(ct_0\.nii\.gz\)"):
        train(Path(ct_data.name), tmp_path / "out", cfg, device="cpu", calibration_data=tmp_path / "cal.txt")


def test_a_finished_network_is_recalibrated_under_another_way_of_applying_it_but_not_other_layers(tmp_path):
    # Sliding windows instead of the whole scan change no layer: refused as "other architecture settings", the
    # model could not be calibrated as it will run.
    from medae.training.config import load_config
    from medae.training.member import _check_resumable

    cfg = load_config()
    info = {"step": 10, "runs": [{"config": cfg}]}
    windows = {"mode": "sliding_window", "roi_size": [64, 64, 64]}
    _check_resumable(info, {**cfg, "architecture": {**cfg["architecture"], "inference": windows}}, tmp_path, True)
    relu = {**cfg, "architecture": {**cfg["architecture"], "act": "RELU"}}
    with pytest.raises(MedaeError, match=r"architecture\.act differ"):
        _check_resumable(info, relu, tmp_path, finished=True)


def test_a_run_stopped_midway_goes_on_only_with_the_settings_it_was_started_with(ct_data, tmp_path):
    from medae.training.config import load_config
    from medae.training.train import train

    cfg = load_config(overrides=CT_CFG)
    _stopped_at_step_two(ct_data, tmp_path / "cut", cfg)
    for changed in ({**cfg, "lr": 0.01}, {**cfg, "loss": "mse"}):
        with pytest.raises(MedaeError, match=r"stopped at step 2 with other settings \((lr|loss) differ\)"):
            train(ct_data, tmp_path / "cut", changed, device="cpu")
    wider = {**cfg, "architecture": {**cfg["architecture"], "channels": [8, 16]}}
    with pytest.raises(MedaeError, match="another network architecture"):
        train(ct_data, tmp_path / "cut", wider, device="cpu")
    longer = train(ct_data, tmp_path / "cut", {**cfg, "steps": 6}, device="cpu")  # training longer is going on
    assert json.loads((longer / "card.json").read_text())["training"]["steps"] == 6
    # Once trained, another activation (no weight changes shape) was calibrated and written into the card, which
    # then described another network than the one its weights were trained in.
    relu = {**cfg, "steps": 6, "architecture": {**cfg["architecture"], "act": "RELU"}}
    with pytest.raises(MedaeError, match=r"trained with other architecture settings \(architecture\.act differ"):
        train(ct_data, tmp_path / "cut", relu, device="cpu")


def test_a_model_folder_goes_on_only_with_the_scans_it_was_trained_on(ct_data, tmp_path, monkeypatch):
    # The split is drawn from the list of scans: with a scan added, scans the first steps had validated on were
    # trained on, and a finished model was recalibrated on scans it had trained on, both in silence.
    import shutil

    import medae.training.train
    from medae.training.config import load_config
    from medae.training.train import train

    data = tmp_path / "data"
    shutil.copytree(ct_data, data)
    cfg = load_config(overrides=CT_CFG)
    _stopped_at_step_two(data, tmp_path / "m", cfg)
    save_nifti(synthetic_ct(5), data / "ct_5.nii.gz")
    with pytest.raises(MedaeError, match=r"trained up to step 2 on other scans .*ct_1\.nii\.gz.* train into a new"):
        train(data, tmp_path / "m", cfg, device="cpu")
    (data / "ct_5.nii.gz").unlink()
    data = shutil.move(data, tmp_path / "moved")
    train(data, tmp_path / "m", cfg, device="cpu")  # the same scans again, moved to another folder: it goes on
    save_nifti(synthetic_ct(5), data / "ct_5.nii.gz")
    monkeypatch.setattr(medae.training.train, "preprocess_scans", lambda *a, **k: pytest.fail("scans prepared"))
    with pytest.raises(MedaeError, match="trained up to step 4 on other scans"):
        train(data, tmp_path / "m", cfg, device="cpu")


def test_a_finished_model_trained_on_other_scans_is_not_replaced(ct_data, tmp_path, monkeypatch):
    # A shipped model folder holds no training state: training into it, on a department's scans, started
    # from scratch and replaced the shipped model at the end, without a word.
    import medae.training.train
    from medae.training.config import load_config
    from medae.training.train import train

    shipped = tmp_path / "brain-t1-dae"
    shipped.mkdir()
    (shipped / "weights.safetensors").write_bytes(b"weights")
    (shipped / "card.json").write_text(json.dumps({"id": "brain-t1-dae", "training": {"data": "data/healthy"}}))
    monkeypatch.setattr(medae.training.train, "preprocess_scans", lambda *a, **k: pytest.fail("scans prepared"))
    cfg = load_config(overrides=CT_CFG)
    with pytest.raises(MedaeError, match=r"holds a model trained on data/healthy.*would replace it.*new folder"):
        train(ct_data, shipped, cfg, device="cpu")
    assert (shipped / "weights.safetensors").read_bytes() == b"weights"
    # Its own scans again retrain it, as the model's README reproduces the shipped one.
    (shipped / "card.json").write_text(json.dumps({"id": "brain-t1-dae", "training": {"data": str(ct_data)}}))

    class WentOn(Exception):
        pass

    def went_on(*a, **k):
        raise WentOn

    monkeypatch.setattr(medae.training.train, "preprocess_scans", went_on)
    with pytest.raises(WentOn):
        train(ct_data, shipped, cfg, device="cpu")
    # The same folder written otherwise (the shell's trailing slash, relative to the working folder) is the same.
    monkeypatch.chdir(ct_data.parent)
    for recorded in (f"{ct_data}/", ct_data.name):
        (shipped / "card.json").write_text(json.dumps({"id": "brain-t1-dae", "training": {"data": recorded}}))
        with pytest.raises(WentOn):
            train(ct_data, shipped, cfg, device="cpu")


def test_too_few_scans_to_calibrate_on_are_said_before_the_training_and_not_as_a_traceback(ct_data, tmp_path):
    # Three members hold one scan out together; with one calibration scan that made two, found too few by a
    # ValueError's traceback once every member was trained.
    from medae.training.config import load_config
    from medae.training.train import train

    cfg = load_config(overrides={**CT_CFG, "ensemble": 3, "steps": 1})
    cal = tmp_path / "cal"
    save_nifti(synthetic_ct(10), cal / "cal_10.nii.gz")
    with pytest.raises(MedaeError, match=r"1 scans of .* held out from all 3 ensemble members and 1 calibration"):
        train(ct_data, tmp_path / "m", cfg, device="cpu", calibration_data=cal)
    (cal / "broken.nii.gz").write_bytes(b"not a scan")  # three to count, two to calibrate on once prepared
    with pytest.raises(MedaeError, match=r"2 healthy scans could be used to calibrate on.*broken\.nii\.gz"):
        train(ct_data, tmp_path / "m", cfg, device="cpu", calibration_data=cal)


def test_a_scan_of_another_modality_is_left_out_of_the_training(ct_data, tmp_path):
    from medae.training.config import load_config
    from medae.training.data import preprocess_scans
    from medae.training.train import card_from_config

    mr = tmp_path / "mr.nii.gz"  # values of an MR scan, with no air at -1000: not CT
    save_nifti(Volume((np.abs(synthetic_ct(9).array) % 900).astype(np.int16), synthetic_ct(9).affine, "MR"), mr)
    scans = [(str(p), None) for p in sorted(ct_data.glob("*.nii.gz"))[:2]] + [(str(mr), None)]
    images, _masks, skipped = preprocess_scans(scans, card_from_config(load_config(overrides=CT_CFG)), None, None)
    assert len(images) == 2 and len(skipped) == 1 and "a MR scan, and the model learns CT" in skipped[0]


def test_the_command_says_which_scans_it_left_out(ct_data, tmp_path, capsys):
    import shutil

    from medae.cli import main

    data = tmp_path / "data"
    shutil.copytree(ct_data, data)
    (data / "broken.nii.gz").write_bytes(b"not a scan")
    (tmp_path / "cfg.json").write_text(json.dumps(CT_CFG))
    assert (
        main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--config", str(tmp_path / "cfg.json")]) == 0
    )
    err = capsys.readouterr().err
    assert "left out of the training" in err and "broken.nii.gz" in err


def test_ctrl_c_saves_the_step_reached(ct_data, tmp_path):
    """The first Ctrl-C lets the current step finish and saves the state; nothing since the last checkpoint is lost."""
    import signal
    import time

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**CT_CFG, "steps": 100000, "val_every": 3, "checkpoint_every": 1000, "num_workers": 1}))
    out = tmp_path / "m"
    # Its own session, so that the signal reaches every process of the command, the data worker too, as a
    # terminal's Ctrl-C does.
    proc = subprocess.Popen(
        [sys.executable, "-m", "medae", "train", "--data", str(ct_data), "--out", str(out), "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    best = out / "train_state" / "best.safetensors"
    deadline = time.monotonic() + 120
    while not best.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "stopping after the current step" in err and "Traceback" not in err
    state = json.loads((out / "train_state" / "checkpoint.json").read_text())
    assert 3 <= state["step"] < 1000


def test_a_folder_without_scans_is_said_before_the_reference_is_prepared(tmp_path, monkeypatch):
    # The reference (seconds for a brain model) was prepared first: an empty --data was said only after it.
    import medae.training.train

    monkeypatch.setattr(medae.training.train, "prepare_reference", lambda cfg: pytest.fail("reference prepared"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MedaeError, match="no scan found"):
        _run(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "two.txt").write_text("a.nii.gz\nb.nii.gz\n")
    with pytest.raises(MedaeError, match="2 scans are too few"):
        _run(tmp_path / "two.txt", tmp_path / "out")


def test_the_calibration_applies_the_network_as_the_analysis_will(ct_data, tmp_path, monkeypatch):
    # Calibrated on whole-scan reconstructions, a model whose card applies sliding windows compared the analysis's
    # residuals with statistics of another reconstruction.
    import medae.training.train
    from medae.model import load_model

    seen = {}
    calibrate = medae.training.train.calibrate_model

    def spy(reconstruct, images, *args, **kwargs):
        seen["image"], seen["reconstruction"] = images[0], reconstruct(images[0])
        return calibrate(reconstruct, images, *args, **kwargs)

    monkeypatch.setattr(medae.training.train, "calibrate_model", spy)
    windows = {"mode": "sliding_window", "roi_size": [16, 16, 8], "overlap": 0.5}
    out = _run(ct_data, tmp_path / "m", architecture={**CT_CFG["architecture"], "inference": windows})
    model = load_model(out, device="cpu")
    np.testing.assert_allclose(seen["reconstruction"], model.reconstruct(seen["image"]), atol=1e-5)


def test_the_baselines_leave_out_what_the_training_left_out(tmp_path):
    # The evaluation's baselines were fitted on every scan of the training folder, a label map or a T2 among them
    # that the model's training had left out.
    from types import SimpleNamespace

    from medae.training.baselines import fit_baselines
    from medae.training.config import load_config
    from medae.training.train import card_from_config

    data = tmp_path / "data"
    data.mkdir()
    for s in range(6):  # three to fit on and three to calibrate on
        save_nifti(synthetic_ct(s), data / f"ct_{s}.nii.gz")
    cfg = load_config(overrides=CT_CFG)
    card = card_from_config(cfg)
    card.training = {"data": str(data), "config": cfg}
    model = SimpleNamespace(card=card, folder=tmp_path, reference=None, reference_mask=None)
    screened = []

    def screen(vol, card):
        screened.append(Path(vol.location).name)
        if len(screened) == 1:  # the first training scan
            raise MedaeError("looks like a label map")

    fitted = fit_baselines(model).info["n_fit"]
    assert fit_baselines(model, screens={"screen": screen}).info["n_fit"] == fitted - 1
    assert len(screened) == 6  # the training and the calibration scans
