import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medae import geometry
from medae.viewer.compositing import to_rgb
from medae.viewer.display import CanonicalGrid
from medae.viewer.planes import direction_label, orientation_labels, plane_spec, scale_bar
from medae.viewer.session import ViewerSession
from medae.volume import Volume
from tests.viewer_fixtures import LPS_AFFINE, ct_volume, marker_index


def _bright_columns(pixels):
    rgb = to_rgb(pixels)[..., 0]
    return np.nonzero(rgb.max(axis=0) == 255)[0]


@pytest.mark.parametrize("affine", [LPS_AFFINE, np.diag([0.8, 0.8, 2.5, 1.0])], ids=["LPS", "RAS"])
def test_patient_right_is_on_screen_left_in_radiological_convention(affine):
    vol = ct_volume(affine=affine)
    centre = vol.voxel_to_world(np.array([20.0, 18.0, 10.0]))
    right = marker_index(vol, centre + [12.0, 0, 0])  # 12 mm towards the patient's right
    vol.array[right] = 3000
    s = ViewerSession()
    s.open(vol)
    s.set_window(s.window.__class__(500, 1000))
    s.set_cursor(s.image.grid.to_canonical(right))
    cols = _bright_columns(s.render("axial"))
    width = s.render("axial").shape[1]
    assert cols.size and cols.max() < width / 2
    s.convention = "neurological"
    cols = _bright_columns(s.render("axial"))
    assert cols.size and cols.min() > width / 2
    # Coronal views follow the same convention; sagittal views are the same in both.
    s.convention = "radiological"
    assert _bright_columns(s.render("coronal")).max() < s.render("coronal").shape[1] / 2


def test_superior_is_up_and_anterior_left_in_sagittal():
    vol = ct_volume()
    idx = marker_index(vol, vol.voxel_to_world(np.array([20.0, 18.0, 10.0])) + [0, 8.0, 10.0])
    vol.array[idx] = 3000
    s = ViewerSession()
    s.open(vol)
    s.set_window(s.window.__class__(500, 1000))
    s.set_cursor(s.image.grid.to_canonical(idx))
    sag = to_rgb(s.render("sagittal"))[..., 0]
    rows, cols = np.nonzero(sag == 255)
    assert rows.max() < sag.shape[0] / 2  # superior: upper half
    assert cols.max() < sag.shape[1] / 2  # anterior: left half


def test_labels_for_standard_planes():
    aff = LPS_AFFINE
    grid = CanonicalGrid((40, 36, 20), aff)
    ax = orientation_labels(plane_spec("axial", "radiological"), grid.affine)
    assert ax == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert orientation_labels(plane_spec("axial", "neurological"), grid.affine)["left"] == "L"
    assert orientation_labels(plane_spec("coronal"), grid.affine)["top"] == "S"
    sag = orientation_labels(plane_spec("sagittal"), grid.affine)
    assert (sag["left"], sag["right"], sag["top"]) == ("A", "P", "S")


def test_oblique_labels_name_the_tilt():
    rot = np.eye(4)
    rot[:3, :3] = geometry.rotation_matrix((0, 0, 30))
    aff = rot @ np.diag([1.0, 1.0, 1.0, 1.0])
    grid = CanonicalGrid((20, 20, 10), aff)
    labels = orientation_labels(plane_spec("axial"), grid.affine)
    # 30 degrees about S: screen directions mix R/L with A/P, primary letter first.
    assert len(labels["left"]) == 2 and labels["left"][0] in "RL" and labels["left"][1] in "AP"
    assert len(labels["top"]) == 2 and labels["top"][0] in "AP"
    assert direction_label(np.array([0, 0, -1.0])) == "I"


def test_oblique_volume_turns_to_closest_axes_and_keeps_world_positions():
    rot = np.eye(4)
    rot[:3, :3] = geometry.rotation_matrix((10, -15, 100))  # mostly a 90-degree turn, plus tilt
    aff = rot @ np.diag([0.9, 1.1, 2.0, 1.0])
    aff[:3, 3] = [5, -7, 11]
    vol = Volume(np.arange(12 * 14 * 9, dtype=np.int16).reshape(12, 14, 9), aff, "MR")
    s = ViewerSession()
    s.open(vol)
    grid = s.image.grid
    assert geometry.orientation_code(grid.affine) == "RAS"
    for canon in [(0, 0, 0), (3, 5, 7), tuple(n - 1 for n in grid.shape)]:
        src = grid.to_source(canon)
        assert grid.to_canonical(src) == tuple(canon)
        r = s.readout(canon)
        assert r.index == src
        assert r.value == vol.array[src]
        assert np.allclose(r.world, vol.voxel_to_world(np.array(src, float)))


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["axial", "coronal", "sagittal"]),
    st.sampled_from(["radiological", "neurological"]),
    st.integers(0, 11),
    st.integers(0, 13),
    st.integers(0, 8),
)
def test_screen_voxel_roundtrip(plane, convention, i, j, k):
    shape = (12, 14, 9)
    spec = plane_spec(plane, convention)
    col, row = spec.to_screen((i, j, k), shape)
    assert np.allclose(spec.to_voxel((i, j, k), col, row, shape), (i, j, k))
    arr = np.arange(np.prod(shape)).reshape(shape)
    img = spec.extract(arr, (i, j, k)[spec.normal])
    assert img[int(row), int(col)] == arr[i, j, k]


def test_scale_bar_uses_round_lengths():
    assert scale_bar(0.5, 120) == (50.0, 100.0)
    assert scale_bar(2.0, 120)[0] == 200.0
    assert scale_bar(0.01, 120)[0] == 1.0
    assert scale_bar(0, 120) == (0.0, 0.0)
