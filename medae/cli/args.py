"""What the subcommands share: argument types checked where they are typed, and finding and loading inputs."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


def finite_float(text: str) -> float:
    """A float that is a number (``nan`` and ``inf`` would pass ``float`` and break the run far later)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give a value such as 6 or 8.5")
    return value


def threshold_value(text: str) -> float:
    """A findings threshold: above 0 (heat is measured upwards from healthy) and within what float32 holds."""
    value = finite_float(text)
    if not 0 < value <= 1e30:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a threshold: give a number above 0 in the model's calibrated units (its default, "
            "shown in report.json, is about 9 z for the brain model; lower finds more)"
        )
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    return _whole_number(text, 1, "is not at least 1")


def seed_int(text: str) -> int:
    """A random seed: a whole number of at least 0."""
    return _whole_number(text, 0, "is negative; a seed is a whole number of at least 0")


def _whole_number(text: str, least: int, below: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} {below}")
    return value


def user_path(text: str) -> Path:
    """A path with a leading ``~`` expanded, as the shell does not expand it after ``--out=``.

    An empty one (``--out "$UNSET"``) is refused: it would mean the current folder without anyone saying so.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a folder or file name")
    return Path(text).expanduser()


def check_output_folder(out: Path, make: bool = True) -> list[Path]:
    """Raises ``OutputError`` when ``out`` is a file, or a folder that cannot be made or written to.

    Args:
        out: The output folder.
        make: Make it now (and check that it takes files); without, only a file in its place is refused, so
            that a command refused later for its other arguments leaves no empty folder behind.

    Returns:
        The folders made now, deepest first, for ``remove_if_empty`` once the command is over.
    """
    from medae.errors import OutputError

    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file, not a folder: give --out a folder (it is made when missing).")
    if not make:
        return []
    made = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{out}: the output folder cannot be made ({exc.strerror or exc}); choose a folder you may write to."
        ) from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: no permission to write in the output folder; choose a folder you may write to.")
    return made


def remove_if_empty(folders: list[Path]) -> None:
    """Removes the folders of ``check_output_folder`` that a command left empty (refused, failed or stopped).

    An empty folder left by a typo in the input's name reads as a run that wrote nothing. Only folders made by
    this command go, deepest first, and only while empty.
    """
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (results, or someone else's files), or gone: the ones above stay too
            return


def load_input(path: str, series: str | None = None, volume_index: int | None = None, progress=None):
    """The scan a command was given: a compressed study (``.mae``, any name) decoded, else read by the loader."""
    from medae.codec import is_compressed_study, read_study
    from medae.io import load

    if is_compressed_study(path):
        from medae.errors import InputError

        if volume_index is not None or (series and series != str(path)):
            raise InputError(
                f"{path}: a compressed study holds one 3D series; --series and --volume do not apply. Leave them out."
            )
        return read_study(path)
    return load(path, series=series, volume_index=volume_index, progress=progress)


def series_choice(path: str, series: str | None) -> str | None:
    """``--series`` as the loader takes it: a UID (or a file's path) as given, or the row number ``info`` shows.

    A number that is also a series' UID (some anonymisers write short ones) stays that UID.
    """
    if not series or not series.isdigit():
        return series
    from medae.io import scan

    try:
        infos = with_compressed_studies(path, scan)
    except Exception:  # noqa: BLE001 - the loader says what is wrong with the input, in its own words
        return series
    n = int(series)
    if any(s.uid == series for s in infos) or not 1 <= n <= len(infos):
        return series
    return infos[n - 1].uid


def with_compressed_studies(path: str, scan) -> list:
    """The series ``scan`` finds under ``path``: a compressed study itself, or a folder's series and studies."""
    from medae.batch.items import compressed_studies, study_info
    from medae.codec import is_compressed_study
    from medae.errors import InputError
    from medae.io.loader import existing_path

    folder = Path(path)
    if is_compressed_study(folder):
        return [study_info(folder)]
    existing_path(folder)  # a folder on its path that may not be opened: said, not a system error from is_dir
    if not folder.is_dir():
        return scan(path)
    broken: list = []
    studies = compressed_studies(folder, broken)
    try:
        infos = scan(path)
    except InputError as exc:
        if not studies:
            raise
        print(f"medae: warning: {exc}", file=sys.stderr)  # the folder's other files: said, not dropped
        infos = []
    for _where, why in broken:
        print(f"medae: warning: {why}", file=sys.stderr)
    return infos + studies
