import numpy as np
import pytest
from evaluation_fixtures import analytic_scan, generated_scan

from medae.training import lesions as L


def world_centroid(scan, mask):
    return scan.volume.voxel_to_world(np.argwhere(mask).mean(0)[None])[0]


def ball_ml(r):
    return 4 / 3 * np.pi * r**3 / 1000


GRIDS = [
    ("RAS", (1.0, 1.0, 1.0), (0, 0, 0)),
    ("LPS", (0.9, 1.1, 2.5), (0, 0, 0)),
    ("PIR", (1.2, 1.2, 1.5), (7, -5, 9)),
]


@pytest.mark.parametrize("code,spacing,oblique", GRIDS)
def test_lesion_lands_at_the_asked_world_position_with_the_asked_volume(code, spacing, oblique):
    scan = analytic_scan(code, spacing, oblique)
    centres = [(-20.0, -10.0, 15.0), (22.0, -40.0, 0.0)]
    specs = [
        L.LesionSpec("hyper", c, radius_mm=r, irregularity=0.0, edge_mm=1.0, seed=i)
        for i, (c, r) in enumerate(zip(centres, (6.0, 12.0), strict=True))
    ]
    out = L.add_lesions(scan, specs)
    voxel_ml = float(np.prod(spacing)) / 1000
    assert [r.label for r in out.lesions] == [1, 2]
    for rec, spec in zip(out.lesions, specs, strict=True):
        mask = out.labels == rec.label
        tol = max(spacing) / 2 + 0.3
        np.testing.assert_allclose(world_centroid(scan, mask), spec.centre_mm, atol=tol)
        assert rec.volume_ml == pytest.approx(mask.sum() * voxel_ml)
        assert rec.volume_ml == pytest.approx(ball_ml(spec.radius_mm), rel=0.08 if spec.radius_mm < 8 else 0.04)


def test_irregular_shapes_keep_their_volume_but_are_not_spheres():
    scan = analytic_scan()
    for seed in range(3):
        spec = L.LesionSpec("hypo", (0.0, -30.0, 10.0), radius_mm=14.0, irregularity=0.3, seed=seed)
        out = L.add_lesions(scan, [spec])
        mask = out.labels == 1
        assert out.lesions[0].volume_ml == pytest.approx(ball_ml(14.0), rel=0.05)
        # Deformed: distances from the centre to the surface vary well beyond voxel size.
        world = scan.volume.voxel_to_world(np.argwhere(mask))
        r = np.linalg.norm(world - spec.centre_mm, axis=1)
        assert r.max() > 14.0 * 1.2
        # Still one piece.
        from scipy import ndimage

        assert ndimage.label(mask)[1] == 1


def test_lesions_stay_in_the_brain_and_the_rest_of_the_scan_is_untouched():
    scan = analytic_scan()
    # Close to the brain's surface (brain semi-axis along x is 60 mm): part of the ball is outside.
    spec = L.LesionSpec("hyper", (56.0, -18.0, 10.0), radius_mm=12.0, contrast=0.8, irregularity=0.0, seed=1)
    out = L.add_lesions(scan, [spec])
    brain = scan.brain > 0.5
    assert out.labels.any()
    assert not (out.labels[~brain]).any()
    np.testing.assert_array_equal(out.volume.array[~brain], scan.volume.array[~brain])
    assert out.lesions[0].volume_ml < 0.85 * ball_ml(12.0)
    assert out.volume.array.dtype == scan.volume.array.dtype
    np.testing.assert_array_equal(out.volume.affine, scan.volume.affine)
    assert out.volume.meta["lesions"][0]["kind"] == "hyper"


def kind_scan(kind, seed=11):
    scan = generated_scan(600001)
    rng = np.random.default_rng(seed)
    specs = L.place_specs(scan, kind, 1, rng, radius_range=(9.0, 12.0))
    assert len(specs) == 1
    specs[0].edge_mm = 0.5
    out = L.add_lesions(scan, specs)
    mask = out.labels == 1
    # The core: voxels well inside the soft edge.
    from scipy import ndimage

    core = ndimage.binary_erosion(mask, iterations=2)
    before = scan.volume.array[core].astype(float)
    after = out.volume.array[core].astype(float)
    return scan, out, specs[0], core, before, after


def test_kinds_change_intensity_as_specified():
    levels = L.tissue_levels(generated_scan(600001))
    assert levels.csf < levels.gm < levels.wm

    _, _, spec, _, before, after = kind_scan("hyper")
    assert after.mean() > before.mean() * (1 + 0.5 * spec.contrast)
    _, _, spec, _, before, after = kind_scan("hypo")
    assert after.mean() < before.mean() * (1 - 0.5 * spec.contrast)

    for kind, target in (("csf_hole", levels.csf), ("gm_island", levels.gm)):
        scan, _, spec, core, before, after = kind_scan(kind)
        centre_vox = np.round(scan.volume.world_to_voxel(np.array([spec.centre_mm]))[0]).astype(int)
        assert scan.wm[tuple(centre_vox)] > 0.5, f"{kind} must start in white matter"
        # Moved most of the way from the local tissue to the target tissue's level.
        expected = before.mean() + spec.contrast * (target - before.mean())
        assert abs(after.mean() - expected) < 0.12 * abs(target - before.mean()) + 0.05 * levels.wm
        # The scanner's noise is kept: not a flat patch.
        assert after.std() > 0.3 * before.std()

    _, _, spec, _, before, after = kind_scan("noise")
    assert after.std() > before.std() * (1 + spec.contrast)
    assert abs(after.mean() - before.mean()) < 0.1 * before.mean()


def test_foreign_patch_is_texture_from_the_named_source():
    from scipy import ndimage

    scan, out, spec, core, before, after = kind_scan("foreign")
    rec = out.lesions[0]
    src = np.array(rec.extra["source_mm"])
    rot = np.array(rec.extra["rotation"])
    assert np.linalg.norm(src - np.array(spec.centre_mm)) > 2 * spec.radius_mm
    # Reproduce the patch from the source position and rotation the record names.
    offsets = scan.volume.voxel_to_world(np.argwhere(core)) - np.array(spec.centre_mm)
    ijk = scan.volume.world_to_voxel(src + offsets @ rot.T).T
    patch = ndimage.map_coordinates(scan.volume.array.astype(np.float32), ijk, order=1, mode="nearest")
    expected = before + spec.contrast * (patch - before)
    assert np.corrcoef(after, expected)[0, 1] > 0.98
    np.testing.assert_allclose(after.mean(), expected.mean(), rtol=0.03)
    # And it is not the original texture.
    assert np.corrcoef(after, before)[0, 1] < 0.6


def test_placement_follows_the_rules_and_is_reproducible():
    scan = generated_scan(600001)
    a = L.make_lesion_scan(scan, "gm_island", 3, seed=5)
    b = L.make_lesion_scan(scan, "gm_island", 3, seed=5)
    np.testing.assert_array_equal(a.volume.array, b.volume.array)
    assert len(a.lesions) == 3
    for rec in a.lesions:
        assert L.RADIUS_RANGE_MM[0] <= rec.spec.radius_mm <= L.RADIUS_RANGE_MM[1]
        assert rec.size_bin == L.size_bin(rec.spec.radius_mm)
        vox = np.round(scan.volume.world_to_voxel(np.array([rec.spec.centre_mm]))[0]).astype(int)
        assert scan.brain[tuple(vox)] > 0.5
        assert rec.voxels > 0
    # Lesions do not touch: each label keeps its full size (none overwritten).
    counts = np.bincount(a.labels.ravel())[1:]
    np.testing.assert_array_equal(counts, [r.voxels for r in a.lesions])
    c = L.make_lesion_scan(scan, "gm_island", 3, seed=6)
    assert not np.array_equal(a.labels, c.labels)


def test_size_bins_and_spec_validation():
    assert L.size_bin(4.0) == "4-7 mm"
    assert L.size_bin(10.9) == "7-11 mm"
    assert L.size_bin(22.0) == "16-22 mm"
    with pytest.raises(ValueError):
        L.LesionSpec("tumour", (0, 0, 0), 5.0)
    with pytest.raises(ValueError):
        L.LesionSpec("hyper", (0, 0, 0), 0.0)
