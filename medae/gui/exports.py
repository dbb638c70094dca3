"""Export menu: heatmap and findings (NIfTI, DICOM), screenshots (PNG, DICOM), the report, the scan compressed.

Each export runs in a worker thread, so the window never waits for a disk or a DICOM encoder; only
grabbing the screen happens on the GUI thread (it must, and it takes milliseconds).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from medae.errors import OutputError
from medae.progress import check_cancel

#: (menu text, kind, default suffix)
KINDS: tuple[tuple[str, str, str], ...] = (
    ("Heatmap as &NIfTI...", "heatmap_nifti", ".nii.gz"),
    ("Findings as NI&fTI label map...", "findings_nifti", ".nii.gz"),
    ("Heatmap as DICOM &Parametric Map...", "heatmap_dicom", ".dcm"),
    ("Findings as DICOM &Segmentation...", "findings_dicom", ".dcm"),
    ("Screenshot as PN&G (with colour bar)...", "screenshot", ".png"),
    ("Screenshot as DICOM Secondary &Capture...", "screenshot_dicom", ".dcm"),
    ("&Report (summary image, heatmap, findings, report.json) to folder...", "report", ""),
    ("The scan as a compressed s&tudy (.mae, lossless)...", "study", ".mae"),
)

#: Kinds that need only a scan on screen, not an analysis.
SCAN_KINDS = ("screenshot", "screenshot_dicom", "study")


def grab_rgb(widget) -> np.ndarray:
    """What a widget shows, as (H, W, 3) uint8 RGB (the reading area: views, colour bar, warnings)."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


#: Endings each kind of file may have; a name without one of them gets the kind's own.
_ENDINGS = {".nii.gz": (".nii.gz", ".nii"), ".dcm": (".dcm",), ".png": (".png",), ".mae": (".mae",)}


def export_target(kind: str, target: str | Path) -> Path:
    """The file an export writes: the name given, with the kind's ending added when it has none of its own.

    A name typed without an ending (or with another one, "heat.png" for a NIfTI map) would otherwise reach
    a writer that picks the format from the name.
    """
    target = Path(target)
    suffix = next(sfx for _text, k, sfx in KINDS if k == kind)
    if suffix and not target.name.lower().endswith(_ENDINGS[suffix]):
        target = target.with_name(target.name + suffix)
    return target


def default_name(volume, kind: str, suffix: str) -> str:
    """The file name an export dialog offers: the scan's own name and what the file holds."""
    stem = "medae"
    if volume is not None and volume.source:
        name = Path(volume.source).name
        for ending in (".nii.gz", ".nii", ".mgz", ".mgh", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm.gz", ".dcm", ".mae"):
            if name.lower().endswith(ending):
                name = name[: -len(ending)]
                break
        stem = name or stem
    return f"{stem}-{kind.replace('_', '-')}{suffix}"


def export(window, kind: str, target: str | Path):
    """Starts one export in a worker thread; returns its job (None when nothing to export)."""
    s = window.session
    target = export_target(kind, target)
    if kind != "report" and target.is_dir():
        window.statusBar().showMessage(f"{target} is a folder: give the export a file name.", 8000)
        return None
    result, volume = s.result, s.volume
    if kind in SCAN_KINDS and volume is None:
        window.statusBar().showMessage("Open a scan first.", 5000)
        return None
    if volume is not None and _overwrites_source(kind, target, volume):
        window.report_error(
            OutputError(
                f"{target} is the scan's own file (or, for a report, holds one under a result's name), and the "
                "export would write over it; medae never overwrites a source. Choose another name or folder."
            ),
            f"exporting {target.name}",
        )
        return None
    if kind == "study":
        return window.run_job(
            "export",
            _one_at_a_time(lambda progress, cancel: _study(volume, target, progress, cancel)),
            lambda path: _done(window, path),
            f"compressing {target.name}",
        )
    if kind in ("screenshot", "screenshot_dicom"):
        rgb = grab_rgb(window.active_widget())
        fn = _screenshot_png if kind == "screenshot" else _screenshot_dicom
        return window.run_job(
            "export",
            _one_at_a_time(lambda progress, cancel: fn(rgb, volume, target, window, progress, cancel)),
            lambda path: _done(window, path),
            f"exporting {target.name}",
        )
    if result is None:
        window.statusBar().showMessage("Run Analyze first: there is nothing to export yet.", 5000)
        return None
    fn = {
        "heatmap_nifti": _heatmap_nifti,
        "findings_nifti": _findings_nifti,
        "heatmap_dicom": _heatmap_dicom,
        "findings_dicom": _findings_dicom,
        "report": _report,
    }[kind]
    # The findings as on screen: a threshold just moved may not have been redrawn yet (that takes a moment).
    threshold = s.style.threshold

    def work(progress, cancel):
        drawn = result if abs(result.threshold - threshold) <= 1e-9 else result.at_threshold(threshold, cancel)
        return fn(drawn, volume, target, progress, cancel)

    return window.run_job("export", _one_at_a_time(work), lambda path: _done(window, path), f"exporting {target.name}")


#: Exports run one after another: several at once (DICOM writers parse and encode in Python) contend for
#: the interpreter with the window's thread, which then stutters.
_EXPORTING = threading.Lock()


def _one_at_a_time(work):
    def run(progress, cancel):
        while not _EXPORTING.acquire(timeout=0.1):
            check_cancel(cancel)  # a queued export can be cancelled while it waits
        try:
            return work(progress, cancel)
        finally:
            _EXPORTING.release()

    return run


def _done(window, path) -> None:
    window.statusBar().showMessage(f"Saved {path}", 8000)
    window.last_export = Path(path)


def _screenshot_png(rgb, volume, target: Path, window, progress, cancel) -> Path:
    from medae.viewer.png import write_png

    write_png(target, rgb)
    return target


def _screenshot_dicom(rgb, volume, target: Path, window, progress, cancel) -> Path:
    from medae.io.dicom_export import write_secondary_capture

    return write_secondary_capture(rgb, volume, target)


def _overwrites_source(kind: str, target: Path, volume) -> bool:
    """Whether the export would write over one of the scan's own files (a report writes several)."""
    from medae.analysis.outputs import check_not_source
    from medae.io.loader import is_source_of

    if kind != "report":
        return is_source_of(target, volume)
    try:
        check_not_source(volume, target)
    except OutputError:
        return True
    return False


def _study(volume, target: Path, progress, cancel) -> Path:
    # Lossless, without patient data: what leaves the viewer is the scan itself, as in its other exports.
    from medae.codec import compress, write_study

    header, sections = compress(volume, "lossless", progress=progress, cancel=cancel)
    check_cancel(cancel)
    return write_study(target, header, sections)


def _heatmap_nifti(result, volume, target: Path, progress, cancel) -> Path:
    from medae.analysis.outputs import marked
    from medae.io.nifti import save_nifti

    return save_nifti(marked(result.heatmap, result), target, dtype=np.float32)


def _findings_nifti(result, volume, target: Path, progress, cancel) -> Path:
    from medae.analysis.outputs import marked
    from medae.io.nifti import save_nifti

    return save_nifti(marked(result.labels, result), target, dtype=np.int32)


def _heatmap_dicom(result, volume, target: Path, progress, cancel) -> Path:
    from medae.io.dicom_export import write_parametric_map

    return write_parametric_map(
        result.heatmap,
        volume,
        target,
        units_description=f"medae anomaly heat, {result.units}",
        model_id=result.model_id,
        progress=progress,
        cancel=cancel,
    )


def _findings_dicom(result, volume, target: Path, progress, cancel) -> Path:
    from medae.io.dicom_export import write_segmentation

    if not result.findings:
        raise OutputError(
            f"{target}: there are no findings to write; lower the threshold in the Overlay panel (the findings "
            "follow it)."
        )
    descriptions = [
        f"Finding {f.label}: {f.side}, {f.volume_ml:.2f} mL, peak {f.peak:.2f} {result.units}" for f in result.findings
    ]
    return write_segmentation(
        result.labels,
        volume,
        target,
        segment_descriptions=descriptions,
        model_id=result.model_id,
        progress=progress,
        cancel=cancel,
    )


def _report(result, volume, target: Path, progress, cancel) -> Path:
    from medae.analysis import write_outputs
    from medae.analysis.outputs import OUTPUT_NAMES, claim_outputs, remove_stale_outputs
    from medae.viewer.figure import write_result_summary

    made = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot create the folder ({exc}). Choose another one.") from exc
    # The summary image is the part a person reads: three planes through the first finding, the colour
    # bar, the ranked findings and the warnings, at the threshold on screen.
    summary: dict = {}
    try:
        # Every name first: a file of the user's by one of them refuses the export before anything is written.
        claim_outputs(target, ("heatmap.nii.gz", "findings.nii.gz", "summary.png"))
        summary = write_result_summary(result, target)
        written = write_outputs(result, target, extra_files=summary)
    except BaseException:
        # A report is its files together: maps and a summary without their report.json (a full disk) are not
        # left behind in a folder this export made.
        with contextlib.suppress(OSError):
            for path in summary.values():
                Path(path).unlink(missing_ok=True)
            if made:
                for name in OUTPUT_NAMES:
                    (target / name).unlink(missing_ok=True)
                target.rmdir()  # only when empty
        raise
    remove_stale_outputs(target, written)  # an earlier export's files that this result does not have
    return target
