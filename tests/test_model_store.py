"""Model folders: safetensors only, hash checked, encode/decode split, variants."""

import contextlib
import json
import re

import numpy as np
import pytest
import torch

from medae.errors import ModelError
from medae.model import default_model_dir, load_model
from medae.model.card import ModelCard
from medae.model.loaded import state_tensors
from medae.model.network import AutoEncoder3D, build_network
from medae.model.store import save_model_folder

ARCH = {"variant": "ae", "channels": [4, 8], "latent_channels": 2, "skip": False}


def tiny_card(arch=ARCH) -> ModelCard:
    return ModelCard(
        id="tiny",
        name="tiny",
        jobs=["anomaly"],
        modality="MR",
        body_part="BRAIN",
        architecture=dict(arch),
        space={
            "shape": [16, 16, 16],
            "spacing": 2.0,
            "affine": np.diag([2.0, 2, 2, 1]).tolist(),
            "alignment": "center",
        },
        intensity={"method": "percentile", "low": 1, "high": 99},
    )


@pytest.fixture
def model_dir(tmp_path):
    card = tiny_card()
    net = build_network(card.architecture)
    save_model_folder(tmp_path / "m", card, state_tensors(net))
    return tmp_path / "m"


def test_round_trip_same_outputs(model_dir):
    m = load_model(model_dir, device="cpu")
    assert m.card.id == "tiny" and len(m.card.sha256) == 64
    x = np.random.default_rng(0).random((16, 16, 16)).astype(np.float32)
    y1, y2 = m.reconstruct(x), m.reconstruct(x)
    assert y1.shape == (16, 16, 16)
    np.testing.assert_array_equal(y1, y2)


def test_tampered_weights_are_refused(model_dir):
    w = model_dir / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256.*Restore the model folder from the release"):
        load_model(model_dir, device="cpu")
    # A folder being trained (a run stopped between writing the weights and the card) says how to finish it.
    (model_dir / "train_state").mkdir()
    with pytest.raises(ModelError, match="run the same `medae train` command again"):
        load_model(model_dir, device="cpu")


def test_pickle_is_refused(model_dir):
    (model_dir / "weights.safetensors").unlink()
    torch.save({"x": torch.zeros(1)}, model_dir / "model.pt")
    with pytest.raises(ModelError, match="safetensors"):
        load_model(model_dir, device="cpu")


def test_garbage_card_is_a_clear_error(model_dir):
    (model_dir / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(model_dir, device="cpu")
    (model_dir / "card.json").write_text(json.dumps({"id": "x"}))
    with pytest.raises(ModelError, match="lacks"):
        load_model(model_dir, device="cpu")


@pytest.mark.parametrize(
    "damage,named",
    [
        (lambda c: c["space"].pop("shape"), "space.shape"),
        (lambda c: c["architecture"].pop("channels"), "architecture.channels"),
        (lambda c: c.__setitem__("architecture", "unet"), "architecture is not an object"),
    ],
)
def test_a_damaged_card_is_named_not_a_traceback(model_dir, damage, named):
    card = json.loads((model_dir / "card.json").read_text())
    damage(card)
    (model_dir / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=f"damaged: .*{named}"):
        load_model(model_dir, device="cpu")


def test_missing_folder_and_bad_device(tmp_path, model_dir):
    from medae.errors import MedaeError

    with pytest.raises(ModelError, match="no model folder"):
        load_model(tmp_path / "nowhere")
    if not torch.cuda.is_available():
        with pytest.raises(MedaeError, match="no CUDA"):
            load_model(model_dir, device="cuda")


@pytest.mark.parametrize("skip,variational", [(False, False), (True, False), (False, True)])
def test_encode_decode_split(skip, variational):
    torch.manual_seed(0)
    net = AutoEncoder3D(channels=(4, 8, 8), latent_channels=3, skip=skip, variational=variational).eval()
    x = torch.randn(1, 1, 16, 24, 16)
    with torch.no_grad():
        latent = net.encode(x)
        assert latent.z.shape == (1, 3, 2, 3, 2)
        torch.testing.assert_close(net.decode(latent), net(x))
        if variational:
            assert latent.mu is not None and latent.logvar is not None
            assert net.decode(torch.randn(1, 3, 2, 3, 2)).shape == x.shape
        if skip:
            with pytest.raises(ValueError):
                net.decode(latent.z)


def test_sliding_window_inference_as_the_card_says(tmp_path):
    arch = dict(ARCH, inference={"mode": "sliding_window", "roi_size": [8, 8, 8], "overlap": 0.5})
    card = tiny_card(arch)
    net = build_network(card.architecture)
    save_model_folder(tmp_path / "sw", card, state_tensors(net))
    m = load_model(tmp_path / "sw", device="cpu")
    x = np.random.default_rng(1).random((16, 16, 16)).astype(np.float32)
    y = m.reconstruct(x)
    assert y.shape == x.shape and np.isfinite(y).all()
    # Windows see less context than the whole volume, so the result differs from a whole-volume pass.
    whole = m.net(torch.from_numpy(x)[None, None]).detach().numpy()[0, 0]
    assert not np.allclose(y, whole)


def test_the_same_tensors_give_the_same_weights_file_in_every_process_readable_by_all(tmp_path):
    # The library's metadata order changed from one process to the next: one of two files and two sha256.
    import os
    import stat
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from medae.model.store import safetensors_bytes\n"
        "a = {'w': np.arange(12, dtype=np.float32).reshape(3, 4), 'b': np.ones(3, np.float32)}\n"
        "sys.stdout.buffer.write(safetensors_bytes(a, {'format': 'medae', 'model': 'm', 'z': '1', 'k': '2'}))\n"
    )
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout for _ in range(6)}
    assert len(outputs) == 1
    old = os.umask(0o022)
    try:
        save_model_folder(tmp_path / "m", tiny_card(), {"w": np.zeros(3, np.float32)})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m" / "weights.safetensors").stat().st_mode) == 0o644


def test_a_card_whose_grid_was_edited_is_refused_on_loading(tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(default_model_dir(), folder)
    card = json.loads((folder / "card.json").read_text())
    card["space"]["shape"] = [80, 112, 96]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"the card's grid \(space.shape \[80, 112, 96\]\) does not match"):
        load_model(folder, device="cpu")


@pytest.mark.parametrize(("asked", "said"), [("cuda:x", "Unknown device 'cuda:x'"), ("cuda:1", "has 1 CUDA GPU(s)")])
def test_a_cuda_device_that_cannot_be_is_refused_in_a_sentence(asked, said, monkeypatch):
    from medae.errors import MedaeError
    from medae.model.loaded import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a workstation with one GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(MedaeError, match=re.escape(said)):
        select_device(asked)
    assert select_device("cuda:0").index == 0


@pytest.mark.parametrize("killed_at", range(4))
def test_a_save_killed_at_any_moment_leaves_the_old_model_or_the_new_one(killed_at, tmp_path, monkeypatch):
    # The weights were put in place, then the card: a kill between the two left a card naming other weights,
    # and the model folder refused to load. Here the process dies at the k-th rename of the save.
    import os

    from medae.model.store import read_tensors

    card = tiny_card()
    old = state_tensors(build_network(card.architecture))
    torch.manual_seed(1)
    new = state_tensors(build_network(card.architecture))
    folder = tmp_path / "m"
    save_model_folder(folder, tiny_card(), old)
    real_replace, renames = os.replace, []

    def dies_at_the_kth(src, dst, *args, **kwargs):
        if len(renames) == killed_at:
            raise KeyboardInterrupt
        renames.append(dst)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", dies_at_the_kth)
    with pytest.raises(KeyboardInterrupt) if killed_at < 3 else contextlib.nullcontext():
        save_model_folder(folder, tiny_card(), new)
    monkeypatch.setattr(os, "replace", real_replace)
    model = load_model(folder, device="cpu")
    got = read_tensors(folder, model.card)
    expected = old if killed_at < 2 else new  # the card is the second rename: from then on the new model
    assert sorted(got) == sorted(expected) and all(np.array_equal(got[k], expected[k]) for k in expected)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "card.json",
        *(["weights.pending.safetensors"] if killed_at == 1 else []),
        "weights.safetensors",
    ]
