"""``medae demo``: the bundled sample scan, analysed with the shipped model.

With a display it opens the viewer on the sample and starts the analysis. Without one (Linux with
neither DISPLAY nor WAYLAND_DISPLAY, and QT_QPA_PLATFORM unset) or with ``--headless`` it says so and
runs the same analysis headless, writing the heatmap, the report and a summary picture (the overlay
rendered without Qt) to ``--out``. So the same command works on a desktop and on a server.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from pathlib import Path

from medae.cli.args import check_output_folder, remove_if_empty, user_path
from medae.viewer.screen import display_available


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="analyse the bundled sample scan (viewer, or headless)", description=__doc__)
    p.add_argument(
        "--out", default="medae-demo", type=user_path, help="output folder of the headless run (default ./medae-demo)"
    )
    p.add_argument("--headless", action="store_true", help="do not open the viewer even if a display is available")
    p.add_argument(
        "--sample",
        choices=("brain", "ct"),
        default="brain",
        help="which bundled scan (default brain; no CT model ships, so the CT sample only opens in the viewer)",
    )
    p.add_argument("--scan", default=None, help="run the demo on this scan instead of the bundled sample")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    # The viewer runs in a child process, so this one handles Ctrl+C and SIGTERM like every other command.
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Opens the viewer on the sample, or runs headless."""
    from medae.viewer.samples import BRAIN, CT, sample

    path = Path(args.scan) if args.scan else sample(BRAIN if args.sample == "brain" else CT)
    if not path.exists():
        from medae.errors import InputError

        raise InputError(f"{path}: no such file or folder. Check the path.")
    # No CT model ships: the CT sample shows the viewer's CT handling (HU windows, presets), not an analysis.
    analysable = args.scan or args.sample == "brain" or args.model
    if not analysable and (args.headless or not display_available()):
        from medae.errors import InputError

        raise InputError(
            "no CT model ships with medae, so the CT sample cannot be analysed headless. Open it in the viewer "
            f"(medae view {path}), or pass --model with a CT model."
        )
    if not args.headless and display_available():
        from medae.cli.view import gui_argv

        if not analysable:
            print("medae demo: no CT model ships with medae, so the CT sample opens without an analysis.")
        # A child process, because Qt aborts (uncatchably) when it cannot reach the display.
        argv = gui_argv(str(path), analyze=bool(analysable), model=args.model, device=args.device)
        viewer = subprocess.Popen([sys.executable, "-m", "medae.gui", *argv])
        try:
            code = viewer.wait()
        except KeyboardInterrupt:  # Ctrl+C reaches the viewer too; a SIGTERM only this process: pass it on
            viewer.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                viewer.wait(timeout=10)
            raise
        if code == 0:
            return 0
        print(f"medae demo: the viewer could not start (exit status {code}), running headless instead.")
    elif not args.headless:
        print("medae demo: no display found (DISPLAY and WAYLAND_DISPLAY are unset), running headless.")
    # Made and checked before the analysis: the default, ./medae-demo, is in whatever folder the demo was started
    # from (the install folder, /), where a new user may not write.
    made = check_output_folder(Path(args.out))
    try:
        run_headless(path, Path(args.out), model=args.model, device=args.device)
    finally:
        remove_if_empty(made)
    return 0


def run_headless(path: Path, out: Path, model: str | None = None, device: str = "auto") -> dict:
    """Analyses ``path`` and writes heatmap, report and ``overlay.png`` to ``out``.

    Returns:
        Paths written, by name.
    """
    from medae.analysis import analyze, write_outputs
    from medae.analysis.outputs import claim_outputs
    from medae.io import load
    from medae.model import load_model
    from medae.viewer.figure import save_summary
    from medae.viewer.session import ViewerSession

    volume = load(path)  # a folder with several series raises SeriesSelectionError, which lists them
    loaded = load_model(model, device=device)
    print(f"medae demo: {Path(path).name} ({volume.describe()}), model {loaded.card.id} on {loaded.device_name}")
    with _progress("analysing") as bar:
        result = analyze(volume, loaded, progress=bar)
    out.mkdir(parents=True, exist_ok=True)
    # A picture of the user's called overlay.png (or maps of theirs) is refused, never replaced.
    claim_outputs(out, ("heatmap.nii.gz", "findings.nii.gz", "overlay.png"))
    session = ViewerSession()
    session.open(volume)
    session.set_result(result)
    if session.findings:
        session.go_to_finding(0)
    title = f"medae - {Path(path).name} - score {result.score:.3g} - model {result.model_id} ({result.device})"
    png = save_summary(session, out / "overlay.png", title)
    written = write_outputs(result, out, extra_files={"overlay": png})
    print(
        f"score {result.score:.3g}; {len(result.findings)} finding(s); threshold {result.threshold:.3g} {result.units}"
    )
    for w in session.warnings:
        print(f"warning: {w}")
    files = {"overlay": png}
    if isinstance(written, dict):
        files.update({k: Path(v) for k, v in written.items()})
    for name, p in files.items():
        print(f"wrote {name}: {p}")
    return files


def _progress(label: str):
    try:
        from medae.cli.progressbar import ProgressBar
    except ImportError:  # the shared bar is optional here; a bare context is enough
        import contextlib

        return contextlib.nullcontext(None)
    return ProgressBar(label)
