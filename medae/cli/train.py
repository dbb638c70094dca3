"""``medae train``: train an autoencoder on healthy scans and write a model folder."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from medae.cli.args import check_output_folder, remove_if_empty, user_path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``train`` subcommand."""
    p = sub.add_parser("train", help="train a model on healthy scans", description=__doc__)
    p.add_argument(
        "--data",
        required=True,
        help="folder of healthy scans (any readable format, subfolders too) or a text file (.txt, .lst, .list) "
        "listing them, one a line, relative to the list's folder; lines starting with # are skipped",
    )
    p.add_argument(
        "--out",
        required=True,
        type=user_path,
        help="model folder to write (resumes if it holds a checkpoint; a model trained on other scans is refused, "
        "never replaced)",
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
    _check_model_folder(args.out)
    from medae.analysis.checks import check_contrast, check_input
    from medae.cli.progressbar import ProgressBar
    from medae.errors import MedaeError
    from medae.training.config import load_config
    from medae.training.train import train

    overrides = {}
    for item in args.set:
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise MedaeError(f"--set {item}: give KEY=JSON, e.g. --set steps=200")
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MedaeError(f'--set {item}: the value must be JSON (e.g. 200, "l1", true)') from exc
        section, dot, inner = key.partition(".")
        if dot:  # the card names a setting that differed so; --set takes the section's object
            raise MedaeError(
                f"--set {item}: a setting inside a section is given as the section's JSON object, "
                f"--set '{section}={json.dumps({inner: value})}'"
            )
        if isinstance(value, dict) and isinstance(overrides.get(key), dict):
            value = {**overrides[key], **value}  # several --set of one section: each adds its settings
        overrides[key] = value
    cfg = load_config(args.config, overrides)
    command = "medae " + " ".join(sys.argv[1:]) if sys.argv and "medae" in sys.argv[0] else None
    with _one_run_at_a_time(args.out), ProgressBar("train", every=30) as bar, _resume_hint(cfg):
        with _stop_after_step() as cancel:
            train(
                args.data,
                args.out,
                cfg,
                device=args.device,
                progress=bar,
                command=command,
                calibration_data=args.calibration_data,
                cancel=cancel,
                # What the analysis refuses (a label map, a crop, its outputs, a T2) is left out.
                screen=check_input,
                screen_contrast=check_contrast,
            )
    try:  # what the training left out is in the card; said here too, where the run was watched
        left_out = json.loads((Path(args.out) / "card.json").read_text())["training"].get("skipped") or []
    except (OSError, ValueError, KeyError):
        left_out = []
    for line in left_out:
        print(f"medae: warning: left out of the training: {line}", file=sys.stderr)
    print(f"model written to {args.out}")
    return 0


def _check_model_folder(out) -> None:
    """Refuses a folder that holds something other than a model, before any work: the run writes into it.

    A model folder (a card, or a training state to resume) is what ``--out`` is for; training there
    resumes, or replaces the model when its run is done, as the model's README describes.
    """
    from medae.errors import MedaeError

    try:
        entries = [e for e in os.listdir(out) if not e.startswith(".")]
    except OSError:
        return  # not there yet (made by the training), or a file, which check_output_folder said
    if entries and not {"card.json", "train_state"} & set(entries):
        raise MedaeError(
            f"{out} holds other files ({', '.join(sorted(entries)[:3])}{', ...' if len(entries) > 3 else ''}) and "
            "no model: a model folder is written into. Choose a new folder for --out (or a model folder to resume)."
        )


@contextlib.contextmanager
def _one_run_at_a_time(out: Path):
    """Holds the model folder's run lock: a second run into it (to resume one still going on) is refused.

    Two runs would write their checkpoints over each other's, and the model would be whichever finished
    last. Under ``torchrun`` only the first process writes there, so only it takes the lock.
    """
    from medae.batch.lock import run_lock

    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    made = check_output_folder(out)  # made now, to hold the lock
    try:
        with run_lock(out):
            yield
    finally:
        remove_if_empty(made)  # a run refused before it wrote anything leaves no empty folder


@contextlib.contextmanager
def _resume_hint(cfg: dict):
    """On a stop, says how to go on: the steps since the last checkpoint are all that is lost."""
    from medae.errors import CancelledError

    try:
        yield
    except CancelledError:  # the first Ctrl-C: the state after the last whole step was written
        print(
            "medae: training stopped after saving its state. Run the same command again to go on from there.",
            file=sys.stderr,
        )
        raise KeyboardInterrupt from None
    except KeyboardInterrupt:
        print(
            "medae: training stopped. Run the same command again to resume from its last checkpoint (written every "
            f"{cfg['checkpoint_every']} steps).",
            file=sys.stderr,
        )
        raise


@contextlib.contextmanager
def _stop_after_step():
    """Yields an event that the first Ctrl-C or SIGTERM sets; the second stops at once.

    A training step interrupted halfway leaves nothing worth saving, and checkpoints are written every
    hundred steps; so the first signal lets the step finish and the run save its state then, keeping
    every step taken. Under ``torchrun`` every process would stop after a step of its own, out of step
    with the others, so there the signals keep their usual effect.
    """
    import signal
    import threading

    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread() or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield None
        return

    def stop(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print(
            "\nmedae: stopping after the current step and saving the training state (Ctrl-C again to stop at once).",
            file=sys.stderr,
        )

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
