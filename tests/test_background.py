"""The air beyond the head: noise, artefacts in it, or none left at all, said as warnings."""

from pathlib import Path

import numpy as np
import pytest

from medae.analysis.background import background_stats, check_background
from medae.io import load
from medae.volume import Volume

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "brain_t1.nii.gz"


@pytest.fixture(scope="module")
def head():
    return load(SAMPLE)


def _warnings(volume, ghosts_said=False):
    return check_background(background_stats(volume), ghosts_said)


def test_a_clean_head_gets_no_warning(head):
    stats = background_stats(head)
    assert stats["median"] < 0.07 and stats["p90"] < 0.13 and 2000 < stats["bright_ml"] < 4000
    assert _warnings(head) == []


def test_noise_ghosts_and_a_field_full_of_signal_are_each_named(head):
    rng = np.random.default_rng(0)
    a = np.asarray(head.array, dtype=np.float32)
    white = float(np.percentile(a[a > 0.3 * np.percentile(a, 99)], 75))
    # Magnitude (Rician) noise at 12% of white matter, as a fast low-field scan has.
    noisy = np.hypot(a + rng.normal(0, 0.12 * white, a.shape), rng.normal(0, 0.12 * white, a.shape))
    (said,) = _warnings(head.with_array(noisy.astype(np.float32)))
    assert said.startswith("The scan is noisy")
    # A ghost: the head copied half a field of view along the front-back axis at a fifth of its brightness.
    ghosted = a + 0.2 * np.roll(a, a.shape[1] // 2, axis=1)
    (said,) = _warnings(head.with_array(ghosted))
    assert "bright structures" in said
    assert _warnings(head.with_array(ghosted), ghosts_said=True) == []  # the ghost check said it already
    # Noise as bright as tissue everywhere: no air left to measure, far more signal than a head.
    filled = a + rng.uniform(0.35, 1.0, a.shape).astype(np.float32) * float(np.percentile(a, 99))
    (said,) = _warnings(head.with_array(filled))
    assert said.startswith("No dark air is left around the head")


def test_a_blanked_background_or_a_stripped_brain_is_not_taken_for_noise(head):
    a = np.asarray(head.array, dtype=np.float32).copy()
    a[a < 0.3 * np.percentile(a, 99)] = 0  # the scanner (or a skull strip) set the air to zero
    assert _warnings(head.with_array(a)) == []


def test_padding_a_stripped_background_the_neck_and_blanked_air_are_not_air(head):
    a = np.asarray(head.array, dtype=np.float32)
    level = float(np.percentile(a, 99))
    # Corners a resampling filled with the type's minimum.
    padded = a.copy()
    padded[:20, :20, :] = -32768
    assert _warnings(head.with_array(padded)) == []
    # A skull-stripped brain on a constant background of -1.
    stripped = np.where(a > 0.3 * level, a, -1.0).astype(np.float32)
    assert _warnings(head.with_array(stripped)) == []
    # Shoulders below the head, dimmed by the coil to a quarter of the tissue: not air.
    tissue = float(np.median(a[a > 0.3 * level]))
    neck = np.concatenate([np.full(a.shape[:2] + (60,), 0.25 * tissue, np.float32), a], axis=2)
    affine = head.affine.copy()
    affine[:3, 3] -= affine[:3, 2] * 60
    assert _warnings(Volume(neck, affine, "MR")) == []
    # A large head with its neck on air the scanner set to zero: the darkest air there is.
    big = np.concatenate([np.full(a.shape[:2] + (60,), 0.6 * tissue, np.float32), a], axis=2)
    big[:, :, :60][a[:, :, :60] < 0.3 * level] = 0
    blank = np.where(big > 0.3 * level, big, 0).astype(np.float32)
    assert _warnings(Volume(blank, affine, "MR")) == []


def test_noise_too_heavy_to_leave_dark_air_is_measured_in_the_tissue_and_said(head):
    """At SNR 5 the noisy air passed for head: no air to measure, a head of plausible size, and nothing said."""
    rng = np.random.default_rng(0)
    a = np.asarray(head.array, dtype=np.float32)
    sigma = 0.2 * float(np.median(a[a > 0.3 * np.percentile(a, 99)]))
    noisy = np.hypot(a + rng.normal(0, sigma, a.shape), rng.normal(0, sigma, a.shape)).astype(np.float32)
    stats = background_stats(head.with_array(noisy))
    (note,) = check_background({**stats, "median": None, "p90": None}, ghosts_said=False)
    assert note.startswith("The scan is noisy: neighbouring voxels of the tissue differ")
    clean = background_stats(head)
    assert clean["tissue_noise"] < 0.08
    assert check_background({**clean, "median": None, "p90": None}, ghosts_said=False) == []
