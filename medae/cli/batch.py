"""``medae batch IN_DIR --out OUT_DIR``: every series under a folder, each into its own sub-folder.

Writes ``results.csv`` and ``report.html`` for the whole run. Run it again on the same folders to resume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medae.cli.args import check_output_folder, remove_if_empty, threshold_value, user_path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``batch`` subcommand."""
    p = sub.add_parser("batch", help="analyse every series in a folder of studies", description=__doc__)
    p.add_argument(
        "input",
        help="folder of studies (DICOM series and NIfTI/MGH/NRRD/MetaImage files, searched in depth), or a DICOMDIR",
    )
    p.add_argument("--out", required=True, type=user_path, help="output folder (a sub-folder per series)")
    p.add_argument("--model", help="model folder (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    p.add_argument(
        "--threshold", type=threshold_value, help="findings threshold in calibrated units (default: the model's)"
    )
    p.add_argument(
        "--dicom", action="store_true", help="also write DICOM Parametric Map, Segmentation, Secondary Capture"
    )
    p.add_argument(
        "--no-png", action="store_true", help="do not write each series' summary.png (the report's pictures)"
    )
    p.add_argument("--reconstruction", action="store_true", help="also write each reconstruction.nii.gz")
    p.add_argument("--keep-phi", action="store_true", help="keep patient-identifying data in the outputs")
    p.add_argument("--force", action="store_true", help="analyse even series that do not fit the model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Lists the series, loads the model once, analyses each; exit status 2 when any series failed."""
    # Before the search (minutes over a large archive) and the model: a folder that cannot take the results.
    made = check_output_folder(args.out)
    try:
        return _run(args)
    finally:
        remove_if_empty(made)  # a run refused for its input or model leaves no empty folder


def _run(args: argparse.Namespace) -> int:
    from medae.batch import BatchOptions, find_items, run_batch
    from medae.cli.progressbar import ProgressBar
    from medae.model import load_model
    from medae.viewer.figure import write_result_summary

    with ProgressBar(f"scan {Path(args.input).name}"[:40]) as bar:
        items = find_items(args.input, exclude=args.out, progress=bar)
    if not items:
        print(f"medae: no scan found under {args.input}", file=sys.stderr)
        return 2
    model = load_model(args.model, device=args.device)
    options = BatchOptions(
        threshold=args.threshold,
        force=args.force,
        dicom=args.dicom,
        keep_phi=args.keep_phi,
        reconstruction=args.reconstruction,
        summary=not args.no_png or args.dicom,  # the DICOM Secondary Capture is the summary image
    )

    def extras(result, folder: Path) -> dict:
        return write_result_summary(result, folder, dicom=args.dicom, keep_phi=args.keep_phi)

    print(f"{len(items)} series under {args.input}; model {model.card.id} on {model.device_name}")
    done = [0]
    bar = ProgressBar("batch")

    def show(row) -> None:
        bar.clear()  # on a terminal the row would otherwise go on at the end of the bar's line
        done[0] += 1
        if row.error:
            what = f"error: {row.error}"
        else:
            pct = "" if row.percentile is None else f" (p{row.percentile:.0f})"  # None: an uncalibrated model
            what = f"score {row.score:.2f}{pct}, {row.findings} finding(s)"
            what += " [done earlier]" if row.status == "done earlier" else ""
        print(f"[{done[0]}/{len(items)}] {row.folder}: {what}", flush=True)

    try:
        with bar:
            rows = run_batch(
                items, model, args.out, options, write_extras=extras, progress=bar, on_row=show, root=args.input
            )
    except KeyboardInterrupt:
        print(
            f"Stopped after {done[0]} of {len(items)} series; {args.out / 'results.csv'} lists them. Run the same "
            "command again to resume: finished series are kept.",
            file=sys.stderr,
        )
        raise
    failed = sum(r.status == "error" for r in rows)
    refused = sum(r.status == "refused" for r in rows)
    # A series of another kind than the model's (a T2 beside the T1) is expected in an export: said, and no
    # failure of the run; an error (a damaged file) is.
    not_for = f" ({refused} of another kind than the model's, refused)" if refused else ""
    print(
        f"{len(rows) - failed - refused} of {len(rows)} series analysed{not_for}; {args.out / 'results.csv'}, "
        f"{args.out / 'report.html'}"
    )
    return 2 if failed else 0
