import numpy as np
import pytest

from medae.viewer import colormaps
from medae.viewer.compositing import (
    OverlayStyle,
    blend_lut,
    colorbar,
    composite,
    gray_lut,
    gray_pixels_lut,
    pack_rgb,
    quantize_heat,
    to_rgb,
)
from medae.viewer.display import encode
from medae.viewer.png import encode_png, read_png, write_png
from medae.viewer.windowing import Window


def naive(values, heat, window, style):
    g = np.clip((values - window.low) / window.width, 0, 1) * 255
    a = style.alpha(heat)[..., None]
    c = style.colors(heat)
    return np.clip(g[..., None] * (1 - a) + c * a, 0, 255)


def test_gray_lut_is_the_window_for_int16_codes():
    values = np.array([[-1000, -160, 40, 240, 3000]], np.int16)
    enc = encode(values[..., None])
    assert enc.exact
    g = gray_lut(Window(40, 400), enc.values)
    out = g.take(enc.codes[..., 0])
    assert out[0, [0, 1, 3, 4]].tolist() == [0, 0, 255, 255] and out[0, 2] in (127, 128)
    inv = gray_lut(Window(40, 400), enc.values, invert=True).take(enc.codes[..., 0])
    assert inv[0, [0, 1, 3, 4]].tolist() == [255, 255, 0, 0] and inv[0, 2] in (127, 128)


def test_float_encoding_keeps_values_to_a_65536th():
    arr = np.random.default_rng(1).normal(0, 100, (8, 8, 8)).astype(np.float32)
    enc = encode(arr)
    back = enc.values[enc.codes]
    assert np.abs(back - arr).max() <= (arr.max() - arr.min()) / 65535


def test_composite_matches_naive_float_blend():
    rng = np.random.default_rng(2)
    values = rng.integers(-1000, 1000, (64, 48)).astype(np.int16)
    heat = rng.uniform(0, 8, (64, 48)).astype(np.float32)
    window = Window(0, 800)
    style = OverlayStyle(colormap="inferno", opacity=0.7, threshold=3.0, fade=1.5, vmin=0.0, vmax=8.0)
    enc = encode(values[..., None])
    gray = gray_lut(window, enc.values)
    out = to_rgb(composite(enc.codes[..., 0], gray, quantize_heat(heat, 0, 8), blend_lut(style)))
    ref = naive(values.astype(float), heat, window, style)
    # Heat is quantised to 256 levels over [0, 8]: allow the colour and alpha of one level.
    assert np.abs(out.astype(float) - ref).max() <= 12
    assert np.abs(out.astype(float) - ref).mean() < 2


def test_threshold_fades_softly_instead_of_cutting():
    style = OverlayStyle(opacity=1.0, threshold=3.0, fade=1.0, vmin=0, vmax=8)
    a = style.alpha(np.array([1.9, 2.0, 2.25, 2.5, 2.75, 3.0, 5.0]))
    assert a[0] == 0 and a[1] == 0 and a[-2] == 1 and a[-1] == 1
    assert 0 < a[2] < a[3] < a[4] < 1  # strictly increasing through the fade
    hard = OverlayStyle(opacity=1.0, threshold=3.0, fade=0.0).alpha(np.array([2.99, 3.0]))
    assert hard.tolist() == [0.0, 1.0]


def test_heat_below_fade_leaves_the_scan_untouched():
    style = OverlayStyle(opacity=0.9, threshold=5.0, fade=1.0, vmin=0, vmax=8)
    table = blend_lut(style).reshape(256, 256)
    gray_only = gray_pixels_lut(np.arange(256, dtype=np.uint8))
    below = int(255 * 3.9 / 8)
    assert np.array_equal(table[:, below], gray_only)
    assert not np.array_equal(table[:, 255], gray_only)


def test_no_heat_path_is_plain_gray():
    codes = np.arange(12, dtype=np.uint16).reshape(3, 4)
    gray = np.arange(65536, dtype=np.uint32).astype(np.uint8)
    out = composite(codes, gray)
    assert np.array_equal(to_rgb(out)[..., 0], gray[codes])
    assert out.flags["C_CONTIGUOUS"] and out.dtype == np.uint32


def test_colorbar_top_is_top_colour_and_bottom_is_background():
    style = OverlayStyle(colormap="viridis", opacity=1.0, threshold=3, fade=1, vmin=0, vmax=8)
    bar = to_rgb(colorbar(style, 100, 4, background=64))
    assert bar.shape == (100, 4, 3)
    assert tuple(bar[0, 0]) == tuple(colormaps.lut("viridis")[-1])
    assert tuple(bar[-1, 0]) == (64, 64, 64)


def test_unknown_colormap_names_the_choices():
    with pytest.raises(KeyError, match="hot"):
        colormaps.lut("nope")


def test_pack_unpack_roundtrip():
    rgb = np.random.default_rng(3).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    assert np.array_equal(to_rgb(pack_rgb(rgb)), rgb)


def test_png_roundtrip(tmp_path):
    rgb = np.random.default_rng(4).integers(0, 256, (9, 13, 3)).astype(np.uint8)
    write_png(tmp_path / "a.png", rgb)
    assert np.array_equal(read_png(tmp_path / "a.png"), rgb)
    assert encode_png(rgb[..., 0])[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        encode_png(rgb.astype(np.float32))


def test_heat_at_the_floor_is_never_coloured_even_at_the_lowest_threshold():
    # Heat 0 marks voxels the model did not assess (outside the brain, outside the field of view).
    style = OverlayStyle(opacity=1.0, threshold=0.0, fade=1.0, vmin=0.0, vmax=8.0)
    values = np.full((4, 4), 500, np.int16)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 4.0
    enc = encode(values[..., None])
    gray = gray_lut(Window(0, 1000), enc.values)
    out = to_rgb(composite(enc.codes[..., 0], gray, quantize_heat(heat, 0, 8), blend_lut(style)))
    assert out[1:, :].tolist() == to_rgb(composite(enc.codes[..., 0], gray))[1:, :].tolist()
    assert out[0, 0].tolist() != out[1, 1].tolist()


@pytest.mark.parametrize("name", ["hot", "inferno", "turbo", "viridis"])
def test_heat_just_above_the_threshold_is_not_the_colormap_dark_bottom(name):
    from medae.viewer import colormaps
    from medae.viewer.compositing import OverlayStyle

    style = OverlayStyle(colormap=name, threshold=4.0, vmin=0.0, vmax=34.0)
    low, top = style.colors(np.array([4.0, 34.0]))
    table = colormaps.lut(name).astype(float)
    assert np.allclose(low, table[64]) and np.allclose(top, table[255])
    assert low.sum() > table[0].sum() + 60  # clearly brighter than the bottom colour
