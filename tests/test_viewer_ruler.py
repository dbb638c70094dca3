"""The distance ruler: world lengths through the affine, shown on its own slice only, gone with its scan."""

import numpy as np
import pytest

from medae.viewer.ruler import Measure, Ruler
from medae.viewer.session import ViewerSession
from medae.volume import Volume


def test_length_is_in_world_mm_on_anisotropic_and_oblique_grids():
    aniso = np.diag([0.5, 0.5, 5.0, 1.0])
    assert Ruler("coronal", (0, 0, 0), (3, 0, 4)).length_mm(aniso) == pytest.approx(np.hypot(1.5, 20.0))
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    oblique = np.eye(4)
    oblique[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([2.0, 1.0, 3.0])
    oblique[:3, 3] = (-40, 12, 7)
    assert Ruler("axial", (1, 1, 5), (4, 5, 5)).length_mm(oblique) == pytest.approx(np.hypot(6.0, 4.0))


def test_a_ruler_shows_only_in_its_plane_and_slice():
    m = Measure()
    m.start()
    m.draw("axial", (2.0, 3.0, 7.0), (9.5, 3.0, 7.0))
    assert m.rulers_on("axial", (0, 0, 7)) == [m.ruler]
    assert m.rulers_on("axial", (0, 0, 8)) == []
    assert m.rulers_on("coronal", (0, 3, 7)) == []


def test_a_drag_moves_its_own_ruler_and_the_next_drag_adds_one():
    m = Measure()
    m.start()
    m.draw("axial", (0, 0, 1), (1, 0, 1))
    m.draw("axial", (0, 0, 1), (4, 0, 1))  # the same drag, further
    assert len(m.rulers) == 1 and m.ruler.end == (4.0, 0.0, 1.0)
    m.start()
    m.draw("axial", (5, 5, 1), (6, 5, 1))
    assert len(m.rulers) == 2 and len(m.rulers_on("axial", (0, 0, 1))) == 2


def test_rulers_stay_when_measuring_stops_and_go_with_clear_or_a_new_scan():
    s = ViewerSession()
    s.open(Volume(np.zeros((8, 8, 8), np.int16), np.eye(4), "MR"))
    events = []
    s.measure.changed.connect(lambda: events.append(s.measure.active))
    s.measure.set_active(True)
    s.measure.start()
    s.measure.draw("axial", (1, 1, 4), (5, 1, 4))
    s.measure.set_active(False)
    assert s.measure.ruler is not None and events == [True, True, False]
    s.measure.clear()
    assert s.measure.rulers == []
    s.measure.set_active(True)
    s.measure.start()
    s.measure.draw("axial", (1, 1, 4), (5, 1, 4))
    s.open(Volume(np.zeros((8, 8, 8), np.int16), np.eye(4), "MR"))
    assert s.measure.rulers == [] and not s.measure.active


def test_circle_statistics_count_the_voxels_within_the_radius_in_world_mm():
    values = np.zeros((40, 40, 5), np.float32)
    values[:, :, 2] = np.arange(40)[:, None]  # rises along i (the axial view's columns)
    affine = np.diag([0.5, 2.0, 3.0, 1.0])  # anisotropic in plane: 0.5 mm across, 2 mm down
    circle = Ruler("axial", (20.0, 20.0, 2.0), (20.0, 22.0, 2.0), "circle")  # radius 4 mm (2 rows)
    stats = circle.region_stats(values, affine)
    assert circle.length_mm(affine) == pytest.approx(4.0)
    # Within 4 mm: on row 20, i from 12 to 28 (8 voxels of 0.5 mm each way); on rows 19 and 21 (2 mm
    # away), |di| <= 6.93; on rows 18 and 22 (4 mm away), the centre column only.
    assert stats["voxels"] == 17 + 2 * 13 + 2 * 1
    assert stats["mean"] == pytest.approx(20.0) and stats["min"] == 12.0 and stats["max"] == 28.0
    assert stats["area_mm2"] == pytest.approx(stats["voxels"] * 1.0)
    heat = np.zeros_like(values)
    heat[20, 20, 2] = 9.0
    assert circle.region_stats(values, affine, heat)["heat_max"] == 9.0
    assert stats["sd"] > 0 and not stats["clipped"]
    edge = Ruler("axial", (2.0, 20.0, 2.0), (2.0, 22.0, 2.0), "circle").region_stats(values, affine)
    assert edge["clipped"] and edge["voxels"] < stats["voxels"]  # 8 voxels of reach, 2 to the edge


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_circle_statistics_match_a_brute_force_count_on_a_sheared_grid(plane):
    from medae.viewer.planes import plane_spec

    rng = np.random.default_rng(1)
    values = rng.normal(100, 10, (40, 44, 36)).astype(np.float32)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[0.8, 0.0, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 2.0]])
    affine[:3, :3] += np.array([[0.0, 1.2, 0.9], [0.0, 0.0, 1.5], [0.0, 0.0, 0.0]])  # strongly sheared (tilted)
    spec = plane_spec(plane)
    centre = np.array([20.0, 22.0, 18.0])
    edge = centre.copy()
    edge[spec.col_axis] += 12
    circle = Ruler(plane, tuple(centre), tuple(edge), "circle")
    radius = circle.length_mm(affine)
    idx = np.indices(values.shape).reshape(3, -1).T.astype(float)
    in_slice = idx[:, spec.normal] == centre[spec.normal]
    dist = np.linalg.norm((idx - centre) @ affine[:3, :3].T, axis=1)
    expected = values.reshape(-1)[in_slice & (dist <= radius)]
    stats = circle.region_stats(values, affine)
    assert stats["voxels"] == expected.size and stats["mean"] == pytest.approx(float(expected.mean()), rel=1e-6)
