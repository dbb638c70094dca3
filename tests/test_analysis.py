"""The analysis with the shipped model: localisation, healthy scans, determinism, outputs, refusals.

These use held-out healthy variations (seeds far from the training seeds 1000-1095) with a lesion put
at a known world position, in RAS, LPS and oblique grids with anisotropic voxels.
"""

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest

from medae import geometry
from medae.analysis import analyze, write_outputs
from medae.errors import InputError, ModelMismatchError, SeriesSelectionError
from medae.model import default_model_dir, load_model
from medae.volume import Volume

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    assert (default_model_dir() / "card.json").exists(), "the shipped model must be in models/"
    return load_model(device="cpu")


@pytest.fixture(scope="module")
def template():
    from medae.training.healthy import head_distance
    from medae.training.template import load_template

    t = load_template()
    return t, head_distance(t)


def healthy(template, seed, variation=1.0):
    from medae.training.healthy import generate_healthy

    return generate_healthy(template[0], seed, template[1], variation=variation)


def regrid(scan, code, spacing, oblique_deg):
    """The same head on another grid: orientation code, voxel size and obliquity (trilinear)."""
    from scipy import ndimage

    vol = scan.volume
    centre = vol.voxel_to_world((np.array(vol.shape) - 1) / 2)
    fov = np.array([190.0, 230.0, 190.0])
    sp = np.asarray(spacing, float)
    shape = np.round(fov / sp).astype(int)
    aff = np.eye(4)
    aff[:3, :3] = geometry.rotation_matrix((oblique_deg, -oblique_deg / 2, oblique_deg / 3)) @ np.diag(sp)
    aff[:3, 3] = centre - aff[:3, :3] @ ((shape - 1) / 2)
    m = np.linalg.inv(vol.affine) @ aff
    maps = []
    for arr in (vol.array.astype(np.float32), scan.wm):
        maps.append(ndimage.affine_transform(arr, m[:3, :3], m[:3, 3], output_shape=tuple(shape), order=1))
    arr, new_aff = geometry.reorient(maps[0], aff, code)
    wm, _ = geometry.reorient(maps[1], aff, code)
    return Volume(np.round(arr).astype(np.int16), new_aff, "MR", meta={"body_part": "BRAIN"}), wm


def template_point(scan, world):
    """Where a world point of a generated head lies in the template (the generator's pose undone)."""
    g = scan.volume.meta["generator"]
    rot = geometry.rotation_matrix(tuple(g["angles_deg"]))
    centre = np.array([0.0, -18.0, 10.0])
    undo = np.diag(1 / np.asarray(g["scale"])) @ rot.T
    return centre + undo @ (np.asarray(world, float) - centre - np.asarray(g["shift_mm"]))


def insert_lesion(vol, wm, radius_mm=9.0, contrast=0.6, seed=0):
    """A bright sphere in white matter; returns the new volume and the lesion's world centre."""
    rng = np.random.default_rng(seed)
    idx = np.argwhere(wm > 0.95)
    world = vol.voxel_to_world(idx)
    centre_world = world.mean(0)
    # A white-matter voxel away from the centre line, deterministic for the seed.
    far = idx[np.abs(world[:, 0] - centre_world[0]) > 15]
    pick = far[rng.integers(len(far))]
    target = vol.voxel_to_world(pick[None])[0]
    grid = vol.voxel_to_world(np.indices(vol.shape).reshape(3, -1).T).reshape(vol.shape + (3,))
    dist = np.linalg.norm(grid - target, axis=-1)
    weight = np.clip((radius_mm - dist) / 2.0 + 0.5, 0, 1)
    wm_level = np.median(vol.array[wm > 0.95])
    arr = vol.array.astype(np.float32) + weight * contrast * wm_level
    return Volume(np.round(arr).astype(np.int16), vol.affine, "MR", meta=dict(vol.meta)), target


@pytest.mark.parametrize(
    "code,spacing,oblique,seed",
    [
        ("RAS", (1.0, 1.0, 1.0), 0.0, 880001),
        ("LPS", (0.9, 0.9, 2.0), 0.0, 880002),
        ("LAS", (1.1, 1.3, 1.0), 14.0, 880003),
    ],
)
def test_lesion_is_localised_and_ranked_first(model, template, code, spacing, oblique, seed):
    scan = healthy(template, seed)
    vol, wm = regrid(scan, code, spacing, oblique)
    assert geometry.orientation_code(vol.affine) == code
    lesioned, target = insert_lesion(vol, wm, seed=seed)
    res = analyze(lesioned, model)
    assert res.heatmap.shape == vol.shape and np.allclose(res.heatmap.affine, vol.affine)
    peak = np.unravel_index(np.argmax(res.heatmap.array), vol.shape)
    assert np.linalg.norm(vol.voxel_to_world(np.array(peak, float)) - target) < 5.0 + max(spacing)
    assert res.findings, "the lesion must be found"
    first = res.findings[0]
    assert np.linalg.norm(np.array(first.centroid_world) - target) < 5.0
    # In the reference template's coordinates (MNI), where the generator drew this head from: the pose
    # undone (up to the generator's smooth deformation of a few mm and the alignment's error).
    assert res.report()["reference_frame"] == "mni152-2009a"
    assert np.linalg.norm(np.array(first.centroid_reference) - template_point(scan, target)) < 7.0
    # Findings drawn again at the same threshold (as the viewer does when its threshold moves) are the same.
    again = res.at_threshold(res.threshold)
    assert [f.to_json() for f in again.findings] == [f.to_json() for f in res.findings]
    np.testing.assert_array_equal(again.labels.array, res.labels.array)
    # The lesion raises the scan score clearly above the same scan without it.
    clean = analyze(vol, model)
    assert res.percentile > 90 and res.score > clean.score + 1.0, (res.score, clean.score, res.percentile)
    assert first.peak > model.card.calibration["threshold"] >= max((f.peak for f in clean.findings), default=0)


def test_skull_stripped_scans_are_judged_like_whole_heads(model, template):
    scan = healthy(template, 880501)
    vol, wm = regrid(scan, "LPS", (1.0, 1.0, 1.2), 8.0)
    from dataclasses import replace

    _, brain = regrid(replace(scan, wm=scan.brain), "LPS", (1.0, 1.0, 1.2), 8.0)
    keep = brain > 0.5
    stripped = vol.with_array(np.where(keep, vol.array, 0).astype(np.int16))
    res = analyze(stripped, model)
    assert res.extra["skull_stripped"] is True
    assert res.percentile < 95 and res.findings == [], (res.score, [f.describe() for f in res.findings])
    from scipy import ndimage

    near = ndimage.binary_dilation(keep, iterations=3)  # the 2 mm map, interpolated, reaches a little beyond
    assert not res.heatmap.array[~near].any(), "voxels the scan does not have are not assessed"
    lesioned, target = insert_lesion(stripped, wm, seed=880501)
    hit = analyze(lesioned.with_array(np.where(keep, lesioned.array, 0).astype(np.int16)), model)
    assert hit.findings and np.linalg.norm(np.array(hit.findings[0].centroid_world) - target) < 5.0


def test_scan_that_cuts_off_part_of_the_brain_is_not_flagged_at_the_cut(model, template):
    vol, _ = regrid(healthy(template, 880601), "RAS", (1.0, 1.0, 1.0), 0.0)
    k0 = int(vol.shape[2] * 0.45)  # the field of view ends above the cerebellum
    shift = np.eye(4)
    shift[2, 3] = k0
    top = Volume(np.ascontiguousarray(vol.array[:, :, k0:]), vol.affine @ shift, "MR", meta=dict(vol.meta))
    res = analyze(top, model)
    assert res.extra["coverage"] < 0.8
    assert res.percentile < 95 and res.findings == [], (res.score, [f.describe() for f in res.findings])


def lesion_slab_case(template, seed: int, code: str):
    """A 1 mm head with a lesion: its volume, a copy of its voxels to damage, the lesion's world centre
    and the slice index (third axis) through it."""
    vol, wm = regrid(healthy(template, seed), code, (1.0, 1.0, 1.0), 0.0)
    lesioned, target = insert_lesion(vol, wm, seed=seed)
    k = int(np.round(np.linalg.inv(vol.affine) @ [*target, 1])[2])
    return vol, lesioned.array.copy(), target, k


def test_padding_outside_the_field_of_view_is_not_anatomy(model, template):
    # Resampled scans fill what the field of view left out with the type's minimum; a slab so filled is
    # analysed like the same slab cropped: the lesion found, the padding neither aligned to nor flagged.
    vol, arr, target, k = lesion_slab_case(template, 880701, "RAS")
    arr[:, :, : k - 30] = -32768
    arr[:, :, k + 30 :] = -32768
    res = analyze(Volume(arr, vol.affine, "MR", meta=dict(vol.meta)), model)
    assert res.extra["coverage"] < 0.9
    assert res.findings and np.linalg.norm(np.array(res.findings[0].centroid_world) - target) < 5.0
    assert len(res.findings) == 1, [f.describe() for f in res.findings]
    assert not res.heatmap.array[arr == -32768].any()


def test_dropped_slices_are_named_and_not_findings(model, template):
    # Zero-filled slices through the head (a failed conversion or transfer) are missing data: without
    # care they were a "bilateral" finding of 100 mL at the 100th percentile, ahead of the real lesion.
    vol, arr, target, k = lesion_slab_case(template, 880801, "LPS")
    slab = slice(k + 25, k + 28) if k + 28 < arr.shape[2] - 40 else slice(k - 28, k - 25)
    arr[:, :, slab] = 0
    res = analyze(Volume(arr, vol.affine, "MR", meta=dict(vol.meta)), model)
    assert any("no signal inside the scan" in w and "3 slice(s)" in w for w in res.warnings), res.warnings
    assert len(res.findings) == 1, [f.describe() for f in res.findings]
    assert np.linalg.norm(np.array(res.findings[0].centroid_world) - target) < 5.0
    assert not res.heatmap.array[:, :, slab].any()  # not assessed


def test_a_saturated_scan_is_refused_naming_the_clipping_and_the_file(model, template):
    scan = healthy(template, 880811)
    arr = scan.volume.array
    head = arr > 0.2 * np.percentile(arr, 60)
    clipped = np.minimum(arr, np.median(arr[head])).astype(arr.dtype)  # the brain at one value
    vol = Volume(clipped, scan.volume.affine, "MR", meta=dict(scan.volume.meta), source="/data/clipped.nii.gz")
    with pytest.raises(InputError, match=r"clipped\.nii\.gz: .*saturated \(clipped\)"):
        analyze(vol, model)


def test_a_strong_bias_field_is_named_and_a_healthy_scan_has_none(model, template):
    scan = healthy(template, 880821)
    vol = scan.volume
    clean = analyze(vol, model)
    assert not any("drifts smoothly" in w for w in clean.warnings) and clean.extra["intensity_bias"] < 1.5
    # An uncorrected coil sensitivity: a linear front-to-back gradient of +-40 % across the head.
    world = vol.voxel_to_world(np.indices(vol.shape).reshape(3, -1).T).reshape(vol.shape + (3,))
    field = 1 + 0.4 * np.clip((world[..., 1] + 18) / 90, -1.2, 1.2)
    biased = analyze(vol.with_array(np.round(vol.array * field).astype(np.int16)), model)
    assert any("drifts smoothly" in w and "N4" in w for w in biased.warnings), biased.warnings
    assert biased.extra["intensity_bias"] > 1.7
    # An array coil's shading: the centre 20 % darker and the brain's edge 20 % brighter, no trend across.
    assert not any("centre to its edge" in w for w in clean.warnings) and clean.extra["intensity_bias_radial"] < 1.2
    brain = scan.brain > 0.5
    centre = np.argwhere(brain).mean(axis=0)
    r = np.linalg.norm((np.indices(vol.shape).T - centre).T * np.asarray(vol.spacing)[:, None, None, None], axis=0)
    shade = 0.8 + 0.4 * np.clip(r / r[brain].max(), 0, 1)
    shaded = analyze(vol.with_array(np.round(vol.array * shade).astype(np.int16)), model)
    assert any("from the brain's centre to its edge" in w and "N4" in w for w in shaded.warnings), shaded.warnings
    assert shaded.extra["intensity_bias_radial"] > 1.25 and shaded.extra["intensity_bias"] < 1.7


def test_enlarged_csf_spaces_are_not_read_as_a_bias_field(model, template):
    # Atrophy: ventricles and sulci widened by 1.5-2 mm into the brain around them (500 mL), at the CSF's level. A
    # fit over all tissue read the lost grey matter as a centre or an edge darker than the rest and advised N4.
    from scipy import ndimage

    scan = healthy(template, 880877)
    vol = scan.volume
    brain, csf = scan.brain > 0.5, (scan.csf > 0.5) & (scan.brain > 0.5)
    reach = [max(1, int(round(1.5 / s))) for s in vol.spacing]
    grown = ndimage.binary_dilation(csf, np.ones([2 * r + 1 for r in reach], bool)) & brain & ~csf
    arr = vol.array.copy()
    arr[grown] = np.median(arr[csf])
    res = analyze(vol.with_array(arr), model, reconstruction=False)
    assert not any("N4" in w for w in res.warnings), res.warnings
    assert res.extra["intensity_bias"] < 1.7 and res.extra["intensity_bias_radial"] < 1.25
    # Less tissue is no other contrast either.
    assert not any("tissue contrast" in w for w in res.warnings), res.warnings


def test_hot_voxels_are_not_findings(model, template):
    # One voxel in 2000 set to the type's maximum (hot pixels, corrupted samples): each would be a tiny bright
    # lesion on the model grid. The lesion stays the only finding, and the report says what was replaced.
    scan = healthy(template, 880702)
    vol, wm = regrid(scan, "RAS", (1.0, 1.0, 1.0), 0.0)
    lesioned, target = insert_lesion(vol, wm, seed=880702)
    arr = lesioned.array.copy()
    hot = np.random.default_rng(0).choice(arr.size, arr.size // 2000, replace=False)
    arr.flat[hot] = np.iinfo(arr.dtype).max
    res = analyze(Volume(arr, vol.affine, "MR", meta=dict(vol.meta)), model)
    assert len(res.findings) == 1, [f.describe() for f in res.findings]
    assert np.linalg.norm(np.array(res.findings[0].centroid_world) - target) < 5.0
    assert any("isolated voxel(s) far brighter" in w for w in res.warnings), res.warnings


def test_healthy_scans_score_low_and_have_no_findings(model, template):
    for seed in (880101, 880102):
        res = analyze(healthy(template, seed).volume, model)
        assert res.percentile < 95, res.score
        assert res.findings == [], [f.describe() for f in res.findings]


def test_same_input_same_heatmap(model, template):
    vol = healthy(template, 880201, variation=0.5).volume
    a, b = analyze(vol, model), analyze(vol, model)
    np.testing.assert_array_equal(a.heatmap.array, b.heatmap.array)
    assert a.score == b.score


def test_ct_scan_is_refused_by_the_brain_model(model):
    arr = np.full((64, 64, 40), -1000, np.int16)
    arr[10:54, 10:54, :] = 40
    vol = Volume(arr, np.diag([3.0, 3.0, 5.0, 1.0]), modality="CT", meta={"body_part": "CHEST"})
    with pytest.raises(ModelMismatchError, match="CT"):
        analyze(vol, model)


def test_an_mr_filled_with_minus_1024_outside_its_field_is_analysed_as_mr_when_forced(model, template):
    """Judged CT from its values, the refusal says why and how; forced, the fill is padding, not tissue."""
    vol = healthy(template, 880823).volume
    arr = vol.array.astype(np.float32)
    filled = arr.copy()
    filled[:, :, -12:] = -1024  # the top of the field, beyond the head, filled by a resampling tool
    guessed = Volume(filled, vol.affine, modality="CT", meta={**vol.meta, "modality_guessed": True})
    with pytest.raises(ModelMismatchError, match="filled with -1024 outside its field, which is analysed as MR when"):
        analyze(guessed, model, reconstruction=False)
    forced = analyze(guessed, model, reconstruction=False, force=True)
    zero = analyze(vol.with_array(np.where(filled == -1024, 0, arr)), model, reconstruction=False)
    assert abs(forced.score - zero.score) < 0.5


def test_a_forced_head_ct_warns_of_its_modality_only_and_is_marked_forced(model, template):
    # A head CT in HU: the brain model refuses it; forced, the one warning that applies is the modality's,
    # not an MR sequence's ("inverted, like T2") or an orientation's, and the result says it was forced.
    scan = healthy(template, 880021)
    head = scan.volume.array > 0.1 * scan.volume.array.max()
    hu = np.where(head, 600, -1000) + np.where(scan.brain > 0.5, 35 - 600, 0) + np.where(scan.wm > 0.5, -8, 0)
    hu = hu + np.random.default_rng(0).normal(0, 4, hu.shape)
    vol = Volume(hu.astype(np.int16), scan.volume.affine, modality="CT", meta={"body_part": "HEAD"})
    res = analyze(vol, model, force=True)
    forced = [w for w in res.warnings if w.startswith("Forced past")]
    assert forced and all("trained on MR" in w for w in forced), res.warnings
    assert not any("T2" in w or "orientation" in w.lower() for w in res.warnings), res.warnings
    assert res.forced and res.report()["forced"] is True
    assert not analyze(healthy(template, 880022).volume, model).forced


@pytest.mark.parametrize("value", [0, 417])
def test_blank_scan_is_refused_with_a_clear_error_even_when_forced(model, value):
    vol = Volume(np.full((96, 110, 90), value, np.int16), np.diag([2.0, 2.0, 2.0, 1.0]), "MR", source="blank.nii")
    with pytest.raises(InputError, match=f"every voxel has the same value \\({value}\\).*original series"):
        analyze(vol, model, force=True)


def test_mask_or_label_map_is_refused_as_not_an_image(model, template):
    scan = healthy(template, 880404)
    labels = (scan.brain > 0.5).astype(np.uint8) + (scan.wm > 0.5).astype(np.uint8)
    with pytest.raises(ModelMismatchError, match="only 3 distinct values.*mask or label map.*open the scan itself"):
        analyze(scan.volume.with_array(labels), model)
    # An image stored in 8 bits is still an image.
    arr = scan.volume.array.astype(np.float32)
    as_uint8 = np.round(arr / arr.max() * 255).astype(np.uint8)
    assert not any("distinct values" in w for w in analyze(scan.volume.with_array(as_uint8), model).warnings)


def test_registration_failure_is_an_input_error_not_a_crash():
    from medae.model.registration import register_to_reference

    ref = np.zeros((40, 40, 40), np.float32)
    ref[10:30, 10:30, 10:30] = 1
    blank = np.zeros((40, 40, 40), np.float32)
    with pytest.raises(InputError, match="could not be aligned.*not empty"):
        register_to_reference(blank, np.diag([2.0, 2.0, 2.0, 1.0]), ref, np.diag([2.0, 2.0, 2.0, 1.0]))


def _other_sequence(scan, wm: float, gm: float, csf: float) -> Volume:
    """The same head with another tissue contrast (T2: CSF bright, white matter dark)."""
    rng = np.random.default_rng(3)
    arr = scan.volume.array.astype(np.float32)
    head = (arr > 0.05 * arr.max()) & (scan.brain <= 0.1)
    tissue = (wm * scan.wm + gm * scan.gm + csf * scan.csf) * (scan.brain > 0.1)
    values = np.clip(tissue + 0.3 * head + rng.normal(0, 0.02, arr.shape), 0, None) * 1000
    return scan.volume.with_array(values.astype(np.float32))


def test_scan_of_another_sequence_is_refused_and_t1_is_not(model, template):
    scan = healthy(template, 880401, variation=0.8)
    t1 = analyze(scan.volume, model)
    assert t1.extra["contrast_similarity"] > 0.5
    assert not any("contrast" in w for w in t1.warnings), t1.warnings
    t2 = _other_sequence(scan, wm=0.25, gm=0.45, csf=1.0)
    with pytest.raises(ModelMismatchError, match="contrast is inverted"):
        analyze(t2, model)
    # From a file, the refusal is led by it, as every other refusal is (a batch's table names many scans).
    with pytest.raises(ModelMismatchError, match=r"^/studies/t2\.nii\.gz: the scan's tissue contrast is inverted"):
        analyze(dataclasses.replace(t2, source="/studies/t2.nii.gz"), model)
    forced = analyze(t2, model, force=True)
    assert forced.extra["contrast_similarity"] < 0
    assert any("Forced past a contrast mismatch" in w for w in forced.warnings)
    flair = analyze(_other_sequence(scan, wm=0.55, gm=0.75, csf=0.08), model)
    assert any("contrast differs" in w for w in flair.warnings), flair.warnings


def test_a_ct_of_the_head_that_is_not_in_hounsfield_units_is_refused_as_unlike_the_model(model, template):
    """A brain-windowed CT (0-80 HU kept, stored without its offset): no HU range gives it away as CT."""
    scan = healthy(template, 880401, variation=0.8)
    arr = scan.volume.array.astype(np.float32)
    skull = (arr > 0.05 * arr.max()) & (scan.brain <= 0.1)
    hu = (30 * scan.wm + 40 * scan.gm + 5 * scan.csf) * (scan.brain > 0.1) + 80 * skull
    ct = scan.volume.with_array(np.clip(hu + np.random.default_rng(3).normal(0, 2, arr.shape), 0, 80))
    with pytest.raises(ModelMismatchError, match="barely resembles.*another modality"):
        analyze(ct, model)


def test_a_head_whose_header_shrinks_its_voxels_is_refused_with_its_size(model, template):
    """Voxel sizes a tenth of the truth (a header written in cm): the refusal says how small the scan is."""
    scan = healthy(template, 880402)
    affine = scan.volume.affine.copy()
    affine[:3, :3] *= 0.1
    with pytest.raises(ModelMismatchError, match="mm across, far smaller than the brain.*voxel sizes in its header"):
        analyze(Volume(scan.volume.array, affine, "MR"), model)


def test_a_crop_and_a_file_in_other_units_are_named_as_such(model, template):
    scan = healthy(template, 880402)
    i, j, k = (n // 2 for n in scan.volume.shape)
    crop = Volume(scan.volume.array[i - 8 : i + 8, j - 8 : j + 8, k - 8 : k + 8].copy(), scan.volume.affine, "MR")
    with pytest.raises(ModelMismatchError, match=r"usual size but it has only 16 x 16 x 16.*crop.*Open the whole scan"):
        analyze(crop, model)
    affine = scan.volume.affine.copy()
    affine[:3, :] *= 0.001  # a header that says microns where the numbers are mm, converted on load
    micron = Volume(scan.volume.array, affine, "MR", meta={"space_unit": "micron"})
    with pytest.raises(ModelMismatchError, match=r"0\.1\d* x .*distances in microns.*units field.*spatial units"):
        analyze(micron, model)


def test_a_slab_too_thin_to_align_is_refused_even_when_forced_and_a_thin_one_aligns(model, template):
    vol = healthy(template, 880402).volume
    k = vol.shape[2] // 2
    for n in (1, 3):
        slab = Volume(vol.array[:, :, k : k + n].copy(), vol.affine @ _shift(k), "MR")
        with pytest.raises(ModelMismatchError, match=f"only {n} slices? along one axis.*open the whole scan") as err:
            analyze(slab, model, force=True)
        assert "--force" not in str(err.value)
    # Five slices cannot make a meaningful result, but forced they are analysed, not an aligner's internal error.
    slab = Volume(vol.array[:, :, k : k + 5].copy(), vol.affine @ _shift(k), "MR")
    with pytest.raises(ModelMismatchError, match="only 5 slices.*--force"):
        analyze(slab, model)
    forced = analyze(slab, model, force=True, reconstruction=False)
    assert forced.heatmap.shape == slab.shape and forced.forced


def _shift(k: int) -> np.ndarray:
    out = np.eye(4)
    out[2, 3] = k
    return out


@pytest.mark.parametrize("axis", ["front-back", "top-bottom"])
def test_scan_whose_header_reverses_an_axis_is_refused_with_the_cause(model, template, axis):
    from dataclasses import replace

    from medae.analysis.orientation import FLIPS, flipped_affine

    scan = healthy(template, 880402, variation=0.9)
    upright = analyze(scan.volume, model, reconstruction=False)
    assert not any("orientation" in w for w in upright.warnings), upright.warnings
    signs = next(v for k, v in FLIPS.items() if k.startswith(axis))
    wrong = replace(scan.volume, affine=flipped_affine(scan.volume, signs))
    with pytest.raises(ModelMismatchError, match=f"orientation header looks wrong.*{axis}.*--force"):
        analyze(wrong, model)
    forced = analyze(wrong, model, force=True, reconstruction=False)
    assert any("Forced past a likely orientation error" in w for w in forced.warnings), forced.warnings
    # The reversed axis is named, not a contrast problem: the scan is a T1 head.
    assert not any("contrast" in w for w in forced.warnings)


def test_outputs_on_the_input_grid(model, template, tmp_path):
    from medae.io import load

    vol = healthy(template, 880301, variation=0.5).volume
    res = analyze(vol, model)
    written = write_outputs(res, tmp_path)
    heat = load(written["heatmap"])
    assert heat.array.dtype == np.float32 and heat.shape == vol.shape
    np.testing.assert_allclose(heat.affine, vol.affine, atol=1e-4)
    assert load(written["findings"]).shape == vol.shape
    report = json.loads(written["report"].read_text())
    for key in ("score", "percentile", "threshold", "findings", "model", "warnings", "timings"):
        assert key in report
    assert report["contrast_similarity"] > 0.5
    assert report["model"]["sha256"] == model.card.sha256
    assert not list(tmp_path.glob(".*")), "no temporary files left behind"


def test_cli_on_a_dicom_folder_with_two_series(model, template, tmp_path):
    from dicom_factory import write_series

    from medae.cli import main

    vol = healthy(template, 880401, variation=0.5).volume
    arr, aff = geometry.reorient(vol.array, vol.affine, "LPS")
    folder = tmp_path / "study"
    write_series(
        folder,
        np.ascontiguousarray(arr),
        aff,
        modality="MR",
        series_number=1,
        description="T1",
        prefix="a",
        edit=lambda ds, k: setattr(ds, "PatientName", "Doe^Jane"),
    )
    write_series(
        folder,
        np.ascontiguousarray(arr[::2, ::2]),
        aff @ np.diag([2, 2, 1, 1]),
        modality="MR",
        series_number=2,
        description="T1 low",
        prefix="b",
    )
    with pytest.raises(SeriesSelectionError):
        main_with_errors(main, [str(folder), "--out", str(tmp_path / "x")])
    assert main(["analyze", str(folder), "--all", "--out", str(tmp_path / "all"), "--dicom", "--device", "cpu"]) == 0
    outs = sorted(p.parent for p in (tmp_path / "all").rglob("report.json"))
    assert len(outs) == 2
    for out in outs:
        pmap = out / "heatmap_pmap.dcm"
        assert pmap.exists() and (out / "summary_sc.dcm").exists() and (out / "summary.png").exists()
        assert b"Doe^Jane" not in pmap.read_bytes()
        if shutil.which("dciodvfy"):
            check = subprocess.run(["dciodvfy", str(pmap)], capture_output=True, text=True)
            assert not [ln for ln in (check.stdout + check.stderr).splitlines() if ln.startswith("Error")]


def main_with_errors(main, args):
    """Runs analyze through the parser but lets the MedaeError escape, to check its type."""
    from medae.cli import build_parser

    ns = build_parser().parse_args(["analyze", *args])
    return ns.func(ns)


def test_a_model_without_calibration_says_so_and_writes_valid_json(model, template):
    import copy
    import dataclasses
    import json

    uncalibrated = copy.copy(model)
    uncalibrated.card = dataclasses.replace(model.card, calibration={})
    res = analyze(healthy(template, 880831).volume, uncalibrated)
    assert any("no calibration on healthy scans" in w for w in res.warnings)
    report = json.loads(json.dumps(res.report(), allow_nan=False))  # no NaN in what is written
    assert report["percentile"] is None


def test_slices_thick_enough_to_lose_a_small_lesion_are_named(model):
    from medae.analysis.checks import check_input

    head = np.random.default_rng(0).normal(100, 10, (160, 200, 36)).astype(np.float32)
    for thickness, warned in ((3.0, False), (5.0, True)):
        vol = Volume(head, np.diag([1.0, 1.0, thickness, 1.0]), "MR")
        notes = [w for w in check_input(vol, model.card) if w.startswith("Thick slices")]
        assert bool(notes) == warned, (thickness, notes)


def test_ghosts_along_the_phase_axis_are_named_and_a_clean_head_has_none(model, template):
    from medae.analysis.ghosts import GHOST_WARN_ABOVE, ghost_excess

    vol = healthy(template, 880822).volume
    clean = ghost_excess(vol)
    assert clean is None or clean[1] < GHOST_WARN_ABOVE / 3
    # A copy of the head at 15 % of its brightness, shifted by half the field of view front to back.
    axis = int(np.argmax(np.abs(vol.affine[1, :3])))
    ghosted = vol.array + 0.15 * np.roll(vol.array.astype(np.float32), vol.shape[axis] // 2, axis=axis)
    res = analyze(vol.with_array(ghosted.astype(np.float32)), model, reconstruction=False)
    assert res.extra["ghosting"]["axis"] == "front-back" and res.extra["ghosting"]["excess"] > GHOST_WARN_ABOVE
    assert any("ghosts of the head" in w and "front-back" in w for w in res.warnings), res.warnings


def test_a_bias_reading_on_a_ghosted_scan_names_the_ghosts_rather_than_advising_a_bias_correction(model, template):
    # Ghosts spread intensity across the brain unevenly; N4 would not remove them, so it is not the advice.
    # A gradient of +-50 %: at +-40 % this head read 1.69-1.73, at the threshold whichever tissue the fit used.
    vol = healthy(template, 880822).volume
    world = vol.voxel_to_world(np.indices(vol.shape).reshape(3, -1).T).reshape(vol.shape + (3,))
    field = 1 + 0.5 * np.clip((world[..., 1] + 18) / 90, -1.2, 1.2)
    axis = int(np.argmax(np.abs(vol.affine[1, :3])))
    biased = vol.array * field
    ghosted = biased + 0.15 * np.roll(biased.astype(np.float32), vol.shape[axis] // 2, axis=axis)
    res = analyze(vol.with_array(ghosted.astype(np.float32)), model, reconstruction=False)
    assert any("ghosts of the head" in w for w in res.warnings), res.warnings
    (said,) = [w for w in res.warnings if "drifts smoothly" in w]
    assert "N4" in said and "would not remove them" in said and "Correct the bias field" not in said


def test_the_ghost_measure_keeps_to_the_air_above_the_head_and_ignores_zero_padding(template):
    from medae.analysis.ghosts import GHOST_WARN_ABOVE, ghost_excess

    vol = healthy(template, 880822).volume
    si = int(np.argmax(np.abs(vol.affine[2, :3])))
    up = vol.affine[2, si] > 0
    arr = np.moveaxis(vol.array.astype(np.float32), si, 0)
    rng = np.random.default_rng(4)
    tissue = float(np.median(arr[arr > 0.3 * np.percentile(arr, 99)]))
    # A long neck below the head (coil fall-off: a quarter of the tissue's brightness), as sagittal scans show.
    neck = 0.28 * tissue + rng.normal(0, 0.02 * tissue, (70, *arr.shape[1:])).astype(np.float32)
    arr = np.concatenate([neck, arr] if up else [arr, neck], axis=0)
    shift = np.eye(4)
    shift[si, 3] = -70 if up else 0
    with_neck = Volume(np.moveaxis(arr, 0, si), vol.affine @ shift, "MR")
    flip = np.eye(4)  # the same voxels stored with the index running towards the feet (PIR-like)
    flip[si, si], flip[si, 3] = -1, with_neck.shape[si] - 1
    stored_down = Volume(np.flip(with_neck.array, axis=si).copy(), with_neck.affine @ flip, "MR")
    for v in (with_neck, stored_down):
        got = ghost_excess(v)
        assert got is None or got[1] < GHOST_WARN_ABOVE / 3, got
    # Zero padding along one axis (a scan resampled into a larger grid) holds no noise and no ghost.
    lr = int(np.argmax(np.abs(vol.affine[0, :3])))
    noisy = vol.array.astype(np.float32) + np.abs(rng.normal(0, 0.05 * tissue, vol.shape)).astype(np.float32)
    pad = [(0, 0)] * 3
    pad[lr] = (40, 40)
    padded = Volume(np.pad(noisy, pad), vol.affine, "MR")
    got = ghost_excess(padded)
    assert got is None or got[1] < GHOST_WARN_ABOVE / 2, got
    # The same with the fill of ITK's and ANTs' resampling, the type's minimum: not a ghost 10 times the tissue.
    filled = Volume(np.pad(noisy, pad, constant_values=-32768).astype(np.int16), vol.affine, "MR")
    got = ghost_excess(filled)
    assert got is None or got[1] < GHOST_WARN_ABOVE / 2, got


def test_a_defaced_head_is_aligned_as_the_whole_head_is(model, template):
    """Shared scans come defaced: a face set to 0 must not pull the reference's face towards air."""
    from scipy import ndimage

    scan = healthy(template, 880822)
    vol = scan.volume
    brain = ndimage.binary_dilation(scan.brain > 0.1, iterations=5)
    world = vol.voxel_to_world(np.indices(vol.shape).reshape(3, -1).T).reshape(vol.shape + (3,))
    inside = world[brain]
    front, low, high = np.median(inside[:, 1]), inside[:, 2].min(), inside[:, 2].max()
    face = (world[..., 1] > front + 20) & (world[..., 2] < low + 0.45 * (high - low)) & ~brain
    defaced = vol.array.copy()
    defaced[face] = 0
    whole = analyze(vol, model, reconstruction=False)
    res = analyze(vol.with_array(defaced), model, reconstruction=False)
    assert res.extra["blanked_ml"] > 1000 and whole.extra["blanked_ml"] == 0  # left out of the alignment
    points = np.c_[inside[::500], np.ones(len(inside[::500]))]
    moved = [points @ np.linalg.inv(np.array(r.extra["alignment"]["reference_to_input"])).T for r in (whole, res)]
    shift = np.linalg.norm((moved[0] - moved[1])[:, :3], axis=1)
    assert shift.max() < 1.0, shift.max()  # 1.7 mm when the removed face counted
    assert not res.findings
    assert not any("brain's region is set to zero" in w for w in res.warnings)  # the face is not brain


def test_brain_blanked_to_zero_is_not_assessed_and_is_said(model, template):
    """A part of the brain set to zero holds no data: it was scored as a large abnormality, with no word."""
    scan = healthy(template, 880822)
    vol = scan.volume
    world = vol.voxel_to_world(np.indices(vol.shape).reshape(3, -1).T).reshape(vol.shape + (3,))
    brain_top = world[..., 2][scan.brain > 0.5].max()
    blanked = vol.array.copy()
    blanked[world[..., 2] > brain_top - 25] = 0  # the top 25 mm of the head, brain included
    res = analyze(vol.with_array(blanked), model, reconstruction=False)
    assert not res.findings, [f.describe() for f in res.findings]
    assert any("of the brain's region is set to zero" in w and "not assessed" in w for w in res.warnings)


def test_a_slab_of_a_healthy_head_is_said_to_be_judged_less_surely(model, template):
    """A healthy 30 mm slab (28% of the region) scored above every healthy scan, with five findings.

    The only word was "the rest is not assessed", as if the part it covers were judged as surely as a
    whole scan; the alignment and the intensity scaling rest on that part alone.
    """
    vol = healthy(template, 777001).volume
    axis = int(np.argmax(np.abs(vol.affine[2, :3])))
    step = abs(vol.affine[2, axis])
    n = int(30 / step)
    centre = vol.shape[axis] // 2 + int(-25 / step * np.sign(vol.affine[2, axis]))
    index = [slice(None)] * 3
    index[axis] = slice(centre - n // 2, centre - n // 2 + n)
    shift = np.zeros(3)
    shift[axis] = centre - n // 2
    affine = vol.affine.copy()
    affine[:3, 3] = vol.affine[:3, :3] @ shift + vol.affine[:3, 3]
    res = analyze(Volume(vol.array[tuple(index)], affine, "MR"), model, reconstruction=False)
    assert any(w.startswith("The scan covers only") for w in res.warnings), res.warnings
    (note,) = [w for w in res.warnings if "judged less surely" in w]
    assert "score" in note and "caution" in note, note


def test_a_scan_after_a_contrast_agent_is_named_and_one_before_is_not(model, tmp_path):
    from medae.analysis.checks import check_input
    from medae.io import load
    from tests.dicom_factory import axial_affine, write_series

    head = np.random.default_rng(0).normal(300, 30, (64, 64, 40)).astype(np.int16)

    def agent(ds, k):
        ds.ContrastBolusAgent = "Gadobutrol"

    write_series(tmp_path / "tag", head, axial_affine((3.0, 3.0, 3.0)), modality="MR", description="T1", edit=agent)
    write_series(tmp_path / "post", head, axial_affine((3.0, 3.0, 3.0)), modality="MR", description="AX T1 +C")
    write_series(tmp_path / "pre", head, axial_affine((3.0, 3.0, 3.0)), modality="MR", description="T1 PRE GAD")
    notes = {name: check_input(load(tmp_path / name), model.card) for name in ("tag", "post", "pre")}
    assert any("contrast agent (Gadobutrol)" in w for w in notes["tag"]), notes["tag"]
    assert any("series description (AX T1 +C)" in w and "choroid plexus" in w for w in notes["post"])
    assert not any("contrast agent" in w for w in notes["pre"])
    # Placeholders some exports write for none, other words than contrast ones, and BIDS names.
    from dataclasses import replace

    plain = load(tmp_path / "pre")
    for agent, description, fmt, warned in (
        ("NONE", "T1", "dicom", False),
        ("N/A", "T1", "dicom", False),
        ("Gadovist", "T1 PRE GAD", "dicom", False),  # the description says before: it wins
        ("", "T1 ohne KM", "dicom", False),
        ("", "T1 post-surgery", "dicom", False),
        ("", "AX T1 POST", "dicom", True),
        ("", "sub-01_ses-post_T1w.nii.gz", "nifti", False),
        ("", "sub-gd01_T1w.nii.gz", "nifti", False),
        ("", "sub-01_ce-gadolinium_T1w.nii.gz", "nifti", True),
        ("", "T1_MPRAGE_POST_GAD.nii.gz", "nifti", True),  # the usual clinical export's name
        ("", "T1+C.nii.gz", "nifti", True),
        ("", "T1_PRE_GAD.nii.gz", "nifti", False),
        ("Gadovist", "scan_no1.nii.gz", "nifti", True),
        ("", "T1_MPRAGE_POST-GAD.nii.gz", "nifti", True),  # a hyphen makes no BIDS name
        ("", "BraTS2021_00000_t1ce.nii.gz", "nifti", True),  # public contrast-enhanced sets' own names
        ("", "BraTS-GLI-00000-000-t1c.nii.gz", "nifti", True),
        (
            "",
            "T1_MPRAGE_SAG_P2_ISO_0.9_5.nii.gz",
            "nifti",
            False,
        ),  # a dcm2niix name without contrast  # a name's "no" is no word about the agent the header names
    ):
        meta = {**plain.meta, "contrast_agent": agent, "series_description": description, "format": fmt}
        source = str(tmp_path / description) if fmt == "nifti" else plain.source  # a file's name is its own
        got = any("contrast agent" in w for w in check_input(replace(plain, meta=meta, source=source), model.card))
        assert got == warned, (agent, description)


def test_results_carry_the_scans_units_and_nifti_space(model, template):
    scan = healthy(template, 880403)
    meta = {"nifti_space_code": 4, "space_unit": "mm"}
    result = analyze(Volume(scan.volume.array, scan.volume.affine, "MR", meta=meta), model)
    for vol in (result.heatmap, result.labels, result.reconstruction, result.residual):
        assert vol.meta["nifti_space_code"] == 4 and vol.meta["space_unit"] == "mm", vol.meta.get("kind")


def test_a_scan_in_tiny_units_is_analysed_like_the_same_scan_and_one_beyond_float32_is_refused(model, template):
    scan = healthy(template, 880404).volume
    plain = analyze(scan, model, reconstruction=False)
    tiny = analyze(Volume(scan.array.astype(np.float64) * 1e-25, scan.affine, "MR"), model, reconstruction=False)
    assert tiny.score == pytest.approx(plain.score, abs=0.2)  # units do not matter, nor "no contrast" at 1e-22
    huge = Volume(scan.array.astype(np.float64) * 1e300, scan.affine, "MR")  # used to spin in the aligner for ever
    with pytest.raises(InputError, match=r"values reach 1.*e\+30\d.*scaling is probably broken"):
        analyze(huge, model, reconstruction=False)


def test_a_tissue_probability_map_is_refused_by_its_name(model, tmp_path):
    """Analysed, a partial-volume map read as healthier than 98% of healthy scans; a WM map as widely abnormal."""
    from medae.io import load
    from medae.io.nifti import save_nifti

    scan = np.random.default_rng(0).random((40, 40, 30)).astype(np.float32)  # values 0-1, many levels
    for name in ("sub-01_label-WM_probseg.nii.gz", "T1_brain_pve_2.nii.gz", "c1sub-01_T1w.nii", "aseg.mgz"):
        path = tmp_path / name
        if name.endswith(".mgz"):
            import nibabel as nib

            nib.save(nib.MGHImage(scan, np.diag([2.0, 2.0, 2.0, 1.0])), str(path))
        else:
            save_nifti(Volume(scan, np.diag([2.0, 2.0, 2.0, 1.0]), "MR"), path)
        with pytest.raises(ModelMismatchError, match=r"segmentation or tissue probability map.*--force"):
            analyze(load(path), model, reconstruction=False)
    save_nifti(Volume(scan, np.diag([2.0, 2.0, 2.0, 1.0]), "MR"), tmp_path / "sub-01_T1w.nii.gz")
    from medae.analysis.checks import _derived_map_name

    assert _derived_map_name(load(tmp_path / "sub-01_T1w.nii.gz")) == ""
    save_nifti(Volume(scan, np.diag([2.0, 2.0, 2.0, 1.0]), "MR"), tmp_path / "c1_T1w.nii.gz")  # control 1's scan
    assert _derived_map_name(load(tmp_path / "c1_T1w.nii.gz")) == ""


def test_slices_that_lost_part_of_their_signal_are_filled_not_read_as_a_slab_of_abnormal_tissue(model, template):
    """Two slices at 15% of their signal gave one 105 mL finding across the brain, with only a generic warning."""
    scan = healthy(template, 880822)
    vol = scan.volume
    axis = int(np.argmax(np.abs(vol.affine[2, :3])))  # the axial slices
    middle = vol.shape[axis] // 2
    dark = np.moveaxis(vol.array.astype(np.float32).copy(), axis, 0)
    dark[middle : middle + 2] *= 0.15
    res = analyze(vol.with_array(np.moveaxis(dark, 0, axis)), model, reconstruction=False)
    assert not res.findings, [f.describe() for f in res.findings]
    assert any("far darker or brighter than their neighbours" in w and "not assessed" in w for w in res.warnings)
    clean = analyze(vol, model, reconstruction=False)
    assert not any("far darker" in w for w in clean.warnings)
