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
    m.draw("axial", (2.0, 3.0, 7.0), (9.5, 3.0, 7.0))
    assert m.ruler_on("axial", (0, 0, 7)) is m.ruler
    assert m.ruler_on("axial", (0, 0, 8)) is None
    assert m.ruler_on("coronal", (0, 3, 7)) is None


def test_leaving_measure_mode_or_opening_a_scan_removes_the_ruler():
    s = ViewerSession()
    s.open(Volume(np.zeros((8, 8, 8), np.int16), np.eye(4), "MR"))
    events = []
    s.measure.changed.connect(lambda: events.append(s.measure.active))
    s.measure.set_active(True)
    s.measure.draw("axial", (1, 1, 4), (5, 1, 4))
    s.measure.set_active(False)
    assert s.measure.ruler is None and events == [True, True, False]
    s.measure.set_active(True)
    s.measure.draw("axial", (1, 1, 4), (5, 1, 4))
    s.open(Volume(np.zeros((8, 8, 8), np.int16), np.eye(4), "MR"))
    assert s.measure.ruler is None and not s.measure.active
