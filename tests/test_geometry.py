import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medae import geometry


def test_orientation_codes():
    assert geometry.orientation_code(np.eye(4)) == "RAS"
    assert geometry.orientation_code(np.diag([-1, -1, 1, 1])) == "LPS"
    aff = np.zeros((4, 4))
    aff[0, 2], aff[1, 0], aff[2, 1], aff[3, 3] = -2, 1, 1, 1
    assert geometry.orientation_code(aff) == "ASL"


def test_spacing_from_columns():
    aff = np.diag([0.5, 0.7, 3.0, 1])
    assert geometry.spacing(aff) == pytest.approx((0.5, 0.7, 3.0))


def test_obliquity():
    aff = np.eye(4)
    aff[:3, :3] = geometry.rotation_matrix((0, 0, 20))
    assert geometry.obliquity_deg(aff) == pytest.approx(20, abs=1e-6)
    assert geometry.obliquity_deg(np.eye(4)) == 0


@settings(max_examples=40, deadline=None)
@given(
    code=st.sampled_from(["RAS", "LPS", "LAS", "PSL", "IRP", "SAR"]),
    angles=st.tuples(*[st.floats(-30, 30)] * 3),
)
def test_reorient_keeps_world_coordinates(code, angles):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 1000, size=(4, 5, 6))
    aff = np.eye(4)
    aff[:3, :3] = geometry.rotation_matrix(angles) @ np.diag([0.8, 1.1, 2.5])
    aff[:3, 3] = [10, -20, 5]
    out, new_aff = geometry.reorient(arr, aff, code)
    assert geometry.orientation_code(new_aff) == code
    # Every voxel keeps its world position.
    for idx in [(0, 0, 0), (3, 4, 5), (1, 2, 3)]:
        world = geometry.apply_affine(aff, np.array(idx))
        new_idx = np.round(geometry.apply_affine(np.linalg.inv(new_aff), world)).astype(int)
        assert out[tuple(new_idx)] == arr[idx]
