"""``medae-gui [PATH]``: starts the viewer.

Only Qt and numpy load here; torch and MONAI load when the first analysis runs, so the window
appears fast.
"""

from __future__ import annotations

import argparse
import sys

from medae._version import __version__


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options of the viewer."""
    p = argparse.ArgumentParser(prog="medae-gui", description="The medae viewer.")
    p.add_argument("path", nargs="?", help="scan file (NIfTI, MGH, NRRD, MetaImage), DICOM folder or DICOMDIR to open")
    p.add_argument("--analyze", action="store_true", help="run the analysis as soon as the scan is open")
    p.add_argument("--model", default=None, help="model folder for this session (default: preferences)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps for this session (default: preferences)")
    p.add_argument("--version", action="version", version=f"medae {__version__}")
    return p.parse_args(argv)


def create_window(path: str | None = None, analyze: bool = False, model: str | None = None, device: str | None = None):
    """Creates the application (if needed) and a shown main window; opens ``path`` when given.

    Args:
        path: Scan to open.
        analyze: Start the analysis once the scan is open.
        model: Model folder for this session only (preferences are left as they are).
        device: Device for this session only.
    """
    from PySide6.QtWidgets import QApplication

    from medae.gui.errors import install_excepthook, setup_logging
    from medae.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("medae")
    app.setOrganizationName("medae")
    app.setApplicationVersion(__version__)
    setup_logging()
    install_excepthook()
    window = MainWindow()
    if model:
        window.prefs.model = str(model)
    if device:
        window.prefs.device = device
    window.show()
    if path:
        job = window.open_path(path)
        if analyze:
            _analyze_when_loaded(window, job)
    return app, window


def _analyze_when_loaded(window, job) -> None:
    """Starts the analysis once the scan that ``job`` opens is on screen."""

    def once() -> None:
        window.session.image_changed.disconnect(once)
        window.start_analysis()

    window.session.image_changed.connect(once)


def main(argv: list[str] | None = None) -> int:
    """Runs the viewer until its window closes; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from medae.viewer.screen import NO_DISPLAY, display_available

    if not display_available():  # Qt would abort with several lines of its own (medae-gui from a console)
        print(f"medae-gui: error: {NO_DISPLAY}", file=sys.stderr)
        return 2
    app, _window = create_window(args.path, args.analyze, args.model, args.device)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
