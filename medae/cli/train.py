"""``medae train``: train an autoencoder on healthy scans and write a model folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medae.cli.args import check_output_folder, user_path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``train`` subcommand."""
    p = sub.add_parser("train", help="train a model on healthy scans", description=__doc__)
    p.add_argument("--data", required=True, help="folder of healthy scans (any readable format) or a file listing them")
    p.add_argument(
        "--out", required=True, type=user_path, help="model folder to write (resumes if it holds a checkpoint)"
    )
    p.add_argument(
        "--calibration-data",
        help="more healthy scans (held out from training) to calibrate on, "
        "beside the validation split: a folder or a text file listing them",
    )
    p.add_argument("--config", type=Path, help="JSON file overriding the default brain T1 configuration")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override one setting, e.g. --set steps=200 --set 'architecture={\"skip\": false}'",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Trains and writes the model folder."""
    check_output_folder(args.out, make=False)  # a file in its place is said before any work
    from medae.cli.progressbar import ProgressBar
    from medae.errors import MedaeError
    from medae.training.config import load_config
    from medae.training.train import train

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MedaeError(f'--set {item}: the value must be JSON (e.g. 200, "l1", true)') from exc
    cfg = load_config(args.config, overrides)
    command = "medae " + " ".join(sys.argv[1:]) if sys.argv and "medae" in sys.argv[0] else None
    with ProgressBar("train", every=30) as bar:
        train(
            args.data,
            args.out,
            cfg,
            device=args.device,
            progress=bar,
            command=command,
            calibration_data=args.calibration_data,
        )
    print(f"model written to {args.out}")
    return 0
