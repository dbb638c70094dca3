"""What a JSON sidecar beside a NIfTI file says about the acquisition (BIDS, and dcm2niix's exports).

dcm2niix writes the DICOM header's acquisition facts into ``scan.json`` beside ``scan.nii.gz``; BIDS keeps
them there too. Only the facts the analysis checks are taken; a missing, unreadable or odd sidecar is
simply none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: A sidecar larger than this is not an acquisition's facts.
_MAX_BYTES = 1 << 20


def sidecar_path(path: str | os.PathLike) -> Path:
    """``scan.json`` for ``scan.nii.gz`` or ``scan.nii``."""
    p = Path(path)
    name = p.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return p.with_name(name[: -len(suffix)] + ".json")
    return p.with_suffix(".json")


def sidecar_facts(path: str | os.PathLike) -> dict[str, str]:
    """``contrast_agent`` and ``sidecar_description`` from the sidecar (ContrastBolusAgent, SeriesDescription)."""
    side = sidecar_path(path)
    try:
        if not side.is_file() or side.stat().st_size > _MAX_BYTES:
            return {}
        data = json.loads(side.read_text(encoding="utf-8-sig", errors="replace"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    facts = {}
    for key, name in (("ContrastBolusAgent", "contrast_agent"), ("SeriesDescription", "sidecar_description")):
        value = data.get(key)
        if isinstance(value, str) and value.strip():  # true, false or NaN name no agent
            facts[name] = value.strip()[:200]
    return facts
