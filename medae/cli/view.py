"""``medae view [PATH]``: open the desktop viewer, optionally on a scan (and analyse it with --analyze)."""

# The command line and the viewer never import each other: the viewer is found through its installed
# medae-gui entry point (or, in an uninstalled checkout, started as python -m medae.gui).

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from medae.errors import InputError, MedaeError


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``view`` subcommand."""
    p = sub.add_parser("view", help="open the desktop viewer", description=__doc__)
    p.add_argument("path", nargs="?", help="scan file (NIfTI, MGH, NRRD, MetaImage), DICOM folder or DICOMDIR to open")
    p.add_argument("--analyze", action="store_true", help="run the analysis as soon as the scan is open")
    p.set_defaults(func=run, opens_viewer=True)


def gui_argv(path: str | None, analyze: bool = False, model: str | None = None, device: str | None = None) -> list[str]:
    """The viewer's own arguments for a path and options."""
    argv = [str(Path(path).expanduser())] if path else []
    if model:
        argv += ["--model", str(model)]
    if device and device != "auto":
        argv += ["--device", device]
    return argv + (["--analyze"] if analyze else [])


def launch_viewer(argv: list[str]) -> int:
    """Runs the viewer with ``argv`` until its window closes; returns its exit status."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="gui_scripts") if ep.name == "medae-gui"]
    if found:
        try:
            gui_main = found[0].load()
        except ImportError as exc:
            raise MedaeError(
                f"the viewer cannot start: {exc}. Install the Qt libraries (see README: Quick start) "
                "or run `bash installer/setup.sh` again."
            ) from exc
        return int(gui_main(argv) or 0)
    return subprocess.call([sys.executable, "-m", "medae.gui", *argv])


def run(args: argparse.Namespace) -> int:
    """Opens the viewer."""
    from medae.viewer.screen import NO_DISPLAY, display_available

    if args.path and not Path(args.path).expanduser().exists():
        raise InputError(f"{args.path}: no such file or folder. Check the path.")
    if not display_available():  # Qt would abort with several lines of its own
        raise MedaeError(NO_DISPLAY)
    return launch_viewer(gui_argv(args.path, args.analyze))
