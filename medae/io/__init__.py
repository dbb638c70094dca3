"""Files <-> ``Volume``: NIfTI, DICOM series discovery and assembly, derived-object writers.

``load`` and ``scan`` are the entry points the CLI, the batch runner and the GUI share.
"""

from __future__ import annotations

from medae.io.loader import SeriesInfo, load, scan

__all__ = ["SeriesInfo", "load", "scan"]
