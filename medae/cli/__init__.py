"""The ``medae`` command line: ``main(argv=None)``, one module per subcommand.

Each subcommand module exposes ``register(subparsers)``; heavy imports (torch, MONAI, Qt) happen
inside the command's ``run``, so ``medae --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import warnings

from medae._version import __version__
from medae.errors import MedaeError

#: Exit statuses, as --help lists them: Ctrl+C, SIGTERM and a closed pipe as shells report a process the signal
#: ended (128 + SIGINT, SIGTERM, SIGPIPE; numbers, as Windows has no SIGPIPE).
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_BROKEN_PIPE = 141

# Order is the order shown in --help.
SUBCOMMANDS = (
    "info",
    "analyze",
    "batch",
    "compress",
    "decompress",
    "view",
    "demo",
    "train",
    "evaluate",
    "sample",
    "make_healthy",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="medae",
        description="Anomaly detection in MRI and CT volumes with 3D autoencoders trained on healthy scans.",
        # Scripts and schedulers act on these; the user's guide is not at hand where they are written.
        epilog=(
            f"exit status: 0 done; {EXIT_ERROR} an error, said in one line with what to do (batch: a series that "
            f"could not be analysed; one of another kind than the model's is refused, not an error); "
            f"{EXIT_INTERRUPTED} stopped by Ctrl+C; {EXIT_TERMINATED} stopped by SIGTERM; {EXIT_BROKEN_PIPE} the "
            "reader of the output closed it (| head)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"medae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"medae.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"medae.cli.{name}":
                continue  # a subcommand not built yet
            raise
        module.register(sub)
    for command in sub.choices.values():
        # Descriptions are the modules' docstrings; the terminal shows them without reStructuredText marks.
        if command.description:
            command.description = command.description.replace("``", "")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # while the parser and the subcommands are still being imported
        print("medae: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    _lenient_console()
    # The libraries' own warnings (an unknown character set, a repaired header) are not the reader's to act
    # on, and medae words what matters in its own warnings; on a console they read as faults.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(pydicom|highdicom|nibabel)(\.|$)")
    parser = build_parser()
    args = parser.parse_args(_dashed_paths(sys.argv[1:] if argv is None else list(argv), parser))
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        if getattr(args, "opens_viewer", False):  # Qt's idle loop runs no Python: a handler would never run
            return int(args.func(args) or 0)
        with _terminate_as_interrupt():
            return int(args.func(args) or 0)
    except MedaeError as exc:
        print(f"medae: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Terminated:
        print("medae: stopped by a termination signal", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("medae: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of the output went away (`medae batch ... | head`): not a fault of the files. Python
        # would complain again on exit while flushing, so the rest of the output goes nowhere.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        # A file system refusing a write the commands did not word themselves (a full disk, a file where a
        # folder should be, no permission): one line that names it, not a traceback.
        print(f"medae: error: {exc}. Check the path, its permissions and the free space.", file=sys.stderr)
        return EXIT_ERROR


def _lenient_console() -> None:
    """Console output that never fails on a file name.

    A name not valid in the file system's encoding (a Latin-1 name from an old CD, which Python holds as
    surrogates) prints as its own bytes, and a character the console cannot show prints escaped, instead
    of a UnicodeEncodeError ending the command.
    """
    import codecs

    def lenient(exc: UnicodeError):
        try:
            return codecs.lookup_error("surrogateescape")(exc)
        except UnicodeError:
            return codecs.backslashreplace_errors(exc)

    try:
        codecs.lookup_error("medae-lenient")
    except LookupError:
        codecs.register_error("medae-lenient", lenient)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="medae-lenient")
            except (ValueError, OSError):  # a stream already closed or detached: leave it
                pass


def _dashed_paths(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Existing files whose names start with a dash (``-v.nii.gz``), given where a path goes, as ``./-v.nii.gz``.

    argparse takes any word that starts with a dash for an option, so such a file could only be given as
    ``./-v.nii.gz``. A word is rewritten only when it names an existing file, is not a number, and is not
    the value of an option (``--threshold -1.5``, ``--series -T1`` stay as typed).
    """
    import os
    import re

    with_values = {
        option
        for sub in parser._subparsers._group_actions[0].choices.values()  # noqa: SLF001 - argparse has no API
        for action in sub._actions  # noqa: SLF001
        if action.nargs != 0
        for option in action.option_strings
    }
    out = []
    for i, word in enumerate(argv):
        value_of_option = i > 0 and argv[i - 1] in with_values
        number = re.fullmatch(r"-\d*\.?\d+(e[-+]?\d+)?", word, re.IGNORECASE)
        if word.startswith("-") and not word.startswith("--") and not (value_of_option or number):
            if os.path.isfile(word):
                word = os.path.join(".", word)
        out.append(word)
    return out


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler, a shutdown) raised where the program is, as Ctrl+C is.

    Python's default for SIGTERM ends the process on the spot: no ``finally`` runs, so a batch would leave
    neither its table nor a word on the terminal. As an interrupt, every command stops the way Ctrl+C stops it.
    """


@contextlib.contextmanager
def _terminate_as_interrupt():
    if threading.current_thread() is not threading.main_thread():  # signals can only be caught there
        yield
        return

    def stop(signum, frame):
        raise Terminated

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
