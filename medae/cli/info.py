"""``medae info PATH``: list every series in a file or folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``info`` subcommand."""
    p = sub.add_parser("info", help="list the series in a file or folder", description=__doc__)
    p.add_argument("path", help="scan file (NIfTI, MGH, NRRD, MetaImage), DICOM file, DICOM folder or DICOMDIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prints the series found under ``args.path``."""
    from medae.cli.args import with_compressed_studies
    from medae.codec import container, describe, is_compressed_study
    from medae.io import scan

    if is_compressed_study(args.path):
        header, _ = container.read(args.path)
        if args.json:
            shown = {k: v for k, v in header.items() if k != "phi"}
            json.dump({"path": str(args.path), "compressed_study": shown}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(f"{args.path}: compressed study, {describe(header, Path(args.path).stat().st_size, str(args.path))}")
            for w in header.get("warnings", []):
                print(f"    warning: {w}")
        return 0
    infos = with_compressed_studies(args.path, scan)
    if args.json:
        json.dump({"path": str(args.path), "series": [s.to_json() for s in infos]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(format_table(infos))
    return 0


def format_table(infos) -> str:
    """A plain-text table, one row per series, warnings indented below their series."""
    header = ("#", "modality", "description", "dimensions", "spacing (mm)", "orient", "files", "uid")
    rows = []
    for n, s in enumerate(infos, 1):
        rows.append(
            (
                str(n),
                s.modality or "-",
                (s.description or "-")[:40],
                "x".join(map(str, s.shape)),
                "x".join(f"{v:.3g}" for v in s.spacing),
                s.orientation,
                str(s.n_files),
                s.uid,  # what --series takes (a file's path for a folder of files), beside the # it also takes
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    for s, r in zip(infos, rows, strict=False):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
        lines.extend(f"    warning: {w}" for w in s.warnings)
    return "\n".join(lines)
