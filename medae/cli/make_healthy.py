"""``medae make-healthy``: generate a folder of realistic healthy T1 scans for training and evaluation."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``make-healthy`` subcommand."""
    p = sub.add_parser(
        "make-healthy", help="generate healthy training scans from the bundled template", description=__doc__
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (resumable)")
    p.add_argument("--n", type=int, default=40, help="number of scans (default 40)")
    p.add_argument("--seed", type=int, default=1000, help="seed of the first scan (default 1000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Writes the scans."""
    from medae.cli.progressbar import ProgressBar
    from medae.training.dataset_writer import write_healthy_set

    with ProgressBar("make-healthy") as bar:
        paths = write_healthy_set(args.out, args.n, args.seed, progress=bar)
    print(f"{len(paths)} healthy scans in {args.out}")
    return 0
