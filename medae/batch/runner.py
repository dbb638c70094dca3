"""A batch run: every series of a folder analysed with one model, each into its own folder, one table for all.

A bad series is recorded in the table with its reason and the run goes on; only a cancel (or Ctrl+C)
stops it. Each series' ``report.json`` is written last and carries the key of what produced it, so a
run started again over the same output folder skips what is already done and redoes the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medae.analysis.outputs import OUTPUT_NAMES, claim_outputs
from medae.atomic import remove_leftovers, write_text
from medae.batch.earlier import forget_errors, identity, keep_earlier_names, subfolders
from medae.batch.items import BatchItem, content_digest
from medae.batch.lock import run_lock
from medae.batch.table import Row, write_tables
from medae.errors import CancelledError, MedaeError, ModelMismatchError, OutputError, PartialOutputError
from medae.io.deid import path_token, private_folders, without_folders
from medae.progress import ProgressFn, check_cancel, report, sub_progress

log = logging.getLogger("medae.batch")

#: Writes extra files for one result into its folder (e.g. the summary image); returns name -> path.
ExtrasFn = Callable[[Any, Path], dict[str, Path]]


@dataclass(frozen=True)
class BatchOptions:
    """How each series is analysed and written (as ``medae analyze``'s options)."""

    threshold: float | None = None
    force: bool = False
    dicom: bool = False
    keep_phi: bool = False
    reconstruction: bool = False
    summary: bool = True  # whether ``write_extras`` writes the summary image (part of what a result holds)


def run_batch(
    items: list[BatchItem],
    model,
    out_dir: str | Path,
    options: BatchOptions = BatchOptions(),
    *,
    write_extras: ExtrasFn | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_row: Callable[[Row], None] | None = None,
    root: str | Path | None = None,
) -> list[Row]:
    """Analyses every item and keeps ``results.csv`` and ``report.html`` in ``out_dir`` up to date.

    Args:
        items: From ``find_items``.
        model: A ``LoadedModel``, loaded once for the whole run.
        out_dir: Output folder; each item writes into ``out_dir / item.name``.
        options: Analysis and output options.
        write_extras: Called with each result and its folder before its report is written.
        progress: Progress callback over the whole run.
        cancel: Set to stop after the current series (the table keeps what was done).
        on_row: Called with each item's row as soon as it is known.
        root: The folder of studies the items were found in. Without ``keep_phi``, the folders under it are
            left out of every series' messages (their names are often patients' names and IDs).

    Returns:
        One row per item, in the items' order.

    Raises:
        OutputError: the output folder cannot be written.
        CancelledError: cancelled (the tables are written first).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        handler = _RunLog(out / "batch.log", encoding="utf-8")
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot create the output folder or its log ({exc.strerror or exc}). Choose a folder you may "
            "write to."
        ) from exc
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        with run_lock(out):
            folders = private_folders(root) if root is not None and not options.keep_phi else []
            return _run_all(items, model, out, options, write_extras, progress, cancel, on_row, folders)
    finally:
        log.removeHandler(handler)
        handler.close()


class _RunLog(logging.FileHandler):
    """batch.log, which helps to read a run but is not a result.

    A full disk must not print a traceback to the console for every line the log cannot take; the tables
    and the console say what happened to each series.
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: D102 (logging override)
        pass


def _run_all(
    items, model, out: Path, options: BatchOptions, write_extras, progress, cancel, on_row, folders
) -> list[Row]:
    # Half-written files of a run that was killed, in every series' folder (those done earlier too): with
    # the folder's lock held no other process can be writing them, so none is too fresh to go.
    remove_leftovers(out, ("results.csv", "report.html"), older_than_s=0)
    for folder in subfolders(out):
        remove_leftovers(folder, (*OUTPUT_NAMES, "error.json"), older_than_s=0)
    # Earlier results whose input is gone stay listed (after this run's series), so that no folder of
    # results is left unexplained beside the table; nothing of theirs is touched.
    gone = [e.row() for e in forget_errors(out, keep_earlier_names(items, out))]
    if gone:
        log.warning("%d earlier result folder(s) of inputs no longer found: %s", len(gone), [r.folder for r in gone])
    run_info = {
        "model": {"id": model.card.id, "sha256": model.card.sha256},
        "device": model.device_name,
        "options": asdict(options),
        "series": len(items),
    }
    rows: list[Row] = [Row.pending(it) for it in items]
    n = max(1, len(items))
    try:
        # Before any folder is touched: an earlier run's tables must not describe results this run replaces.
        write_tables(out, [*rows, *gone], run_info)
    except OutputError as exc:
        log.warning("%s", exc)
    try:
        for i, item in enumerate(items):
            check_cancel(cancel)
            step = f"{i + 1}/{len(items)} {item.name}"
            report(progress, i / n, step)
            rows[i] = _run_item(
                item, model, out, options, write_extras, _named(progress, i / n, (i + 1) / n, step), cancel, folders
            )
            try:
                write_tables(out, [*rows, *gone], run_info)
            except OutputError as exc:  # e.g. results.csv open in a spreadsheet: tried again after the next series
                log.warning("%s", exc)
            if on_row is not None:
                on_row(rows[i])
    finally:
        write_tables(out, [*rows, *gone], run_info)
    report(progress, 1.0, "Done")
    return rows


def _named(progress: ProgressFn | None, start: float, stop: float, step: str) -> ProgressFn | None:
    """A series' progress within the run's, its messages led by which series of how many it is."""
    sub = sub_progress(progress, start, stop)
    if sub is None:
        return None
    return lambda fraction, message="": sub(fraction, f"{step}: {message}" if message else step)


#: Raised when what a finished result's files hold changes, so that a resume makes them again.
OUTPUTS_VERSION = 3


def _where(item: BatchItem, keep_phi: bool) -> str:
    """Where the input was, as the series' own outputs keep it (folder names often name the patient)."""
    return item.where if keep_phi else path_token(item.where)


def run_key(item: BatchItem, model, options: BatchOptions) -> dict[str, Any]:
    """What a finished result must have been made from to be kept when a run is resumed.

    The input's identity, the weights and the whole card (a recalibration changes scores without touching the
    weights), and the options.
    """
    card = hashlib.sha256(model.card.to_json().encode("utf-8")).hexdigest()
    key = {
        "input": identity(item, options.keep_phi),
        "model_sha256": model.card.sha256,
        "card_sha256": card,
        "options": asdict(options),
    }
    # How outputs are written matters too: a result whose messages kept a UID, before they were pseudonymised,
    # must not be kept by a run that promises them without.
    key["outputs"] = OUTPUTS_VERSION
    from medae.io.deid import site_key_id

    site = site_key_id()
    if site and not options.keep_phi:  # pseudonyms made under another site key must be made again
        key["pseudonym_key"] = site
    return key


def _run_item(
    item: BatchItem,
    model,
    out: Path,
    options: BatchOptions,
    write_extras: ExtrasFn | None,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    folders: list[str],
) -> Row:
    folder = out / item.name
    if item.error is not None:
        return _failed(item, folder, item.error, None, options, folders)
    key = run_key(item, model, options)
    try:
        done = _finished(folder, key)
        if done is not None and _same_content(item, done):
            return Row.from_report(item, done, status="done earlier")
        # A series the model refused, unchanged since, under the same model and options: refused again
        # without being read and aligned again (most series of an export are not the model's kind).
        refused = _refused_earlier(folder, key)
        if refused is not None and refused.get("content_sha256") == content_digest(item):
            return Row.refused(item, str(refused.get("error", "")))
    except Exception:  # noqa: BLE001 - an earlier report edited or damaged by hand: the series is done again
        log.warning("the earlier result in %s cannot be read; the series is analysed again", folder)
    t0 = time.perf_counter()
    try:
        # A report from another run must not stand beside new outputs if this one is killed midway: one
        # marked incomplete takes its place, listing the files (so they are known as results, not scans).
        folder.mkdir(parents=True, exist_ok=True)
        claim_outputs(folder, ("summary.png", "summary_sc.dcm"), own_folder=True)
        (folder / "error.json").unlink(missing_ok=True)
        # Before the analysis reads the files: a file replaced meanwhile must not pass for what was analysed.
        content = content_digest(item)
        result = _analyze(item, model, options, progress, cancel)
        # The summary image and the DICOM capture draw these too, as text burned into their pixels.
        result.warnings[:] = [without_folders(w, folders) for w in result.warnings]
        report(progress, 0.95, "Writing results")  # the analysis's own "Done" is not the series' end
        extras = _extras(write_extras, result, folder) if options.summary else {}
        batch = {"key": key, "input": _where(item, options.keep_phi), "content_sha256": content}
        written = _write(result, folder, options, batch, extras)
    except (CancelledError, BrokenPipeError):  # the run stops; a closed console is no fault of this series
        raise
    except ModelMismatchError as exc:  # another kind of scan (a T2, a diffusion series): expected in an export
        return _failed(item, folder, str(exc), key, options, folders, refused=content)
    except MedaeError as exc:
        return _failed(item, folder, str(exc), key, options, folders)
    except MemoryError:
        return _failed(
            item, folder, "the computer ran out of memory; close other programs and run again.", key, options, folders
        )
    except Exception as exc:  # noqa: BLE001 - one broken series must not end the run; the log keeps the trace
        log.error("unexpected error in %s:\n%s", item.name, traceback.format_exc())
        return _failed(
            item, folder, f"unexpected error ({type(exc).__name__}: {exc}); see batch.log", key, options, folders
        )
    rep = json.loads(Path(written["report"]).read_text())
    row = Row.from_report(item, rep, status="ok")
    row.seconds = round(time.perf_counter() - t0, 2)
    return row


def _analyze(item: BatchItem, model, options: BatchOptions, progress, cancel):
    from medae.analysis import analyze
    from medae.io import dicom, load

    t = time.perf_counter()
    info = item.info
    load_progress = sub_progress(progress, 0.0, 0.3)
    if info.kind == "dicom":
        volume = dicom.load_series(info, progress=load_progress, cancel=cancel)
    elif info.kind == "mae":
        from medae.codec import read_study

        volume = read_study(info.source)
    else:
        volume = load(info.source, progress=load_progress, cancel=cancel)
    t_load = time.perf_counter() - t
    result = analyze(
        volume,
        model,
        threshold=options.threshold,
        force=options.force,
        reconstruction=options.reconstruction,
        progress=sub_progress(progress, 0.3, 0.95),
        cancel=cancel,
    )
    result.timings = {"load": t_load, **result.timings}
    return result


def _write(result, folder: Path, options: BatchOptions, batch: dict, extras: dict[str, Path]) -> dict:
    from medae.analysis import write_outputs
    from medae.analysis.outputs import remove_stale_outputs

    try:
        written = write_outputs(
            result,
            folder,
            dicom=options.dicom,
            keep_phi=options.keep_phi,
            reconstruction=options.reconstruction,
            extra_report={"batch": batch},
            extra_files=extras,
        )
    except PartialOutputError as exc:  # the analysis is kept; the failed export is among its warnings
        log.warning("%s", exc)
        written = exc.written
    remove_stale_outputs(folder, written)
    return written


def _extras(write_extras, result, folder: Path) -> dict[str, Path]:
    """The caller's extra files (the summary picture); one that fails is a warning, not a lost analysis."""
    if write_extras is None:
        return {}
    try:
        return write_extras(result, folder)
    except MedaeError as exc:
        note = str(exc) if isinstance(exc, PartialOutputError) else f"The summary could not be written: {exc}"
        result.warnings.append(note)
        log.warning("%s", exc)
        return dict(getattr(exc, "written", {}))  # the picture, when only its DICOM copy failed


#: How the warnings of a failed optional output begin (``analysis.outputs``, ``viewer.figure``, ``_extras``).
PARTIAL_OUTPUT_WARNINGS = ("The DICOM export failed", "The DICOM summary", "The summary could not")


def _finished(folder: Path, key: dict) -> dict | None:
    try:
        rep = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rep, dict):
        return None
    batch = rep.get("batch")
    ok = isinstance(batch, dict) and _same_key(batch.get("key"), key)
    warnings = rep.get("warnings", [])
    if not ok or not isinstance(warnings, list):
        return None
    # A run whose DICOM or summary output failed is not finished: a resume tries it again.
    partial = any(str(w).startswith(PARTIAL_OUTPUT_WARNINGS) for w in warnings)
    # Nor is one whose files went missing or empty since (deleted, truncated by a copy): report.json alone
    # does not make a result.
    files = rep.get("files") if isinstance(rep.get("files"), dict) else {}
    lost = ok and any(_empty(folder / str(name)) for name in files.values())
    return rep if ok and not partial and not lost else None


def _same_content(item: BatchItem, report: dict) -> bool:
    """Whether the input's files still hold what the finished result was made from.

    Sizes and modification times (the key) can stay the same when a file is replaced (a copy that keeps
    times, a re-export of the same size), so a result is kept only when the files' digest matches too;
    read only for results that the key would keep.
    """
    stored = (report.get("batch") or {}).get("content_sha256")
    return stored is not None and stored == content_digest(item)


def _empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return True


def _refused_earlier(folder: Path, key: dict) -> dict | None:
    """The error.json of a refusal by the same model and options in ``folder``, or None."""
    try:
        record = json.loads((folder / "error.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not record.get("refused"):
        return None
    return record if _same_key(record.get("key"), key) else None


def _same_key(stored: Any, key: dict) -> bool:
    """Whether a stored key is ``key`` but for the input's identity (its place, its files' times).

    The input's bytes decide, by the digest each caller compares next: a series moved or copied elsewhere
    (new times, another path) is still the scan its result was made from.
    """
    if not isinstance(stored, dict):
        return False
    plain = json.loads(json.dumps(key))
    return {k: v for k, v in stored.items() if k != "input"} == {k: v for k, v in plain.items() if k != "input"}


def _failed(
    item: BatchItem,
    folder: Path,
    message: str,
    key: dict | None,
    options: BatchOptions,
    folders: list[str] = (),
    refused: str | None = None,
) -> Row:
    """Records why a series has no result; ``refused`` (the input's digest) when the model refused it."""
    from medae.analysis.outputs import remove_stale_outputs
    from medae.io.deid import without_uids

    # A series' real UID is patient data, and so are the folder names above its files.
    said = message if options.keep_phi else without_folders(without_uids(message), folders)
    try:
        if folder.is_dir():  # results of an earlier run of this series must not stand beside its error
            remove_stale_outputs(folder, {})
        record = {"input": _where(item, options.keep_phi), "error": said, "key": key}
        if key is None and not options.keep_phi:  # which key the token was made under (a key has it)
            from medae.io.deid import site_key_id

            record["pseudonym_key"] = site_key_id()
        if refused is not None:
            record.update(refused=True, content_sha256=refused)
        write_text(folder / "error.json", json.dumps(record, indent=2))
    except (OSError, MedaeError) as exc:  # the table still records it
        log.error("cannot write %s: %s", folder / "error.json", exc)
    return Row.refused(item, said) if refused is not None else Row.failed(item, said)
