"""Accuracy and time of the alignment to the reference, on generated heads whose pose is known.

Usage: python benchmarks/bench_registration.py [--n 20] [--seed 910000]

Each head comes from the healthy generator (the ``[train]`` extra), which records the rotation, shift and
scaling it applied; the true reference -> input transform follows from them. The error is the mean
distance, over 27 points spread through the brain, between where the found and the true transform put
them. The truth ignores the generator's own smooth deformation (up to about 2.5 mm), so about 2 mm is
the floor. Harder variants of the first heads: slices 5x thicker, 35% of the field of view cut away, the
lower half cut away, and the head tilted a further 40 degrees (chin to chest, turned or rolled, in turn).

Each scan is aligned twice in the same run: as the pipeline does (the whole-head fit refined on the
reference brain and the default card's margin around it, ``space.brain_refine_mm``, and for a scan that
holds part of the head the fit measured within it when that matches better, ``align_part_of_head``) and
with the whole-head fit alone (the baseline). For the scans as generated, the Dice overlap of the aligned
reference brain with the generator's own brain map measures what the analysis depends on, the
generator's deformation included.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def true_transform(params: dict) -> np.ndarray:
    """Reference (template) world -> input world, as the generator posed the head."""
    from medae import geometry

    rot = geometry.rotation_matrix(tuple(params["angles_deg"]))
    centre = np.array([0.0, -18.0, 10.0])
    out = np.eye(4)
    out[:3, :3] = rot @ np.diag(params["scale"])
    out[:3, 3] = centre + np.array(params["shift_mm"]) - out[:3, :3] @ centre
    return out


TILTS = ((40.0, 0.0, 0.0), (0.0, 0.0, -40.0), (0.0, 40.0, 0.0), (-30.0, 20.0, 25.0))


def variants(array: np.ndarray, affine: np.ndarray, i: int):
    """(name, array, affine, motion): the scan, 5x thicker along its last axis, 35% and 50% of that axis cut
    away, and the whole head turned about the brain centre (``motion``, a world transform the truth must follow).
    """
    from medae import geometry

    yield "as generated", array, affine, np.eye(4)
    n = array.shape[2] // 5
    thick = array[:, :, : n * 5].reshape(array.shape[0], array.shape[1], n, 5).mean(-1)
    t_aff = affine.copy()
    t_aff[:3, 2] *= 5
    t_aff[:3, 3] = affine[:3, :3] @ [0, 0, 2] + affine[:3, 3]
    yield "slices 5x thicker", thick, t_aff, np.eye(4)
    k = int(array.shape[2] * 0.35)
    shift = np.eye(4)
    shift[2, 3] = k
    yield "35% of the FOV cut", array[:, :, k:], affine @ shift, np.eye(4)
    k = array.shape[2] // 2
    shift[2, 3] = k
    yield "upper half only", array[:, :, k:], affine @ shift, np.eye(4)
    centre = np.array([0.0, -18.0, 10.0])
    motion = np.eye(4)
    motion[:3, :3] = geometry.rotation_matrix(TILTS[i % len(TILTS)])
    motion[:3, 3] = centre - motion[:3, :3] @ centre
    yield "tilted 30-40 degrees more", array, motion @ affine, motion


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20, help="generated heads")
    ap.add_argument("--hard", type=int, default=10, help="of which this many also in the harder variants")
    ap.add_argument("--seed", type=int, default=910000)
    args = ap.parse_args()

    from medae.model.card import ModelCard
    from medae.model.preprocess import align_part_of_head, resample_support
    from medae.model.registration import register_to_reference
    from medae.training.config import load_config
    from medae.training.data import card_affine, prepare_reference
    from medae.training.healthy import generate_healthy, head_distance
    from medae.training.template import load_template
    from medae.volume import Volume

    cfg = load_config()
    ref, ref_mask = prepare_reference(cfg)
    ref_affine = card_affine(cfg)
    template = load_template()
    dist = head_distance(template)
    pts = np.array([[x, y, z, 1.0] for x in (-60, 0, 60) for y in (-95, -18, 60) for z in (-40, 10, 70)]).T
    errors: dict[tuple[str, str], list[float]] = {}
    times: dict[str, list[float]] = {}
    dice: dict[str, list[float]] = {}
    margin = float(cfg["space"]["brain_refine_mm"])
    fits = {
        "pipeline (brain stage)": ref_mask,
        "brain stage, no part-of-head check": ref_mask,
        "whole head only (baseline)": None,
    }
    card = ModelCard(
        id="bench", name="bench", jobs=["anomaly"], modality="MR", body_part="BRAIN", architecture={},
        space=dict(cfg["space"], affine=ref_affine.tolist()), intensity=cfg["intensity"], mask={},
    )  # fmt: skip
    for i in range(args.n):
        scan = generate_healthy(template, seed=args.seed + i, dist=dist, variation=1.0)
        truth = true_transform(scan.params)
        for name, arr, aff, motion in variants(scan.volume.array, scan.volume.affine, i):
            if name != "as generated" and i >= args.hard:
                continue
            for fit, mask in fits.items():
                t = time.perf_counter()
                stage = {} if mask is None else {"reference_mask": mask, "brain_margin_mm": margin}
                found = register_to_reference(arr, aff, ref, ref_affine, **stage)
                if fit.startswith("pipeline"):  # a scan holding part of the head is also fitted within it
                    vol = Volume(arr, aff, "MR")
                    found = align_part_of_head(vol, arr, card, ref, ref_mask, found, "affine", None)
                err = np.linalg.norm((found.ref_to_input - motion @ truth) @ pts, axis=0).mean()
                errors.setdefault((name, fit), []).append(float(err))
                if name == "as generated":
                    times.setdefault(fit, []).append(time.perf_counter() - t)
                    # Reference brain on the scan's grid (model voxel -> scan voxel, inverted).
                    m2i = np.linalg.inv(aff) @ found.ref_to_input @ ref_affine
                    brain = resample_support(ref_mask.astype(np.float32), np.linalg.inv(m2i), arr.shape) > 0.5
                    true_brain = scan.brain > 0.5
                    overlap = 2 * (brain & true_brain).sum() / (brain.sum() + true_brain.sum())
                    dice.setdefault(fit, []).append(float(overlap))
    print("| scans | alignment | n | median error mm | max error mm | over 5 mm |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (name, fit), errs in errors.items():
        e = np.array(errs)
        print(f"| {name} | {fit} | {len(e)} | {np.median(e):.2f} | {e.max():.2f} | {int((e > 5).sum())} |")
    for fit in fits:
        d = np.array(dice[fit])
        print(
            f"{fit}, as generated: brain Dice mean {d.mean():.3f}, min {d.min():.3f}; "
            f"time median {statistics.median(times[fit]):.2f} s over {len(d)} scans"
        )


if __name__ == "__main__":
    main()
