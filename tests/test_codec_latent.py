"""The latent mode with the shipped compression model: a few kilobytes, the scan's own grid, honest labels."""

from pathlib import Path

import numpy as np
import pytest

from medae.codec import compress, container, decompress
from medae.errors import InputError, ModelError, ModelMismatchError
from medae.io import load
from medae.model import load_model
from medae.model.store import default_codec_dir, default_model_dir
from medae.volume import Volume

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "brain_t1.nii.gz"
CT = SAMPLE.with_name("ct_chest_synthetic.nii.gz")


@pytest.fixture(scope="module")
def codec():
    return load_model(default_codec_dir(), device="cpu")


@pytest.fixture(scope="module")
def sample_latent(codec):
    volume = load(SAMPLE)
    header, sections = compress(volume, "latent", model=codec)
    return volume, header, container.pack(header, sections)


def test_the_latent_file_is_small_and_decodes_onto_the_scan_grid(codec, sample_latent):
    volume, header, blob = sample_latent
    assert len(blob) < 100_000  # the scan is 9.6 MB
    back = decompress(*container.unpack(blob), model=codec)
    assert back.shape == volume.shape and back.array.dtype == volume.array.dtype
    np.testing.assert_array_equal(back.affine, volume.affine)
    assert back.meta["kind"] == "latent reconstruction"
    assert any("never for diagnosis" in w for w in back.warnings)
    # Inside the region it covers, the preview follows the scan's anatomy (grey, white matter, ventricles).
    inside = back.array > 0
    assert 0.2 < inside.mean() < 0.6
    r = np.corrcoef(back.array[inside].astype(float), volume.array[inside].astype(float))[0, 1]
    assert r > 0.8
    # ... on the scan's own grid: a copy moved by 8 mm correlates less.
    shifted = np.roll(back.array, 7, axis=0)
    both = inside & (shifted > 0)
    assert np.corrcoef(shifted[both].astype(float), volume.array[both].astype(float))[0, 1] < r - 0.1


def test_an_analysis_of_a_latent_preview_is_refused(codec, sample_latent):
    from medae.analysis import analyze

    _, _, blob = sample_latent
    back = decompress(*container.unpack(blob), model=codec)
    with pytest.raises(InputError, match="latent reconstruction.*Analyse the original scan"):
        analyze(back, load_model(default_model_dir(), device="cpu"))


def test_the_anomaly_model_cannot_serve_as_a_codec():
    anomaly = load_model(default_model_dir(), device="cpu")
    with pytest.raises(ModelError, match="not compression"):
        compress(load(SAMPLE), "latent", model=anomaly)


def test_a_latent_needs_the_model_that_made_it(codec, sample_latent, tmp_path):
    _, header, blob = sample_latent
    h, sections = container.unpack(blob)
    h["latent"]["model_sha256"] = "0" * 64
    with pytest.raises(ModelError, match="decode it with that model"):
        decompress(h, sections, model=codec)
    with pytest.raises(InputError, match="needs that model"):
        decompress(*container.unpack(blob), model=None)


def test_a_ct_is_not_squeezed_through_a_brain_mr_latent(codec):
    ct = load(CT)
    with pytest.raises(ModelMismatchError, match="--mode lossless or near-lossless"):
        compress(ct, "latent", model=codec)


def test_latent_cli_round_trip(tmp_path, capsys):
    from medae.cli import main

    assert main(["compress", str(SAMPLE), str(tmp_path / "s.mae"), "--mode", "latent"]) == 0
    out = capsys.readouterr().out
    assert "latent of model brain-t1-codec" in out and "keep the scan itself" in out
    assert main(["decompress", str(tmp_path / "s.mae"), str(tmp_path / "s.nii.gz")]) == 0
    assert "never for diagnosis" in capsys.readouterr().out
    back = load(tmp_path / "s.nii.gz")
    assert back.shape == load(SAMPLE).shape


def test_latent_mode_keeps_an_empty_border_volume_working(codec):
    # A scan with zero-filled margins beside the head (a common export) still encodes.
    volume = load(SAMPLE)
    padded = np.zeros(tuple(s + 20 for s in volume.shape), volume.array.dtype)
    padded[10:-10, 10:-10, 10:-10] = volume.array
    affine = volume.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.array([10, 10, 10])
    header, sections = compress(Volume(padded, affine, "MR"), "latent", model=codec)
    assert decompress(header, sections, model=codec).shape == padded.shape
