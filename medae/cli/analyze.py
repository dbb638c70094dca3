"""``medae analyze INPUT --out DIR``: heatmap, findings and report for one scan (or every series with --all)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from medae.cli.args import (
    check_output_folder,
    load_input,
    remove_if_empty,
    series_choice,
    threshold_value,
    user_path,
    with_compressed_studies,
)
from medae.errors import MedaeError, OutputError, PartialOutputError


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``analyze`` subcommand."""
    p = sub.add_parser("analyze", help="anomaly heatmap, score and findings for a scan", description=__doc__)
    p.add_argument("input", help="scan file (NIfTI, MGH, NRRD, MetaImage), DICOM file, DICOM folder or DICOMDIR")
    p.add_argument("--out", required=True, type=user_path, help="output folder")
    p.add_argument("--model", help="model folder (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    p.add_argument(
        "--threshold", type=threshold_value, help="findings threshold in calibrated units (default: the model's)"
    )
    sel = p.add_mutually_exclusive_group()
    sel.add_argument(
        "--series", help="series to analyse when the input holds several: its UID, or its # in `medae info`"
    )
    sel.add_argument("--all", action="store_true", help="analyse every series, each into its own sub-folder")
    p.add_argument("--volume", type=int, help="volume of a 4D file (NIfTI, NRRD, MetaImage), counted from 0")
    p.add_argument(
        "--dicom",
        action="store_true",
        help="also write DICOM: Parametric Map, Segmentation and a Secondary Capture summary",
    )
    p.add_argument("--png", action="store_true", help="also write summary.png (three planes, overlay, colorbar)")
    p.add_argument("--reconstruction", action="store_true", help="also write reconstruction.nii.gz")
    p.add_argument("--keep-phi", action="store_true", help="keep patient-identifying data in the outputs")
    p.add_argument("--force", action="store_true", help="analyse even when the scan does not fit the model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Loads the model once, then analyses the chosen series; one run at a time writes to a folder."""
    from medae.batch.lock import run_lock

    made = check_output_folder(args.out)  # before the work: a folder that cannot take the results is said at once
    try:
        # Two runs into one folder would leave one scan's heatmap beside the other's findings and report.
        with run_lock(args.out):
            return _run(args)
    finally:
        remove_if_empty(made)  # a run refused for its input or model, or stopped before writing, leaves none


def _run(args: argparse.Namespace) -> int:
    from medae.batch.items import unique_names
    from medae.cli.progressbar import ProgressBar
    from medae.codec import is_compressed_study
    from medae.io import scan
    from medae.model import load_model

    t0 = time.perf_counter()
    model = load_model(args.model, device=args.device)
    t_model = time.perf_counter() - t0
    targets: list[tuple[str | None, Path]] = [(series_choice(args.input, args.series), args.out)]
    if args.all:
        infos = with_compressed_studies(args.input, scan)
        names = unique_names([_safe(_folder_uid(s, args.keep_phi)) for s in infos]) if len(infos) > 1 else [""]
        targets = [(s.uid, args.out / name) for s, name in zip(infos, names, strict=True)]
    status = 0
    for series, out in targets:
        try:
            t = time.perf_counter()
            # A compressed study found in the folder is its own file (its "series" is its path).
            study = bool(series) and is_compressed_study(series)
            with ProgressBar(f"load {series or Path(args.input).name}"[:40]) as bar:
                if study:  # --volume is for the folder's 4D files
                    volume = load_input(series, series, None, bar)
                else:
                    volume = load_input(args.input, series, args.volume, bar)
            t_load = time.perf_counter() - t
            written = analyze_one(volume, model, out, args, t_load, t_model)
        except Exception as exc:  # noqa: BLE001 - with --all one bad series must not stop the rest
            from medae.errors import MedaeError

            if not args.all or not isinstance(exc, MedaeError):
                raise
            said = str(exc)
            # File errors already start with the file's path, which is also a file's "series".
            print(f"medae: error: {said if said.startswith(str(series)) else f'{series}: {said}'}", file=sys.stderr)
            status = 2
            continue
        print(f"{out}: " + ", ".join(p.name for p in written.values()))
    return status


def analyze_one(volume, model, out: Path, args: argparse.Namespace, t_load: float, t_model: float) -> dict:
    """Analyses one volume and writes its outputs."""
    from medae.analysis import analyze, write_outputs
    from medae.analysis.outputs import (
        OUTPUT_NAMES,
        check_not_source,
        check_outputs,
        medae_files,
        remove_stale_outputs,
    )
    from medae.cli.progressbar import ProgressBar
    from medae.viewer.figure import write_result_summary

    check_not_source(volume, out)  # before the work, not after it
    summary_names = ("summary.png", "summary_sc.dcm") if args.dicom else ("summary.png",) if args.png else ()
    maps = ("heatmap.nii.gz", "findings.nii.gz", *(("reconstruction.nii.gz",) if args.reconstruction else ()))
    dicom = ("heatmap_pmap.dcm", "findings_seg.dcm") if args.dicom else ()
    check_outputs(out, (*maps, *dicom, *summary_names))
    with ProgressBar("analyze") as bar:
        result = analyze(
            volume, model, threshold=args.threshold, force=args.force, reconstruction=args.reconstruction, progress=bar
        )
    result.timings = {"load": t_load, "model_load": t_model, **result.timings}
    if not args.keep_phi:
        from medae.io.deid import private_folders, without_folders

        # Folder names are often patients' names and IDs; the summary and its DICOM capture draw these too.
        if getattr(args, "private_folders", None) is None:  # listed once for every series of the input
            args.private_folders = private_folders(args.input)
        result.warnings[:] = [without_folders(w, args.private_folders) for w in result.warnings]
    t = time.perf_counter()
    # An earlier run's files, replaced or removed by the writing (files of those names that are not
    # medae's are left alone, or the run was refused).
    ours = medae_files(out) or set()
    earlier = [name for name in OUTPUT_NAMES if name in ours and (out / name).is_file()]
    failed = None  # an optional export that failed: told after the analysis's own outputs are in place
    try:
        written = write_outputs(
            result,
            out,
            dicom=args.dicom,
            keep_phi=args.keep_phi,
            reconstruction=args.reconstruction,
            later=summary_names,
        )
    except PartialOutputError as exc:
        written, failed = exc.written, str(exc)
    if args.png or args.dicom:
        try:
            written.update(write_result_summary(result, out, dicom=args.dicom, keep_phi=args.keep_phi))
        except MedaeError as exc:
            written.update(getattr(exc, "written", {}))  # the picture, when only its DICOM copy failed
            note = str(exc) if isinstance(exc, PartialOutputError) else f"The summary could not be written: {exc}"
            result.warnings.append(note)
            failed = failed or f"{note} The heatmap, findings and report.json are in {out}."
    result.timings["write"] = time.perf_counter() - t
    # The report is rewritten last so that it carries the write time too.
    write_outputs_report_only(result, out, written, args.keep_phi)
    written["report"] = out / "report.json"
    remove_stale_outputs(out, written)
    names = {Path(p).name for p in written.values()}
    for name in earlier:
        if name not in names:
            print(f"removed {name} of an earlier run in {out}", file=sys.stderr)
    for w in result.warnings:
        if not (failed and failed.startswith(w)):  # the failure is the last line, said once
            print(f"warning: {w}", file=sys.stderr)
    # An uncalibrated model has no healthy scores to rank against: its percentile is NaN, not a number to print.
    rank = f"percentile {result.percentile:.1f} among healthy" if result.percentile == result.percentile else None
    print(
        f"score {result.score:.2f} ({rank or 'no percentile: the model is not calibrated'}), "
        f"{len(result.findings)} finding(s) above {result.threshold:g} {result.units}"
    )
    if failed is not None:
        raise OutputError(failed)
    return written


def write_outputs_report_only(result, out: Path, written: dict, keep_phi: bool) -> None:
    """Rewrites report.json with the final timings and file list."""
    import json

    from medae.analysis.outputs import deidentify_report
    from medae.atomic import write_text

    report = result.report()
    report["files"] = {k: Path(p).name for k, p in written.items()}
    deidentify_report(report, keep_phi)
    write_text(out / "report.json", json.dumps(report, indent=2) + "\n")


def _folder_uid(info, keep_phi: bool) -> str:
    """What names a series' output folder: a DICOM series by its pseudonym (as its report.json) unless asked."""
    if info.kind != "dicom" or keep_phi:
        return info.uid
    from medae.io.deid import without_uids

    return without_uids(info.uid)


def _safe(uid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", uid)[-64:] or "series"
