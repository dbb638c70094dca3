import numpy as np
import pytest

from medae.viewer.windowing import (
    CT_PRESETS,
    MR_PRESETS,
    Window,
    default_window,
    file_window,
    percentile_window,
    preset_window,
    presets_for,
)


def test_ct_presets_are_the_usual_hu_windows():
    got = {p.name: (p.window.width, p.window.center) for p in CT_PRESETS}
    assert got == {
        "Brain": (80, 40),
        "Subdural": (200, 75),
        "Stroke": (40, 40),
        "Lung": (1500, -600),
        "Mediastinum": (350, 50),
        "Abdomen": (400, 40),
        "Bone": (2000, 400),
    }
    assert presets_for("CT") is CT_PRESETS and presets_for("MR") is MR_PRESETS


def test_window_bounds_and_drag():
    w = Window(40, 400)
    assert (w.low, w.high) == (-160, 240)
    d = w.dragged(dx=10, dy=-5, scale=2.0)
    assert d.width == 420 and d.center == 30
    assert w.dragged(dx=-1000, dy=0, scale=2.0).width == 2.0  # never collapses


def test_percentile_window_ignores_background():
    rng = np.random.default_rng(0)
    arr = np.zeros((50, 50, 20), np.float32)
    arr[10:40, 10:40] = rng.normal(500, 50, (30, 30, 20))
    w = percentile_window(arr, 1, 99)
    assert 350 < w.low < 450 and 550 < w.high < 650


def test_file_window_reads_first_of_several_and_rejects_junk():
    assert file_window({"window_center": [40, 300], "window_width": [400, 1500]}) == Window(40, 400)
    assert file_window({"window_center": "abc", "window_width": 10}) is None
    assert file_window({"window_center": 10, "window_width": 0}) is None
    assert file_window({}) is None


def test_default_window_priority():
    arr = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)
    assert default_window(arr, "CT", {"window_center": 10, "window_width": 20}) == Window(10, 20)
    assert default_window(arr, "CT", {}) == Window(40, 400)
    mr = default_window(arr, "MR", {})
    assert mr.low > 0 and mr.high < 1000


@pytest.mark.parametrize("preset", MR_PRESETS)
def test_mr_presets_follow_data(preset):
    arr = np.linspace(0, 1000, 8000).reshape(20, 20, 20)
    w = preset_window(preset, arr)
    values = arr[arr > 0]
    if preset.head:  # above a tenth of the 2-98 % range
        lo2, hi98 = np.percentile(values, [2, 98])
        values = values[values > lo2 + 0.1 * (hi98 - lo2)]
    lo, hi = np.percentile(values, preset.percentiles)
    assert w.low == pytest.approx(lo) and w.high == pytest.approx(hi)


def test_head_presets_leave_the_air_out_and_differ_from_each_other():
    rng = np.random.default_rng(0)
    arr = np.abs(rng.normal(0, 15, (40, 40, 40)))  # noisy air: most of the field of view
    arr[12:28, 12:28, 12:28] = rng.normal(600, 20, (16, 16, 16))  # grey matter
    arr[16:24, 16:24, 16:24] = rng.normal(1000, 20, (8, 8, 8))  # white matter
    windows = {p.name.split(" ")[0]: preset_window(p, arr) for p in MR_PRESETS}
    assert windows["Auto"].low < 10  # the whole view: the air's noise sets the black end
    assert windows["Head"].low > 450 and windows["Grey/white"].low > 550  # the air is left out
    assert windows["Grey/white"].width < windows["Head"].width < windows["Auto"].width
    assert len({(w.low, w.high) for w in windows.values()}) == len(MR_PRESETS)


@pytest.mark.parametrize("head", [False, True])
def test_a_scan_of_few_values_opens_white_on_black_not_black(head):
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[5:15, 5:15, 5:15] = 1
    w = percentile_window(mask, 1, 99, head=head)
    assert w.low <= 0 and w.high >= 1 and w.width <= 1.0  # 0 black, 1 white
    flat = np.full((4, 4, 4), 1000.0, np.float32)
    w = percentile_window(flat)
    assert w.low < 1000 < w.high  # one value: mid grey, not black


def test_the_default_window_reads_a_fortran_ordered_volume_in_place():
    # The viewer keeps scans slice-contiguous; a C-order copy of a large one froze the window for a second.
    import tracemalloc

    from medae.viewer.windowing import percentile_window

    vol = np.asfortranarray(np.random.default_rng(0).integers(0, 2000, (256, 256, 220)).astype(np.int16))
    tracemalloc.start()
    window = percentile_window(vol)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.5 * vol.nbytes, peak
    assert 900 < window.center < 1100 and 1800 < window.width < 2000


def test_the_window_of_a_large_non_contiguous_scan_reads_a_sample_without_copying_the_scan():
    """A volume of a 4D file is a strided view; copying it whole stalled the window's thread."""
    import tracemalloc

    rng = np.random.default_rng(0)
    four_d = rng.normal(500, 100, (200, 200, 160, 2)).astype(np.float32)
    volume = four_d[..., 1]  # 26 MB of values, not contiguous
    assert not volume.flags.c_contiguous and not volume.flags.f_contiguous
    tracemalloc.start()
    w = percentile_window(volume)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < volume.nbytes / 2
    lo, hi = np.percentile(volume, [1, 99])
    assert abs(w.center - (lo + hi) / 2) < 5 and abs(w.width - (hi - lo)) < 10
