"""Writes a folder of generated healthy scans (NIfTI) with a manifest and the template's notice."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from medae.atomic import write_text
from medae.errors import OutputError
from medae.io.nifti import save_nifti
from medae.progress import ProgressFn, check_cancel, report
from medae.training.healthy import generate_healthy, head_distance
from medae.training.template import TEMPLATE_NAME, TEMPLATE_NOTICE, load_template

MANIFEST = "manifest.json"


def write_healthy_set(
    out: Path,
    n: int,
    seed: int,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    variation: tuple[float, float] = (1.0, 1.0),
) -> list[Path]:
    """Generates ``n`` healthy scans with seeds ``seed .. seed+n-1`` into ``out``; existing files are kept.

    Resumable: a scan already on disk is not generated again. A folder holding scans of another set (other
    seeds, or another variation) is refused before anything is written: the two sets would mix there.

    Args:
        out: Output folder.
        n: Number of scans.
        seed: Seed of the first scan.
        progress: Progress callback.
        cancel: Set to stop between scans.
        variation: Range of the generator's variation factor; each scan draws its own from its seed, so a
            scan is the same whatever else is in the folder. (1, 1) is the generator's standard variation.

    Raises:
        OutputError: ``out`` holds scans this set would not make.
    """
    manifest = out / MANIFEST
    listed = _read_manifest(manifest)
    if not manifest.exists():
        _check_no_other_files(out)
    _check_same_set(out, listed, n, seed, variation)
    out.mkdir(parents=True, exist_ok=True)
    template = load_template()
    dist = head_distance(template)
    known = {p["file"] for p in listed["scans"]}
    paths = []
    for i in range(n):
        check_cancel(cancel)
        s = seed + i
        path = out / f"healthy_{s:05d}.nii.gz"
        if not path.exists():
            v = scan_variation(s, variation)
            scan = generate_healthy(template, s, dist, variation=v)
            if path.name not in known:  # listed before the scan is written: a file there is always listed
                listed["scans"].append({"file": path.name, "variation": round(v, 4), **scan.params})
                known.add(path.name)
                _write_manifest(manifest, listed)
            save_nifti(scan.volume, path)
        paths.append(path)
        report(progress, (i + 1) / n, f"scan {i + 1}/{n}")
    _write_manifest(manifest, listed)
    write_text(out / "NOTICE.txt", f"Derived from the {TEMPLATE_NAME}.\n\n{TEMPLATE_NOTICE}\n")
    return paths


def scan_variation(seed: int, variation: tuple[float, float]) -> float:
    """The variation factor the scan of ``seed`` draws from the range ``variation``."""
    import numpy as np

    lo, hi = variation
    return lo if hi <= lo else float(np.random.default_rng([seed, 7]).uniform(lo, hi))


def _read_manifest(manifest: Path) -> dict:
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"scans": []}
    except (OSError, ValueError) as exc:
        raise OutputError(
            f"{manifest}: cannot read the list of the scans made there ({exc}). Choose a new --out folder."
        ) from exc
    if not isinstance(listed, dict) or not isinstance(listed.get("scans"), list):
        raise OutputError(f"{manifest} is not a list of healthy scans made by medae. Choose a new --out folder.")
    return listed


def _write_manifest(manifest: Path, listed: dict) -> None:
    listed["source"] = TEMPLATE_NAME
    listed["note"] = "Synthetic healthy T1 scans: anatomical, head, scanner and acquisition variation of one template."
    write_text(manifest, json.dumps(listed, indent=1) + "\n")


def _check_no_other_files(out: Path) -> None:
    """Refuses a folder of other files: the set's manifest and notice would replace files of the same names.

    Scans of a run stopped before it wrote its manifest (as runs did before each scan was listed) are no
    other files.
    """
    try:
        entries = sorted(e for e in os.listdir(out) if not e.startswith("."))
    except OSError:
        return  # not there yet (made now), or a file, which the command said
    others = [e for e in entries if not (e.startswith("healthy_") and e.endswith(".nii.gz"))]
    if others:
        raise OutputError(
            f"{out} holds other files ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}) and no set of "
            "healthy scans: they would mix with the set, and files of its names be replaced. Choose a new --out folder."
        )


def _check_same_set(out: Path, listed: dict, n: int, seed: int, variation: tuple[float, float]) -> None:
    """Refuses a folder whose listed scans are not scans of this set (another seed range or variation).

    They were kept in silence: a folder made with ``--variation 1 1`` and made again with ``0.8 1.3`` held
    the old scans under the new command, and a training on it learnt the narrower variation.
    """
    others = []
    for entry in listed["scans"]:
        s = entry.get("seed") if isinstance(entry, dict) else None
        if not isinstance(s, int) or not seed <= s < seed + n:
            others.append(entry)
        elif round(scan_variation(s, variation), 4) != entry.get("variation", 1.0):
            others.append(entry)
    if not others:
        return
    seeds = sorted(e["seed"] for e in listed["scans"] if isinstance(e, dict) and isinstance(e.get("seed"), int))
    made = f"seeds {seeds[0]}-{seeds[-1]}" if seeds else "other seeds"
    lo, hi = variation
    count = len(listed["scans"])
    raise OutputError(
        f"{out} holds {count} healthy scan{'s' * (count != 1)} of another set ({made}; e.g. "
        f"{others[0].get('file', '?') if isinstance(others[0], dict) else '?'} is not what --seed {seed} --n {n} "
        f"--variation {lo:g} {hi:g} makes): the two sets would mix there. Choose a new --out folder, remove that "
        "folder first, or give the options it was made with to add to it."
    )
