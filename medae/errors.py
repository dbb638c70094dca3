"""The exception tree. Every message says what is wrong and what the user can do about it.

The GUI shows these in a dialog, the CLI prints one line and exits non-zero, the batch records them
and goes on. Anything that is not a ``MedaeError`` is a bug in medae.
"""

from __future__ import annotations


class MedaeError(Exception):
    """Base class of every error medae raises on purpose."""


class InputError(MedaeError):
    """The input file or folder cannot be read as a scan."""


class UnsupportedInputError(InputError):
    """The input is readable but is not something medae can analyse (not an image, wrong SOP class)."""


class MissingCodecError(InputError):
    """Compressed pixel data whose decoder is not installed."""


class GeometryError(InputError):
    """Slices that do not form a regular 3D grid (missing, duplicated, tilted, inconsistent)."""


class SeriesSelectionError(InputError):
    """A folder holds several series and the caller did not say which one to use."""


class VolumeSelectionError(InputError):
    """A 4D file holds several volumes and the caller did not say which one to use."""

    def __init__(self, message: str, volumes: int) -> None:
        super().__init__(message)
        self.volumes = volumes


class ModelError(MedaeError):
    """The model folder is missing, incomplete, corrupt or not safe to load."""


class ModelMismatchError(MedaeError):
    """The scan cannot be meaningfully analysed with this model (e.g. chest CT given to a brain MRI model).

    Args:
        message: What is wrong and what to do.
        forceable: Whether ``force`` (``--force``, Analyze anyway) runs the analysis all the same; False when
            it cannot run at all (too few slices to align).
        problem: What is wrong alone, without the analysis's advice (``--model``, ``--force``): the training
            names it for a scan it leaves out.
    """

    def __init__(self, message: str = "", forceable: bool = True, problem: str | None = None) -> None:
        super().__init__(message)
        self.forceable = forceable
        self.problem = problem


class OutputError(MedaeError):
    """An output file could not be written."""


class PartialOutputError(OutputError):
    """An optional output (a DICOM export) failed; the others, report included, were written.

    Attributes:
        written: Name -> path of what was written.
    """

    def __init__(self, message: str, written: dict) -> None:
        super().__init__(message)
        self.written = written


class CancelledError(MedaeError):
    """The user cancelled a long operation."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)
