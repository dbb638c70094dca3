"""``medae compress INPUT OUT.mae``: one file holding a scan losslessly, within a bound, or as a latent.

Modes: lossless (the default; every voxel back bit for bit), near-lossless (every voxel back within
--max-error, in the scan's units; lossy is another name for it) and latent (about 60 kB that the
compression model decodes to a smooth, healthy-looking preview: not the scan, never for diagnosis).
The file is checked by decoding it before it is written, and is written atomically. An existing file
that is not a compressed study (another scan, named as the output by mistake) is replaced only with
--overwrite.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from medae.cli.args import finite_float, load_input, series_choice, user_path

_ALIASES = {"lossy": "near-lossless"}


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``compress`` subcommand."""
    p = sub.add_parser("compress", help="compress a scan into one .mae file", description=__doc__)
    p.add_argument("input", help="scan file (NIfTI, MGH, NRRD, MetaImage), DICOM file, DICOM folder or DICOMDIR")
    p.add_argument("output", type=user_path, help="the compressed study to write (.mae)")
    p.add_argument(
        "--mode",
        default="lossless",
        choices=("lossless", "near-lossless", "lossy", "latent"),
        help="lossless (default), near-lossless (= lossy: every voxel within --max-error) or latent",
    )
    p.add_argument(
        "--max-error",
        type=finite_float,
        help="near-lossless: largest error per voxel in the scan's units (default: 0.25%% of its 1st-99th "
        "percentile range, at least 1 for integer scans)",
    )
    p.add_argument("--model", help="latent mode: the compression model folder (default: models/brain-t1-codec)")
    p.add_argument("--device", default="auto", help="latent mode: auto, cpu, cuda or mps")
    p.add_argument("--series", help="series when the input holds several: its UID, or its # in `medae info`")
    p.add_argument("--volume", type=int, help="volume of a 4D file, counted from 0")
    p.add_argument("--keep-phi", action="store_true", help="keep patient-identifying data in the file")
    p.add_argument("--force", action="store_true", help="latent mode on a scan of another modality than the model's")
    p.add_argument("--overwrite", action="store_true", help="replace OUT even if it is not a compressed study")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Loads the scan, compresses it and writes the file."""
    from medae.cli.progressbar import ProgressBar
    from medae.codec import compress, describe, is_compressed_study, write_study
    from medae.errors import OutputError
    from medae.io.loader import is_source_of

    mode = _ALIASES.get(args.mode, args.mode)
    out: Path = args.output
    if out.is_dir():
        raise OutputError(f"{out} is a folder; give the file to write, e.g. {out / 'study.mae'}.")
    if args.max_error is not None and mode != "near-lossless":
        raise OutputError(f"--max-error applies to --mode near-lossless, not {mode}.")
    source = Path(args.input)
    if os.path.exists(source) and os.path.exists(out) and os.path.samefile(source, out):  # False where unreachable
        raise OutputError(f"{out} is the input itself; medae never overwrites a source file. Choose another name.")
    if out.suffix.lower() != ".mae":
        print(f"medae: note: {out.name} does not end in .mae; medae recognises compressed studies by content anyway.")
    with ProgressBar(f"load {source.name}"[:40]) as bar:
        volume = load_input(
            args.input, series_choice(args.input, args.series), args.volume, bar
        )  # a .mae too: change its mode
    if is_source_of(out, volume):  # a slice of a DICOM input, the .raw beside a .mhd, ...
        raise OutputError(f"{out} is one of the files of the input; medae never overwrites a source file.")
    if out.exists() and not args.overwrite and not is_compressed_study(out):
        # A study may carry any name: without this, `compress a.nii.gz b.nii.gz` would replace the scan b.
        raise OutputError(
            f"{out} exists and is not a compressed study (it may be a scan); give another name, or add --overwrite "
            "to replace it."
        )
    model = None
    if mode == "latent":
        from medae.model import load_model
        from medae.model.store import default_codec_dir

        model = load_model(args.model or default_codec_dir(), device=args.device)
    with ProgressBar("compress") as bar:
        header, sections = compress(
            volume, mode, args.max_error, model=model, keep_phi=args.keep_phi, force=args.force, progress=bar
        )
    from medae.atomic import remove_leftovers

    remove_leftovers(out.parent, [out.name])  # what a killed run of the same command left
    write_study(out, header, sections)
    for w in header.get("warnings", []):
        print(f"medae: warning: {w}")
    if mode == "latent":
        print("medae: note: a latent keeps only a smooth, healthy-looking approximation; keep the scan itself.")
    print(f"{out}: {describe(header, out.stat().st_size)}")
    return 0
