from dataclasses import replace

import numpy as np
import pytest

from medae.viewer.bindings import KEYS, MOUSE_SCHEMES, RADIOLOGY, RESEARCH, MouseAction, key_action, slice_step
from medae.viewer.compositing import to_rgb
from medae.viewer.planes import plane_spec
from medae.viewer.session import ViewerSession, default_style
from medae.viewer.windowing import Window
from tests.viewer_fixtures import ct_volume, result_for


def opened():
    s = ViewerSession()
    s.open(ct_volume())
    return s


def test_open_centres_cursor_and_uses_ct_default_window():
    s = opened()
    assert s.cursor == (20, 18, 10)
    assert s.window == Window(40, 400)
    assert s.units == "HU"
    assert s.render("axial").shape == (36, 40)


def test_setters_emit_only_on_change():
    s = opened()
    seen = []
    s.window_changed.connect(lambda: seen.append("w"))
    s.cursor_changed.connect(lambda: seen.append("c"))
    s.display_changed.connect(lambda: seen.append("d"))
    s.set_window(Window(40, 400))
    s.set_window(Window(50, 400))
    s.set_cursor((20, 18, 10))
    s.move_slice("axial", 3)
    s.convention = "neurological"
    s.convention = "neurological"
    assert seen == ["w", "c", "d"]
    assert s.cursor == (20, 18, 13)
    with pytest.raises(ValueError):
        s.layout = "3x3"


def test_slices_clamp_at_the_ends():
    s = opened()
    s.move_slice("axial", 1000)
    assert s.cursor[2] == 19
    s.move_slice("sagittal", -1000)
    assert s.cursor[0] == 0


def test_presets_by_number_and_reset():
    s = opened()
    assert s.apply_preset(4) and s.window == Window(-600, 1500)
    assert not s.apply_preset(9)
    s.set_invert(True)
    s.set_cursor((3, 4, 5))
    s.set_view_state("axial", zoom=4.0, pan=(10.0, -5.0))
    s.reset_view()  # fits the views; the slice read and the window stay
    assert s.view_state("axial").zoom == 1.0 and s.view_state("axial").pan == (0.0, 0.0)
    assert s.window == Window(-600, 1500) and s.invert and s.cursor == (3, 4, 5)
    s.reset_window()
    assert s.window == Window(40, 400)


def test_readout_reports_hu_and_file_index():
    s = opened()
    r = s.readout((0, 0, 0))
    assert r.units == "HU" and r.value == -1000
    assert r.index == (39, 35, 0)  # LPS file: canonical (RAS) origin is the file's last i, j
    assert "HU" in r.text() and "voxel (39, 35, 0)" in r.text()


def test_result_overlay_threshold_and_findings():
    s = opened()
    result = result_for(s.volume, blob_at=(10, 12, 8))
    s.set_result(result)
    assert s.style.threshold == 3.0 and s.style.vmax >= 6.0
    assert s.warnings == ["test warning"]
    s.go_to_finding(0)
    assert s.image.grid.to_source(s.cursor) == (10, 12, 8)
    assert all(s.view_state(p).pan == (0.0, 0.0) for p in ("axial", "coronal", "sagittal"))
    # Zoomed in, every view is centred on the finding, not on the middle of the scan where it may not be.
    for p in ("axial", "coronal", "sagittal"):
        s.set_view_state(p, zoom=4.0, pan=(0.0, 0.0))
    s.go_to_finding(0)
    for p in ("axial", "coronal", "sagittal"):
        spec = plane_spec(p, s.convention)
        u, v = spec.offset_mm(s.cursor, s.image.grid.shape, s.image.grid.spacing)
        assert (abs(u) > 1 or abs(v) > 1) and s.view_state(p).pan == pytest.approx((-u, -v))
        assert s.view_state(p).zoom == 4.0
    with_heat = to_rgb(s.render("axial"))
    s.set_heat_visible(False)
    without = to_rgb(s.render("axial"))
    assert (with_heat != without).any()
    s.set_heat_visible(True)
    s.set_style(threshold=1e9)
    assert s.style.threshold == s.style.vmax  # clamped into the heat range
    s.set_style(opacity=0.0)
    assert np.array_equal(to_rgb(s.render("axial")), without)
    with pytest.raises(KeyError):
        s.set_style(colormap="rainbow-unicorn")


def test_a_finding_whose_centre_lies_outside_it_is_shown_at_its_peak():
    from dataclasses import replace

    s = opened()
    vol = s.volume
    result = result_for(vol, blob_at=(10, 12, 8))
    # A ring around the blob's axis: its centre of mass is the hole, where nothing is suspicious.
    ii, jj = np.meshgrid(np.arange(vol.shape[0]), np.arange(vol.shape[1]), indexing="ij")
    ring = (np.hypot(ii - 20, jj - 18) >= 6) & (np.hypot(ii - 20, jj - 18) <= 8)
    labels = np.zeros(vol.shape, np.int32)
    labels[ring, 8] = 1
    peak_index = (26, 18, 8)
    assert labels[peak_index] == 1 and labels[20, 18, 8] == 0
    peak_world = tuple(float(x) for x in vol.voxel_to_world(np.asarray(peak_index, float)))
    centre_world = tuple(float(x) for x in vol.voxel_to_world(np.asarray((20, 18, 8), float)))
    f = replace(
        result.findings[0], centroid_voxel=(20.0, 18.0, 8.0), centroid_world=centre_world, peak_world=peak_world
    )
    s.set_result(replace(result, labels=vol.with_array(labels), findings=[f]))
    s.go_to_finding(0)
    assert s.image.grid.to_source(s.cursor) == peak_index
    # A compact finding keeps its centre.
    s.set_result(result)
    s.go_to_finding(0)
    assert s.image.grid.to_source(s.cursor) == (10, 12, 8)


def test_compare_layers_and_heat_projection():
    s = opened()
    s.compare = True
    assert not s.compare  # nothing to compare before an analysis
    s.set_result(result_for(s.volume))
    s.compare = True
    assert s.compare
    for layer in ("input", "reconstruction", "residual"):
        assert s.render("coronal", layer).shape == (20, 40)
    mip = to_rgb(s.render_mip("coronal"))
    s.set_cursor((0, 0, 0))  # slice far from the blob: the projection still shows it
    assert (to_rgb(s.render_mip("coronal")) != to_rgb(s.render("coronal", overlay=False))).any()
    assert mip.shape == (20, 40, 3)


def test_result_on_another_grid_is_refused():
    s = opened()
    other = result_for(ct_volume(shape=(10, 10, 10)))
    with pytest.raises(ValueError, match="grid"):
        s.set_result(other)


def test_default_style_fades_below_threshold():
    s = opened()
    st = default_style(result_for(s.volume))
    assert st.vmin < st.threshold - st.fade + 1e-9 or st.vmin == pytest.approx(st.threshold - st.fade)
    assert st.fade > 0 and st.vmax > st.threshold


def test_unassessed_heat_stays_on_the_lowest_level_when_the_median_is_negative():
    s = opened()
    result = result_for(s.volume)
    heat = result.heatmap.array - 1.0  # assessed voxels mostly below 0 (healthier than average)
    heat[:2] = 0.0  # voxels the model did not assess
    result.heatmap = s.volume.with_array(heat)
    st = default_style(result)
    assert st.vmin == 0.0  # so heat 0 quantises to level 0, which is never coloured


def test_mouse_schemes():
    assert RADIOLOGY.drag_action("left") == MouseAction.WINDOW_LEVEL
    assert RADIOLOGY.drag_action("middle") == MouseAction.PAN
    assert RADIOLOGY.drag_action("right") == MouseAction.ZOOM
    assert RADIOLOGY.wheel == MouseAction.SCROLL
    assert RESEARCH.drag_action("left") == MouseAction.CROSSHAIR
    assert RESEARCH.drag_action("left", "ctrl") == MouseAction.WINDOW_LEVEL
    assert RADIOLOGY.drag_action("middle", "alt") == MouseAction.PAN  # falls back to no modifier
    assert set(MOUSE_SCHEMES) == {"radiology", "research"}


def test_key_table():
    assert slice_step(key_action("PageUp")) == 10 and slice_step(key_action("Down")) == -1
    assert key_action("H").action.value == "show/hide heatmap"
    assert [key_action(str(n)).arg for n in range(1, 7)] == [1, 2, 3, 4, 5, 6]
    assert key_action("Space").action.value == "fit the views (zoom and pan)"
    assert key_action("Q") is None
    assert len({b.key for b in KEYS}) == len(KEYS)


def test_keep_view_keeps_cursor_and_window_only_on_the_same_grid():
    from medae.volume import Volume

    s = ViewerSession()
    s.open(Volume(np.full((8, 8, 8), 10, np.int16), np.eye(4), "MR"))
    s.set_cursor((1, 2, 3))
    s.set_window(Window(5.0, 2.0))
    s.measure.start()
    s.measure.draw("axial", (1, 1, 3), (5, 1, 3))
    s.open(Volume(np.full((8, 8, 8), 20, np.int16), np.eye(4), "MR"), keep_view=True)
    assert s.cursor == (1, 2, 3) and s.window == Window(5.0, 2.0) and len(s.measure.rulers) == 1
    s.open(Volume(np.full((8, 8, 8), 20, np.int16), np.diag([2.0, 1.0, 1.0, 1.0]), "MR"), keep_view=True)
    assert s.cursor == (4, 4, 4) and s.window != Window(5.0, 2.0)  # another grid: a fresh view
    assert s.measure.rulers == []


def test_layers_made_beforehand_are_the_ones_shown():
    from medae.viewer.display import ImageLayer
    from medae.viewer.session import prepare_result
    from medae.volume import Volume

    vol = ct_volume()
    result = result_for(vol)
    layer = ImageLayer(vol)
    s = ViewerSession()
    s.open(vol, layer=layer)
    assert s.image is layer
    layers = prepare_result(result)
    s.set_result(result, layers)
    assert s.heat is layers.heat and s.extra_layers == layers.extra
    assert s.style.threshold == result.threshold
    other = ImageLayer(vol)
    s.open(Volume(vol.array.copy(), vol.affine, vol.modality), layer=other)  # a layer of another volume
    assert s.image is not other and s.image.volume is not vol


def test_the_readers_threshold_stands_when_the_same_model_analyses_the_scan_again():
    s = opened()
    s.set_result(result_for(s.volume))
    s.set_style(threshold=4.5)
    s.set_result(result_for(s.volume))  # e.g. analysed again on another device, or while the threshold moved
    assert s.style.threshold == pytest.approx(4.5)
    s.set_result(replace(result_for(s.volume), model_id="another-model"))  # its threshold means something else
    assert s.style.threshold == pytest.approx(3.0)
    s.set_style(threshold=4.0)
    s.open(s.volume)  # the scan opened again: the model's default
    s.set_result(replace(result_for(s.volume), model_id="another-model"))
    assert s.style.threshold == pytest.approx(3.0)


def test_slices_are_numbered_as_the_file_stores_them():
    s = opened()  # stored in LPS order: the views count right-to-left and front-to-back the other way
    i, j, k = 5, 7, 3
    s.set_cursor(s.image.grid.to_canonical((i, j, k)))
    shape = s.volume.shape
    assert s.slice_label("sagittal") == f"slice i={i} (of {shape[0]})"
    assert s.slice_label("coronal") == f"slice j={j} (of {shape[1]})"
    assert s.slice_label("axial") == f"slice k={k} (of {shape[2]})"
    assert s.readout(s.cursor).index == (i, j, k)  # the status bar's read-out says the same
    # A sagittal acquisition (file axes: anterior, superior, left): each view names the file's own axis.
    perm = np.array([[0, 0, -1.0, 20], [1.0, 0, 0, -10], [0, 1.0, 0, 5], [0, 0, 0, 1]])
    s.open(ct_volume(shape=(30, 26, 12), affine=perm))
    s.set_cursor(s.image.grid.to_canonical((i, j, k)))
    assert s.slice_label("sagittal") == f"slice k={k} (of 12)"
    assert s.slice_label("coronal") == f"slice i={i} (of 30)"
    assert s.slice_label("axial") == f"slice j={j} (of 26)"
