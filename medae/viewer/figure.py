"""A one-image summary of a scan and its analysis, drawn without Qt (headless demo, batch).

Three planes through the crosshair with the overlay, orientation letters and scale bars, the colour
bar with its threshold and units, the ranked findings and every warning. Pixels come from the same
``ViewerSession.render`` as the viewer's; text is drawn with Pillow's built-in font.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medae.analysis.result import INTENDED_USE
from medae.viewer import compositing
from medae.viewer.planes import PLANES, orientation_labels, plane_spec, scale_bar
from medae.viewer.session import ViewerSession

PANEL = 300
BG = (24, 24, 28)
FG = (230, 230, 230)
WARN_BG = (120, 80, 0)


def _fit(pixels: np.ndarray, mm: tuple[float, float], box: int) -> tuple[np.ndarray, float]:
    """Nearest-neighbour resize to true proportions inside a box; returns image and mm per pixel."""
    rows, cols = pixels.shape
    width_mm, height_mm = cols * mm[0], rows * mm[1]
    scale = box / max(width_mm, height_mm)
    w, h = max(1, round(width_mm * scale)), max(1, round(height_mm * scale))
    ri = np.minimum((np.arange(h) * rows / h).astype(np.intp), rows - 1)
    ci = np.minimum((np.arange(w) * cols / w).astype(np.intp), cols - 1)
    return compositing.to_rgb(pixels[ri][:, ci]), 1.0 / scale


def render_summary(session: ViewerSession, title: str = "", deidentify: bool = False) -> np.ndarray:
    """The summary image of what ``session`` shows, as (H, W, 3) uint8.

    With ``deidentify``, UIDs in the warnings (a split series names its own) are drawn as their pseudonyms.
    """
    from PIL import Image, ImageDraw, ImageFont

    if session.image is None:
        raise ValueError("no scan open")
    font = ImageFont.load_default(size=13)
    small = ImageFont.load_default(size=11)
    warnings = session.warnings
    if deidentify:
        from medae.io.deid import without_uids

        warnings = [without_uids(w) for w in warnings]
    findings = session.findings[:6]
    more = len(session.findings) - len(findings)
    has_heat = session.heat is not None and session.heat_visible
    bar_w = 110 if has_heat else 0
    width = 3 * (PANEL + 10) + 10 + bar_w
    # Every word of a warning is drawn: a long one wraps instead of running off the picture's edge.
    warning_lines = [line for w in warnings for line in _wrapped(f"WARNING: {w}", small, width - 20)]
    top = 30 + 18 * len(warning_lines)
    result_rows = len(findings) + 1 + (1 if more > 0 else 0)
    height = top + PANEL + 30 + (18 * result_rows + 10 if session.result is not None else 0) + 22
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[:] = BG
    if warning_lines:
        canvas[28 : top - 2, :] = WARN_BG
    texts: list[tuple[tuple[int, int], str, object, tuple[int, int, int]]] = [((10, 8), title, font, FG)]
    for n, line in enumerate(warning_lines):
        texts.append(((10, 31 + 18 * n), line, small, (255, 230, 160)))
    # What the picture is, for whoever receives it without the program (a PACS, a printout).
    texts.append(((10, height - 18), INTENDED_USE, small, (170, 170, 170)))
    affine = session.image.grid.affine
    spacing = session.image.grid.spacing
    for p, plane in enumerate(PLANES):
        spec = plane_spec(plane, session.convention)
        img, mm_px = _fit(session.render(plane), spec.pixel_mm(spacing), PANEL)
        x0 = 10 + p * (PANEL + 10) + (PANEL - img.shape[1]) // 2
        y0 = top + 20 + (PANEL - img.shape[0]) // 2
        canvas[y0 : y0 + img.shape[0], x0 : x0 + img.shape[1]] = img
        texts.append(((10 + p * (PANEL + 10), top + 2), f"{plane.title()} {session.slice_label(plane)}", font, FG))
        labels = orientation_labels(spec, affine)
        cx, cy = x0 + img.shape[1] // 2, y0 + img.shape[0] // 2
        texts += [
            ((x0 + 3, cy - 7), labels["left"], font, (255, 220, 90)),
            ((x0 + img.shape[1] - 16, cy - 7), labels["right"], font, (255, 220, 90)),
            ((cx - 4, y0 + 2), labels["top"], font, (255, 220, 90)),
            ((cx - 4, y0 + img.shape[0] - 16), labels["bottom"], font, (255, 220, 90)),
        ]
        length_mm, length_px = scale_bar(mm_px, img.shape[1] / 3)
        if length_px >= 4:
            bx, by = x0 + img.shape[1] - int(length_px) - 6, y0 + img.shape[0] - 22
            canvas[by : by + 2, bx : bx + int(length_px)] = 255
            texts.append(((bx, by - 14), f"{length_mm:g} mm", small, FG))
    if has_heat:
        style = session.style
        bx, by, bh = width - bar_w + 8, top + 20, PANEL
        canvas[by : by + bh, bx : bx + 18] = compositing.to_rgb(compositing.colorbar(style, bh, 18))
        ty = by + int(round((1 - compositing.value_to_fraction(style, style.threshold)) * (bh - 1)))
        canvas[max(ty - 1, 0) : ty + 1, bx - 4 : bx + 22] = (80, 200, 255)
        units = getattr(session.result, "units", "")
        texts += [
            ((bx + 24, by - 6), f"{style.vmax:.3g}", small, FG),
            ((bx + 24, by + bh - 8), f"{style.vmin:.3g}", small, FG),
            ((bx + 24, ty - 7), f"thr {style.threshold:.3g}", small, (80, 200, 255)),
            ((bx - 4, by + bh + 4), units, small, FG),
        ]
    if session.result is not None:
        y = top + PANEL + 30
        units = getattr(session.result, "units", "")
        if findings:
            heading = (
                "Findings, ranked: extent above the threshold (mL; it follows the threshold, not a lesion's size), "
                f"peak and mean heat in {units}:"
            )
            texts.append(((10, y), heading, font, FG))
        else:
            texts.append(((10, y), "No finding above the threshold.", font, FG))
        for n, f in enumerate(findings, 1):
            line = f"{n}. {f.side:<9} {f.volume_ml:7.2f} mL   peak {f.peak:6.2f}   mean {f.mean:6.2f}   " + (
                "RAS ({:.0f}, {:.0f}, {:.0f}) mm".format(*f.centroid_world)
            )
            texts.append(((20, y + 18 * n), line, small, FG))
        if more > 0:
            texts.append(((20, y + 18 * (len(findings) + 1)), f"... and {more} more (report.json)", small, FG))
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for (x, y), text, f, color in texts:
        if text:
            # A dark rim keeps letters on bright skull or scalp readable (they are drawn over the image).
            draw.text((x, y), text, fill=color, font=f, stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(image.convert("RGB"))


def _wrapped(text: str, font, width: float) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width`` pixels in ``font``."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if line and font.getlength(candidate) > width:
            lines.append(line)
            line = f"    {word}"  # a continued warning is indented under its first line
        else:
            line = candidate
    return [*lines, line] if line else lines


def save_summary(session: ViewerSession, path: str | Path, title: str = "") -> Path:
    """Renders the summary and writes it as a PNG (atomically)."""
    from medae.viewer.png import write_png

    write_png(path, render_summary(session, title))
    return Path(path)


def write_result_summary(result, out: str | Path, dicom: bool = False, keep_phi: bool = False) -> dict[str, Path]:
    """Writes an analysis's summary image into ``out``: ``summary.png``, and ``summary_sc.dcm`` with ``dicom``.

    The planes go through the top finding (through the scan's centre when there is none).

    Returns:
        Name -> path of what was written.

    Raises:
        PartialOutputError: the DICOM copy failed; ``summary.png`` was written (in ``written``).
    """
    from medae.errors import MedaeError, PartialOutputError
    from medae.viewer.png import write_png

    session = ViewerSession()
    session.open(result.volume)
    session.set_result(result)
    if result.findings:
        session.go_to_finding(0)
    pct = result.percentile
    # An uncalibrated model's scan has no place among healthy scans: no "(pnan)".
    where = f" (higher than {pct:.0f}% of healthy scans)" if pct is not None and np.isfinite(pct) else ""
    title = f"medae {result.model_id}: score {result.score:.2f}{where}, {len(result.findings)} finding(s)"
    rgb = render_summary(session, title=title, deidentify=not keep_phi)
    out = Path(out)
    written = {"summary": out / "summary.png"}
    write_png(written["summary"], rgb)
    if dicom:
        from medae.io.dicom_export import write_secondary_capture

        try:
            written["secondary_capture"] = write_secondary_capture(
                rgb, result.volume, out / "summary_sc.dcm", keep_phi=keep_phi
            )
        except MedaeError as exc:
            raise PartialOutputError(
                f"The DICOM summary (summary_sc.dcm) could not be written: {exc}", written
            ) from exc
    return written
