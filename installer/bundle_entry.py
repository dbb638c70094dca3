"""Entry point of the PyInstaller bundle: the ``medae`` command line, and the viewer.

The shipped model and the samples are bundled at the same place relative to the package as in a
source checkout (``models/`` and ``resources/`` beside ``medae/``), so no path needs changing. A frozen
program has no ``python -m``, so the two ways the command line starts the viewer (``medae view`` and a
child process ``<executable> -m medae.gui ...``) are routed to the viewer here.
"""

import sys


def _main() -> int:
    args = sys.argv[1:]
    if args[:2] == ["-m", "medae.gui"]:
        from medae.gui.app import main as gui_main

        return int(gui_main(args[2:]) or 0)
    if args[:1] == ["view"] and not {"-h", "--help"} & set(args):
        from medae.gui.app import main as gui_main

        return int(gui_main(args[1:]) or 0)
    from medae.cli import main

    return main(args)


sys.exit(_main())
