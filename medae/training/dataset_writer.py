"""Writes a folder of generated healthy scans (NIfTI) with a manifest and the template's notice."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from medae.atomic import write_text
from medae.io.nifti import save_nifti
from medae.progress import ProgressFn, check_cancel, report
from medae.training.healthy import generate_healthy, head_distance
from medae.training.template import TEMPLATE_NAME, TEMPLATE_NOTICE, load_template


def write_healthy_set(
    out: Path,
    n: int,
    seed: int,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    variation: tuple[float, float] = (1.0, 1.0),
) -> list[Path]:
    """Generates ``n`` healthy scans with seeds ``seed .. seed+n-1`` into ``out``; existing files are kept.

    Resumable: a scan already on disk is not generated again.

    Args:
        out: Output folder.
        n: Number of scans.
        seed: Seed of the first scan.
        progress: Progress callback.
        cancel: Set to stop between scans.
        variation: Range of the generator's variation factor; each scan draws its own from its seed, so a
            scan is the same whatever else is in the folder. (1, 1) is the generator's standard variation.
    """
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    template = load_template()
    dist = head_distance(template)
    paths, params = [], []
    for i in range(n):
        check_cancel(cancel)
        s = seed + i
        path = out / f"healthy_{s:05d}.nii.gz"
        if not path.exists():
            lo, hi = variation
            v = lo if hi <= lo else float(np.random.default_rng([s, 7]).uniform(lo, hi))
            scan = generate_healthy(template, s, dist, variation=v)
            save_nifti(scan.volume, path)
            params.append({"file": path.name, "variation": round(v, 4), **scan.params})
        paths.append(path)
        report(progress, (i + 1) / n, f"scan {i + 1}/{n}")
    manifest = out / "manifest.json"
    old = json.loads(manifest.read_text()) if manifest.exists() else {"scans": []}
    known = {p["file"] for p in old["scans"]}
    old["scans"] += [p for p in params if p["file"] not in known]
    old["source"] = TEMPLATE_NAME
    old["note"] = "Synthetic healthy T1 scans: anatomical, head, scanner and acquisition variation of one template."
    write_text(manifest, json.dumps(old, indent=1) + "\n")
    write_text(out / "NOTICE.txt", f"Derived from the {TEMPLATE_NAME}.\n\n{TEMPLATE_NOTICE}\n")
    return paths
