"""``medae decompress IN.mae OUT.nii.gz``: the compressed study back as NIfTI on its own grid.

Lossless files give back every voxel bit for bit, near-lossless ones every voxel within the bound the
file states, latent files the compression model's smooth, healthy-looking approximation (not the scan).
An existing file is replaced only with --overwrite: it may be the scan that was compressed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medae.cli.args import user_path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``decompress`` subcommand."""
    p = sub.add_parser("decompress", help="restore a .mae file as NIfTI", description=__doc__)
    p.add_argument("input", type=user_path, help="a compressed study (.mae)")
    p.add_argument("output", type=user_path, help="NIfTI file to write (.nii.gz or .nii)")
    p.add_argument("--model", help="latent files: the compression model folder (default: models/brain-t1-codec)")
    p.add_argument("--device", default="auto", help="latent files: auto, cpu, cuda or mps")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Reads, checks and decodes the study, then writes the NIfTI file atomically."""
    import numpy as np

    from medae.codec import container, decompress, describe
    from medae.errors import OutputError
    from medae.io.nifti import save_nifti

    name = args.output.name.lower()
    if args.output.is_dir() or not name.endswith((".nii", ".nii.gz")):
        raise OutputError(f"{args.output}: give a NIfTI file name ending in .nii.gz or .nii.")
    if args.output.exists() and args.output.resolve() == args.input.resolve():
        raise OutputError(f"{args.output} is the input itself; medae never overwrites a source file.")
    if args.output.exists() and not args.overwrite:
        # Beside the original under its own name, a decoded copy (lossy, or without the file's own header
        # fields) would replace the acquired scan for good.
        raise OutputError(
            f"{args.output} exists (it may be the scan that was compressed); give another name, or add --overwrite "
            "to replace it."
        )
    header, sections = container.read(args.input)
    model = None
    if header.get("mode") == "latent":
        from medae.model import load_model
        from medae.model.store import default_codec_dir

        model = load_model(args.model or default_codec_dir(), device=args.device)
    volume = decompress(header, sections, model=model, source=str(args.input))
    from medae.atomic import remove_leftovers

    remove_leftovers(Path(args.output).parent, [Path(args.output).name])  # what a killed run of the same command left
    kind = volume.array.dtype
    on_disk = None
    if kind.kind == "b" or (kind.kind == "f" and kind.itemsize < 4):
        # NIfTI holds no bool or float16 voxels: the nearest type that holds every value exactly.
        on_disk = np.dtype(np.uint8 if kind.kind == "b" else np.float32)
        print(f"medae: note: NIfTI cannot hold {kind.name} voxels; written as {on_disk.name}, every value unchanged.")
    save_nifti(volume, args.output, dtype=on_disk)
    for w in volume.warnings:
        print(f"medae: warning: {w}")
    print(f"{args.output}: {describe(header)}")
    return 0
