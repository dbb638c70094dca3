"""The run's table: one row per series, as ``results.csv`` and ``report.html``.

The CSV is for scripts and spreadsheets, the page for people; both are rewritten atomically after every series.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from medae.analysis.result import INTENDED_USE
from medae.atomic import write_text
from medae.batch.items import BatchItem


@dataclass
class Row:
    """One series of the run.

    ``status`` is "ok", "done earlier" (kept from a previous run), "error", "refused" (a series of another
    kind than the model's, which the model cannot judge: expected in an export), "not run" (the run
    stopped before it) or "input not found" (an earlier run's result whose input is no longer under the
    studies folder: its folder is kept and listed). Score columns are empty unless a result exists.
    """

    folder: str
    input: str
    series_uid: str
    modality: str
    description: str
    status: str
    score: float | None = None
    percentile: float | None = None
    findings: int | None = None
    top_volume_ml: float | None = None
    top_peak: float | None = None
    top_side: str = ""
    top_ras_mm: str = ""
    threshold: float | None = None
    units: str = ""
    warnings: str = ""
    error: str = ""
    seconds: float | None = None
    summary: str = ""
    #: The SeriesInstanceUID the part ``series_uid`` belongs to (a split series' parts are ``<uid>.N``), so
    #: that its pseudonym is the one report.json and the DICOM exports give the series. Not a column.
    series_of_part: str = field(default="", repr=False, metadata={"column": False})

    @classmethod
    def _base(cls, item: BatchItem, status: str) -> Row:
        dicom = item.info is not None and item.info.kind == "dicom"
        uid = item.info.uid if dicom else ""
        whole = str((item.info.extra or {}).get("series_uid") or "") if dicom else ""
        row = cls(item.name, item.where, uid, item.modality, item.description, status)
        row.series_of_part = whole
        return row

    @classmethod
    def pending(cls, item: BatchItem) -> Row:
        """A series the run has not reached."""
        return cls._base(item, "not run")

    @classmethod
    def failed(cls, item: BatchItem, message: str) -> Row:
        """A series that could not be analysed, and why."""
        row = cls._base(item, "error")
        row.error = message
        return row

    @classmethod
    def refused(cls, item: BatchItem, message: str) -> Row:
        """A series of another kind than the model's (a T2, a diffusion series, a CT), and why."""
        row = cls._base(item, "refused")
        row.error = message
        return row

    @classmethod
    def from_report(cls, item: BatchItem, rep: dict[str, Any], status: str) -> Row:
        """A series with a result, from its ``report.json``."""
        row = cls._base(item, status)
        row.modality = row.modality or str((rep.get("input") or {}).get("modality") or "")
        found = rep.get("findings") or []
        row.score, row.percentile, row.findings = rep.get("score"), rep.get("percentile"), len(found)
        if found:
            top = found[0]
            row.top_volume_ml, row.top_peak, row.top_side = top.get("volume_ml"), top.get("peak"), top.get("side", "")
            row.top_ras_mm = " ".join(f"{v:.1f}" for v in top.get("centroid_world_mm", []))
        row.threshold, row.units = rep.get("threshold"), rep.get("units", "")
        row.warnings = " | ".join(rep.get("warnings") or [])
        timings = rep.get("timings") or {}
        row.seconds = round(sum(float(v) for v in timings.values()), 2) if timings else None
        row.summary = str((rep.get("files") or {}).get("summary") or "")
        return row


#: Columns of results.csv, in order.
CSV_COLUMNS = [f.name for f in fields(Row) if f.metadata.get("column", True)]


def _pseudonymous(uid: str, series: str = "") -> str:
    """The pseudonym of a series UID; of a part ``<series>.N`` of a split series, the series' pseudonym + ``.N``."""
    if not uid:
        return uid
    from medae.io.deid import Deidentification

    policy = Deidentification()
    if series and uid != series and uid.startswith(series + "."):
        return policy.uid(series) + uid[len(series) :]
    return policy.uid(uid)


def write_tables(out: Path, rows: list[Row], run_info: dict[str, Any]) -> None:
    """Writes ``results.csv`` and ``report.html`` into ``out`` (atomically)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    # Without --keep-phi, series UIDs are the pseudonymous ones the DICOM exports write (same mapping); the
    # messages have theirs already (report.json's warnings, and errors as the runner records them).
    keep_phi = bool((run_info.get("options") or {}).get("keep_phi"))
    rows = rows if keep_phi else [replace(r, series_uid=_pseudonymous(r.series_uid, r.series_of_part)) for r in rows]
    for row in rows:
        values = asdict(row)
        writer.writerow({k: _cell(values[k]) for k in CSV_COLUMNS})
    write_text(out / "results.csv", buf.getvalue())
    write_text(out / "report.html", render_html(rows, run_info))


#: Numbers and space-separated coordinates ("-33.5 14.2 19.6"): medae's own, never a formula.
_NUMBERS = re.compile(r"-?\d+(\.\d+)?( -?\d+(\.\d+)?)*")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@")) and not _NUMBERS.fullmatch(value):
        return "'" + value  # text a spreadsheet would run as a formula (a description or a file name)
    return value


def _sort_key(row: Row) -> tuple:
    # A region above the threshold outranks a higher score without one: a small lesion barely moves a
    # scan's score (some lesion scans score below healthy ones), and the findings are what is read.
    has = row.score is not None and math.isfinite(row.score)
    group = 0 if has else {"error": 1, "refused": 2, "input not found": 4}.get(row.status, 3)
    return (group, 0 if row.findings else 1, -(row.score or 0.0) if has else 0.0, row.folder)


def render_html(rows: list[Row], run_info: dict[str, Any]) -> str:
    """The run as one self-contained page: counts, then every series, most abnormal first."""
    e = html.escape
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    model = run_info.get("model", {})
    head = (
        f"<p>Model <b>{e(str(model.get('id', '')))}</b> (sha256 {e(str(model.get('sha256', ''))[:16])}...) on "
        f"{e(str(run_info.get('device', '')))}; {len(rows)} series: "
        + ", ".join(f"{n} {e(s)}" for s, n in sorted(counts.items()))
        + f". Updated {e(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>"
    )
    thresholds = {r.threshold for r in rows if r.threshold is not None}
    if len(thresholds) == 1:
        units = next((r.units for r in rows if r.units), "")
        head += f"\n<p>Findings are regions above {next(iter(thresholds)):g} {e(units)}.</p>"
    waiting = counts.get("not run", 0)
    if waiting:
        head += (
            f"\n<p><b>{waiting} series not run yet:</b> the run is still going, or was stopped. Run the same command "
            "again to finish them; what is done is kept.</p>"
        )
    gone = counts.get("input not found", 0)
    if gone:
        head += (
            f"\n<p><b>{gone} earlier result folder(s) of inputs no longer found</b> (moved with other content, or "
            "deleted) are listed last and kept as they were; delete those you no longer need.</p>"
        )
    lines = []
    for r in sorted(rows, key=_sort_key):
        # A series not run has no folder yet (or one of an earlier run's that may be replaced).
        link = e(r.folder) if r.status == "not run" else f'<a href="{e(r.folder)}/">{e(r.folder)}</a>'
        image = r.summary
        thumb = (
            f'<a href="{e(r.folder)}/{e(image)}"><img src="{e(r.folder)}/{e(image)}" alt="summary"></a>'
            if image
            else ""
        )
        score = "" if r.score is None else f"{r.score:.2f}"
        pct = "" if r.percentile is None else f"{r.percentile:.0f}"
        top = ""
        if r.findings:
            top = f"{r.top_volume_ml:.2f} mL, peak {r.top_peak:.1f}, {e(r.top_side)} ({e(r.top_ras_mm)})"
        notes = e(r.error) if r.error else e(r.warnings)
        lines.append(
            f'<tr class="{e(r.status.replace(" ", "-"))}"><td>{link}<br><small>{e(r.input)}</small></td>'
            f"<td>{e(r.modality)}</td><td>{e(r.description)}</td><td>{e(r.status)}</td><td>{score}</td>"
            f"<td>{pct}</td><td>{'' if r.findings is None else r.findings}</td><td>{top}</td>"
            f"<td>{notes}</td><td>{thumb}</td></tr>"
        )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>medae batch report</title><style>'
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top}th{background:#eee}"
        "tr.error{background:#fde8e8}tr.refused,tr.not-run{color:#888}img{max-width:240px}"
        "</style></head><body>\n<h1>medae batch report</h1>\n"
        + f"<p><strong>{e(INTENDED_USE)}</strong></p>\n"
        + head
        + "\n<p>Score: higher is more unlike the healthy scans the model was calibrated on; percentile among those "
        "healthy scans. Rows: series with findings first, each group most abnormal first, then errors, then "
        "series not run, then earlier results whose input is no longer found.</p>\n"
        "<table><tr><th>series (output folder)</th><th>modality</th><th>description</th><th>status</th>"
        "<th>score</th><th>percentile</th><th>findings</th><th>first finding</th><th>warnings / error</th>"
        "<th>summary</th></tr>\n" + "\n".join(lines) + "\n</table></body></html>\n"
    )
