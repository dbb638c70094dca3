"""Model space and back: maps return to the right world coordinates; registration recovers known motion."""

from pathlib import Path

import numpy as np
import pytest

from medae import geometry
from medae.model.card import ModelCard
from medae.model.preprocess import Alignment, from_model_space, model_to_input_matrix, to_model_space
from medae.volume import Volume


def card(alignment="identity"):
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-47.0, -55.0, -47.0]
    return ModelCard(
        id="t",
        name="t",
        jobs=["anomaly"],
        modality="MR",
        body_part="BRAIN",
        architecture={"variant": "ae", "channels": [4], "latent_channels": 2},
        space={"shape": [48, 56, 48], "spacing": 2.0, "affine": aff.tolist(), "alignment": alignment},
        intensity={"method": "percentile", "low": 1, "high": 99},
        mask={"threshold": 0.5},
    )


def grid(code, spacing, oblique_deg=0.0, origin_shift=(0, 0, 0), fov_mm=(150, 170, 140)):
    shape = np.round(np.asarray(fov_mm) / np.asarray(spacing)).astype(int)
    aff = np.eye(4)
    aff[:3, :3] = geometry.rotation_matrix((oblique_deg, oblique_deg / 2, -oblique_deg)) @ np.diag(spacing)
    aff[:3, 3] = np.asarray(origin_shift) - aff[:3, :3] @ ((shape - 1) / 2)
    arr = np.zeros(tuple(shape), np.float32)
    arr2, aff2 = geometry.reorient(arr, aff, code)
    return np.ascontiguousarray(arr2), aff2


CASES = [
    ("RAS", (1.0, 1.0, 1.0), 0, (0, 0, 0), (150, 170, 140)),
    ("LPS", (0.8, 0.8, 3.0), 0, (10, -5, 7), (160, 180, 150)),
    ("LAS", (1.2, 0.9, 1.5), 15, (-12, 8, 0), (140, 160, 130)),
    ("PIR", (1.0, 2.0, 1.0), 25, (5, 5, 20), (120, 130, 110)),
]


@pytest.mark.parametrize("code,spacing,oblique,shift,fov", CASES)
def test_model_map_returns_to_right_world_position(code, spacing, oblique, shift, fov):
    c = card()
    arr, aff = grid(code, spacing, oblique, shift, fov)
    vol = Volume(arr, aff)
    alignment = Alignment(np.eye(4), None, "identity")
    m2i = model_to_input_matrix(c, aff, alignment)

    class MI:
        model_to_input = m2i

    target_world = np.array([11.0, -20.0, 9.0])
    model_vox = geometry.apply_affine(np.linalg.inv(c.affine), target_world)
    zz = np.indices(c.shape).astype(np.float32)
    blob = np.exp(-sum((zz[a] - model_vox[a]) ** 2 for a in range(3)) / (2 * 1.5**2))
    back = from_model_space(blob, MI, vol.shape)
    assert back.shape == vol.shape
    peak = np.array(np.unravel_index(np.argmax(back), back.shape), dtype=float)
    # Centre of mass around the peak, in world mm.
    w = back * (back > 0.5 * back.max())
    com = np.array([(np.indices(back.shape)[a] * w).sum() / w.sum() for a in range(3)])
    assert np.linalg.norm(vol.voxel_to_world(com) - target_world) < 1.0
    assert np.linalg.norm(vol.voxel_to_world(peak) - target_world) < max(spacing) * 1.5


def test_to_model_space_identity_puts_content_where_it_belongs():
    c = card()
    arr, aff = grid("LPS", (1.0, 1.0, 2.0), 10, (3, -4, 5))
    vol = Volume(arr, aff)
    world = vol.voxel_to_world(np.indices(arr.shape).reshape(3, -1).T).reshape(arr.shape + (3,))
    target = np.array([20.0, 10.0, -15.0])
    vol.array[:] = (np.linalg.norm(world - target, axis=-1) < 8).astype(np.float32) * 100 + 10
    vol.array[np.linalg.norm(world, axis=-1) > 65] = 0
    mi = to_model_space(vol, c, alignment=Alignment(np.eye(4), None, "identity"))
    assert mi.image.shape == c.shape
    bright = np.argwhere(mi.image > 0.5 * mi.image.max()).mean(0)
    assert np.linalg.norm(geometry.apply_affine(c.affine, bright) - target) < 2.0


@pytest.mark.parametrize("margin", [None, 25.0])
def test_the_cards_brain_stage_reaches_the_registration(monkeypatch, margin):
    """A card without ``space.brain_refine_mm`` keeps the whole-head fit its calibration was measured with."""
    import medae.model.preprocess as preprocess

    seen = {}

    def fake_register(image, affine, reference, ref_affine, **kwargs):
        seen.update(kwargs)
        return Alignment(np.eye(4), None, "affine")

    monkeypatch.setattr(preprocess, "register_to_reference", fake_register)
    c = card("register")
    if margin is not None:
        c.space["brain_refine_mm"] = margin
    arr, aff = grid("RAS", (2.0, 2.0, 2.0))
    arr[20:55, 20:65, 20:50] = 50.0  # a head-sized block, not a skull-stripped brain on a constant background
    arr += np.random.default_rng(0).normal(0, 5, arr.shape).astype(np.float32)
    ref_mask = np.zeros(c.shape, bool)
    ref_mask[10:38, 10:46, 10:38] = True
    to_model_space(Volume(arr, aff), c, np.ones(c.shape, np.float32), ref_mask)
    if margin is None:
        assert "reference_mask" not in seen
    else:
        assert seen["brain_margin_mm"] == margin
        assert seen["reference_mask"] is ref_mask


@pytest.mark.slow
@pytest.mark.parametrize("angles", [(8.0, -6.0, 10.0), (40.0, 0.0, 0.0), (-10.0, 25.0, -35.0), (-30.0, 20.0, 25.0)])
def test_registration_recovers_known_rigid_motion(angles):
    from medae.model.registration import register_to_reference
    from medae.training.config import load_config
    from medae.training.data import card_affine, prepare_reference
    from medae.training.healthy import generate_healthy, head_distance
    from medae.training.template import load_template

    cfg = load_config()
    ref, _ = prepare_reference(cfg)
    template = load_template()
    scan = generate_healthy(template, seed=424242, dist=head_distance(template), variation=0.0)
    vol = scan.volume
    motion = np.eye(4)
    # Small tilts, and heads lying far from the reference (chin to chest, turned and rolled).
    motion[:3, :3] = geometry.rotation_matrix(angles)
    motion[:3, 3] = [12.0, -9.0, 6.0]
    moved_aff = motion @ vol.affine  # the same voxels, moved in the world
    base = register_to_reference(vol.array, vol.affine, ref, card_affine(cfg))
    moved = register_to_reference(vol.array, moved_aff, ref, card_affine(cfg))
    pts = np.array([[0, -18, 12], [40, -18, 12], [-40, -18, 12], [0, 40, 12], [0, -70, 12], [0, -18, 60]], float)
    expected = geometry.apply_affine(motion @ base.ref_to_input, pts)
    got = geometry.apply_affine(moved.ref_to_input, pts)
    assert np.abs(got - expected).max() < 2.0
    # And the unmoved template-derived scan sits where the reference is (within 2 mm).
    assert np.abs(geometry.apply_affine(base.ref_to_input, pts) - pts).max() < 2.0


@pytest.mark.slow
@pytest.mark.parametrize("brain_stage", [False, True])
def test_a_slab_of_the_head_aligns_like_the_whole_head(brain_stage):
    """90 mm of axial slices: the affine stage used to collapse one axis (scales 1.83/1.07/0.13, 38 mm off)."""
    from medae.io import load
    from medae.model import load_model
    from medae.model.registration import register_to_reference

    v = load(Path(__file__).resolve().parents[1] / "resources" / "samples" / "brain_t1.nii.gz")
    m = load_model(device="cpu")
    mask = m.reference_mask if brain_stage else None
    whole = register_to_reference(v.array, v.affine, m.reference, m.card.affine, reference_mask=mask)
    aff = v.affine.copy()
    aff[:3, 3] = v.voxel_to_world(np.array([[0, 0, 30]]))[0]
    slab = register_to_reference(v.array[:, :, 30:90], aff, m.reference, m.card.affine, reference_mask=mask)
    pts = np.array([[x, y, z] for x in (-40, 0, 40) for y in (-60, -18, 30) for z in (-20, 12, 45)], float)
    err = np.linalg.norm(
        geometry.apply_affine(slab.ref_to_input, pts) - geometry.apply_affine(whole.ref_to_input, pts), axis=1
    )
    assert err.max() < 5.0, err
    assert whole.method == "affine"  # a whole head keeps its affine fit


@pytest.mark.slow
@pytest.mark.parametrize(
    "part",
    [
        (slice(None), slice(None), slice(60, None)),  # the upper half of the head (was 24 mm off)
        (slice(0, 87), slice(None), slice(None)),  # one hemisphere (was 12 mm off)
        (slice(None), slice(0, 115), slice(None)),  # the back half (was 22 mm off)
    ],
)
def test_a_scan_of_part_of_the_head_aligns_like_the_whole_head(part):
    coverage, moved_mm = _part_against_whole(part)
    assert coverage < 0.7  # truly a part
    assert moved_mm < 3.0


@pytest.mark.slow
def test_a_scan_missing_a_little_of_the_head_keeps_the_whole_head_fit():
    """30 top slices cut off (90% of the brain inside): the brain-refined fit stays within 1 mm."""
    coverage, moved_mm = _part_against_whole((slice(None), slice(None), slice(0, 91)))
    assert 0.8 < coverage < 0.95
    assert moved_mm < 1.0


def _part_against_whole(part: tuple) -> tuple[float, float]:
    """The bundled sample cut to ``part``: its coverage, and how far its alignment moved (mm).

    The distance is the mean over the reference brain between its alignment and the whole scan's.
    """
    from medae.io import load
    from medae.model import load_model
    from medae.model.preprocess import to_model_space
    from medae.volume import Volume

    v = load(Path(__file__).resolve().parents[1] / "resources" / "samples" / "brain_t1.nii.gz")
    m = load_model(device="cpu")
    whole = to_model_space(v, m.card, m.reference, m.reference_mask)
    aff = v.affine.copy()
    aff[:3, 3] = v.voxel_to_world(np.array([[s.start or 0 for s in part]]))[0]
    piece = to_model_space(
        Volume(np.ascontiguousarray(v.array[part]), aff, "MR"), m.card, m.reference, m.reference_mask
    )
    pts = geometry.apply_affine(m.card.affine, np.argwhere(m.reference_mask)[::200])
    moved = geometry.apply_affine(piece.alignment.ref_to_input, pts) - geometry.apply_affine(
        whole.alignment.ref_to_input, pts
    )
    return piece.coverage, float(np.linalg.norm(moved, axis=1).mean())


@pytest.mark.slow
def test_the_brain_stage_fits_the_brain_where_the_scalp_pulled_the_whole_head_fit():
    """A generated head whose whole-head fit left the reference brain 16% too small (Dice 0.91; 0.96 with it)."""
    from medae.model.preprocess import resample_support
    from medae.model.registration import register_to_reference
    from medae.training.config import load_config
    from medae.training.data import card_affine, prepare_reference
    from medae.training.healthy import generate_healthy, head_distance
    from medae.training.template import load_template

    cfg = load_config()
    ref, ref_mask = prepare_reference(cfg)
    template = load_template()
    scan = generate_healthy(template, seed=500011, dist=head_distance(template), variation=1.0125)
    vol, truth = scan.volume, scan.brain > 0.5
    c = ModelCard(
        id="t", name="t", jobs=["anomaly"], modality="MR", body_part="BRAIN", architecture={},
        space=dict(cfg["space"], affine=card_affine(cfg).tolist()), intensity=cfg["intensity"], mask={},
    )  # fmt: skip

    def dice(alignment):
        m2i = model_to_input_matrix(c, vol.affine, alignment)
        brain = resample_support(ref_mask.astype(np.float32), np.linalg.inv(m2i), vol.shape, order=1) > 0.5
        return 2 * (brain & truth).sum() / (brain.sum() + truth.sum())

    head_only = register_to_reference(vol.array, vol.affine, ref, card_affine(cfg))
    with_brain = register_to_reference(vol.array, vol.affine, ref, card_affine(cfg), reference_mask=ref_mask)
    assert dice(head_only) < 0.93
    assert dice(with_brain) > 0.95


def test_skull_stripped_scan_aligns_like_the_whole_head_and_keeps_only_its_voxels():
    from medae.model.brain_only import stripped_foreground
    from medae.training.config import load_config
    from medae.training.data import card_affine, prepare_reference
    from medae.training.healthy import generate_healthy, head_distance
    from medae.training.template import load_template

    cfg = load_config()
    ref, ref_mask = prepare_reference(cfg)
    space = dict(cfg["space"], affine=card_affine(cfg).tolist())
    c = ModelCard(
        id="t", name="t", jobs=["anomaly"], modality="MR", body_part="BRAIN", architecture={},
        space=space, intensity=cfg["intensity"], mask={"source": "reference"},
    )  # fmt: skip
    template = load_template()
    scan = generate_healthy(template, seed=424243, dist=head_distance(template), variation=1.0)
    motion = np.eye(4)
    motion[:3, :3] = geometry.rotation_matrix((-7.0, 5.0, 9.0))
    motion[:3, 3] = [-10.0, 6.0, 8.0]
    head = Volume(scan.volume.array, motion @ scan.volume.affine, "MR")
    brain = (scan.brain > 0.5) & (scan.volume.array > 0)
    stripped = head.with_array(np.where(brain, scan.volume.array, 0).astype(scan.volume.array.dtype))
    assert stripped_foreground(head.array, head.affine) is None
    np.testing.assert_array_equal(stripped_foreground(stripped.array, stripped.affine), brain)
    a = to_model_space(head, c, ref, ref_mask)
    b = to_model_space(stripped, c, ref, ref_mask)
    assert not a.skull_stripped and b.skull_stripped
    # Standardised after stripping (zero mean inside, 0 outside): the background is not the lowest value.
    values = scan.volume.array[brain].astype(np.float32)
    z = np.where(brain, (scan.volume.array - values.mean()) / values.std(), 0).astype(np.float32)
    s = to_model_space(head.with_array(z), c, ref, ref_mask)
    assert s.skull_stripped
    pts = np.array([[0, -18, 12], [40, -18, 12], [-40, -18, 12], [0, 40, 12], [0, -70, 12], [0, -18, 60]], float)
    for other in (b, s):
        shift = geometry.apply_affine(other.alignment.ref_to_input, pts) - geometry.apply_affine(
            a.alignment.ref_to_input, pts
        )
        assert np.abs(shift).max() < 2.0
    # Only what the scan kept is assessed, and nearly all of the reference brain was kept.
    from medae.model.preprocess import resample

    kept = resample(brain.astype(np.float32), b.model_to_input, tuple(space["shape"]), order=1, cval=0.0)
    assert b.mask.sum() < a.mask.sum() and b.coverage > 0.95
    assert kept[b.mask].min() > 0.25 and kept[a.mask & ~b.mask].max() <= 0.5


@pytest.mark.parametrize("cval", [0.0, 2.5])
def test_resample_support_equals_full_resampling(cval):
    from scipy import ndimage

    from medae.model.preprocess import resample_support

    rng = np.random.default_rng(5)
    src = np.full((20, 24, 18), cval, np.float32)
    src[4:15, 6:20, 3:14] = rng.random((11, 14, 11)).astype(np.float32)
    m = np.eye(4)
    m[:3, :3] = geometry.rotation_matrix((12, -7, 25)) * 0.6
    m[:3, 3] = [-4, 3, 2]
    shape = (41, 37, 45)
    got = resample_support(src, m, shape, cval=cval)
    # The same sampling everywhere, blending towards cval beyond the map's edge.
    want = ndimage.affine_transform(
        src, m[:3, :3], m[:3, 3], output_shape=shape, order=1, mode="grid-constant", cval=cval, prefilter=False
    )
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.array_equal(resample_support(np.full_like(src, cval), m, shape, cval=cval), np.full(shape, cval))
    # The file's (Fortran) order holds the same values bit for bit, slabs beyond the support included.
    fortran = resample_support(src, m, shape, cval=cval, layout="F")
    assert fortran.flags.f_contiguous and np.array_equal(fortran, got)
    nearest = resample_support(src, m, shape, order=0, cval=cval, layout="F")
    assert np.array_equal(nearest, resample_support(src, m, shape, order=0, cval=cval))


def test_inside_grid_marks_voxels_within_the_source():
    from medae.model.preprocess import inside_grid

    m = np.eye(4)
    m[:3, 3] = [-3, 0, 5]  # output index + shift = source index
    inside = inside_grid(m, (10, 8, 12), (16, 8, 10))
    assert inside[3:13, :, 0:7].all()
    assert not inside[:3].any() and not inside[13:].any() and not inside[:, :, 7:].any()


def test_default_normalisation_is_not_moved_by_a_bright_lesion():
    """A lesion brighter than any healthy tissue must not rescale the rest of the scan.

    Brain-like mixture: CSF, grey and white matter; then 3% of the voxels (a 20 mm lesion in a
    brain) become twice as bright as white matter. With the 99th percentile as the reference the
    whole scan would darken by a third; the shipped default keeps healthy tissue within 1%.
    """
    from medae.model.preprocess import normalise
    from medae.training.config import BRAIN_T1_DAE

    rng = np.random.default_rng(0)
    n = 200_000
    levels = rng.choice([0.3, 0.65, 1.0], size=n, p=[0.1, 0.45, 0.45])
    healthy = (levels * (1 + 0.05 * rng.standard_normal(n))).astype(np.float32)
    lesion = healthy.copy()
    wm = np.flatnonzero(levels == 1.0)[: int(0.03 * n)]
    lesion[wm] = 2.0 * (1 + 0.05 * rng.standard_normal(wm.size))
    mask = np.ones(n, bool)
    spec = BRAIN_T1_DAE["intensity"]
    a, _ = normalise(healthy, mask, spec)
    b, _ = normalise(lesion, mask, spec)
    keep = np.ones(n, bool)
    keep[wm] = False
    assert np.abs(b[keep] - a[keep]).max() < 0.01
    assert b[wm].mean() > 1.8 * a[levels == 1.0].mean()  # the lesion itself is not clipped away
    p99 = dict(spec, high=99.0)
    a99, _ = normalise(healthy, mask, p99)
    b99, _ = normalise(lesion, mask, p99)
    assert np.abs(b99[keep] - a99[keep]).max() > 0.1  # the failure the default avoids


def test_padding_is_told_from_the_scan_own_background():
    from medae.io.nifti import guess_modality
    from medae.volume import padding_value

    rng = np.random.default_rng(0)
    mr = np.zeros((60, 60, 60), np.int16)
    mr[10:50, 10:50, 10:50] = rng.integers(300, 1200, (40, 40, 40))
    ct = np.full((60, 60, 60), -1000, np.int16)
    ct[10:50, 10:50, 10:50] = rng.integers(-100, 1500, (40, 40, 40))
    stripped = np.where(mr > 0, (mr - 750) / 250, -4.0).astype(np.float32)  # standardised, background -4
    for own in (mr, ct, stripped):  # zero background, air, a stripped scan's background: the scan's own
        assert padding_value(own) is None
    for scan, pad, modality in ((mr, -32768, "MR"), (ct, -3024, "CT")):
        padded = scan.copy()
        padded[:, :, :8] = pad
        assert padding_value(padded) == pad
        assert guess_modality(padded) == guess_modality(scan) == modality
    # -1024 under an MR (a tool made for CT filled the corners): no magnitude value is negative, so it is a
    # fill when the scan is known to be MR; unknown, it may be a CT's air set to one value.
    filled = mr.copy()
    filled[:, :, :8] = -1024
    assert padding_value(filled, magnitude=True) == -1024 and padding_value(filled) is None
    assert padding_value(mr, magnitude=True) is None and padding_value(stripped, magnitude=True) is None


def test_only_large_zero_regions_beside_noisy_air_count_as_blanked():
    from medae.model.blanked import blanked_region

    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    scan = np.abs(rng.normal(0, 5, (60, 60, 60))).round().astype(np.int16)  # air noise, rounding to 0 here and there
    scan[15:45, 15:45, 15:45] = 500  # the head
    assert blanked_region(scan, affine) is None
    defaced = scan.copy()
    defaced[40:, :30, :] = 0  # 20 x 30 x 60 voxels of 8 uL: 288 mL blanked
    got, grid = blanked_region(defaced, affine)
    assert got[50, 10, 30] and not got[30, 30, 30] and got.sum() >= 20 * 30 * 60
    np.testing.assert_array_equal(grid, affine)  # 2 mm voxels are coarse enough already
    fine = np.diag([0.75, 0.75, 0.75, 1.0])  # the same voxels called 0.75 mm: looked for on every second
    got, grid = blanked_region(defaced, fine)
    np.testing.assert_array_equal(grid, np.diag([1.5, 1.5, 1.5, 1.0]))
    assert got.shape == (30, 30, 30) and got[25, 5, 15] and not got[15, 15, 15]
    masked = np.where(scan >= 500, scan, 0)  # a scanner's zero background: nothing to tell apart
    assert blanked_region(masked, affine) is None
