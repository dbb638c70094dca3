"""The sample scans shipped in the repository's ``resources/samples`` folder."""

from __future__ import annotations

from pathlib import Path

from medae.errors import InputError

BRAIN = "brain_t1.nii.gz"
CT = "ct_chest_synthetic.nii.gz"


def samples_dir() -> Path:
    """The folder of sample scans (beside the package in a source checkout or bundle)."""
    return Path(__file__).resolve().parents[2] / "resources" / "samples"


def sample(name: str) -> Path:
    """The path of a sample scan.

    Raises:
        InputError: the sample is not there (an installation without the resources folder).
    """
    path = samples_dir() / name
    if not path.is_file():
        raise InputError(
            f"{path}: the sample scan is missing. Reinstall medae from a full copy of its repository "
            "(the resources/samples folder holds the samples), or open a scan of your own."
        )
    return path
