"""``medae make-healthy``: generate a folder of realistic healthy T1 scans for training and evaluation."""

from __future__ import annotations

import argparse

from medae.cli.args import check_output_folder, positive_int, remove_if_empty, seed_int, user_path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``make-healthy`` subcommand."""
    p = sub.add_parser(
        "make-healthy", help="generate healthy training scans from the bundled template", description=__doc__
    )
    p.add_argument("--out", required=True, type=user_path, help="output folder (resumable)")
    p.add_argument("--n", type=positive_int, default=40, help="number of scans (default 40)")
    p.add_argument("--seed", type=seed_int, default=1000, help="seed of the first scan (default 1000)")
    p.add_argument(
        "--variation",
        type=float,
        nargs=2,
        default=(1.0, 1.0),
        metavar=("LO", "HI"),
        help="range of the variation factor, drawn per scan (default 1 1: the standard variation; "
        "0.8 1.3 gives wider anatomy, pose and acquisition variation)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Writes the scans."""
    check_output_folder(args.out, make=False)  # a file in its place is said before any work
    from medae.cli.progressbar import ProgressBar
    from medae.training.dataset_writer import write_healthy_set

    lo, hi = args.variation
    if not 0 <= lo <= hi <= 3:
        print(f"medae make-healthy: --variation {lo:g} {hi:g} is not a range within 0..3; give LO <= HI, e.g. 0.8 1.3")
        return 2
    made = check_output_folder(args.out)  # a folder that cannot be made or written to is said in its words
    try:
        with ProgressBar("make-healthy") as bar:
            paths = write_healthy_set(args.out, args.n, args.seed, progress=bar, variation=(lo, hi))
    finally:
        remove_if_empty(made)  # a run refused before it wrote anything leaves no empty folder
    print(f"{len(paths)} healthy scans in {args.out}")
    return 0
