"""The headless summary picture: three planes, overlay, colour bar, findings, warnings."""

import numpy as np

from medae.viewer.figure import WARN_BG, render_summary, save_summary
from medae.viewer.png import read_png
from medae.viewer.session import ViewerSession
from tests.viewer_fixtures import ct_volume, result_for


def test_summary_without_analysis_has_no_colour_bar_or_warnings():
    s = ViewerSession()
    s.open(ct_volume())
    img = render_summary(s, "title")
    assert img.dtype == np.uint8 and img.shape[2] == 3
    assert not (img == WARN_BG).all(axis=2).any()


def test_summary_shows_warnings_heat_and_threshold(tmp_path):
    s = ViewerSession()
    s.open(ct_volume())
    s.set_result(result_for(s.volume))
    s.go_to_finding(0)
    path = save_summary(s, tmp_path / "sum.png", "title")
    img = read_png(path)
    amber_rows = (img == WARN_BG).all(axis=2).any(axis=1)
    assert amber_rows[28:40].all()  # the warning band under the title
    threshold_marker = (img == (80, 200, 255)).all(axis=2)
    assert threshold_marker.any()
    r, g, b = (img[..., c].astype(int) for c in range(3))
    assert np.count_nonzero((r > 200) & (b < 80) & (r - g > 60)) > 10  # heat colours drawn


def test_a_long_warning_wraps_and_more_findings_than_listed_are_counted(monkeypatch):
    """Every word of a warning is drawn, every finding is accounted for, and the picture says what it is."""
    from dataclasses import replace

    from medae.viewer import figure

    s = ViewerSession()
    s.open(ct_volume())
    result = result_for(s.volume)
    many = [replace(result.findings[0], label=k + 1) for k in range(8)]
    s.set_result(replace(result, findings=many, warnings=["word " * 400]))
    drawn = []
    real = figure._wrapped
    monkeypatch.setattr(figure, "_wrapped", lambda *a: drawn.extend(real(*a)) or real(*a))
    img = render_summary(s, "title")
    assert len(drawn) > 5 and sum(line.count("word") for line in drawn) == 400
    amber_rows = (img == WARN_BG).all(axis=2).any(axis=1)
    assert amber_rows.sum() >= 18 * (len(drawn) - 1)  # the band holds every line

    texts = []
    from PIL import ImageDraw

    original = ImageDraw.ImageDraw.text
    monkeypatch.setattr(
        ImageDraw.ImageDraw, "text", lambda self, xy, text, **kw: texts.append(text) or original(self, xy, text, **kw)
    )
    render_summary(s, "title")
    assert "... and 2 more (report.json)" in texts
    assert any(t.startswith("Research software, not a medical device") for t in texts)


def test_the_summary_title_of_an_uncalibrated_result_has_no_percentile(tmp_path, monkeypatch):
    from dataclasses import replace

    from PIL import ImageDraw

    from medae.viewer.figure import write_result_summary

    s = ViewerSession()
    s.open(ct_volume())
    texts = []
    original = ImageDraw.ImageDraw.text
    monkeypatch.setattr(
        ImageDraw.ImageDraw, "text", lambda self, xy, text, **kw: texts.append(text) or original(self, xy, text, **kw)
    )
    write_result_summary(replace(result_for(s.volume), percentile=float("nan")), tmp_path)
    assert texts[0].startswith("medae") and "nan" not in texts[0]
    texts.clear()
    write_result_summary(replace(result_for(s.volume), percentile=97.0), tmp_path / "b")
    assert "higher than 97% of healthy scans" in texts[0]
