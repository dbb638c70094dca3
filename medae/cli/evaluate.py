"""``medae evaluate``: benchmark a model on held-out synthetic healthy and lesion scans against simple baselines.

Writes ``OUT/evaluation.json`` and ``OUT/evaluation.md`` and records the summary in the model card's
``evaluation`` section (``--no-card`` leaves the card alone).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medae.cli.args import check_output_folder, seed_int, user_path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``evaluate`` subcommand."""
    p = sub.add_parser("evaluate", help="benchmark a model on synthetic lesions against baselines", description=__doc__)
    p.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    p.add_argument("--out", required=True, type=user_path, help="folder for evaluation.json and evaluation.md")
    p.add_argument("--n-healthy", type=int, default=12, help="healthy test scans (default 12)")
    p.add_argument("--n-lesion", type=int, default=24, help="lesion test scans (default 24)")
    p.add_argument(
        "--seed",
        type=seed_int,
        default=500000,
        help="seed of the first test scan (default 500000; must not overlap the training seeds)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates for 95%% intervals (default 1000)")
    p.add_argument(
        "--train-data",
        type=Path,
        help="the model's training scans, for the baselines (default: the folder named in the card)",
    )
    p.add_argument("--markdown", type=Path, help="also write the Markdown report here (e.g. docs/evaluation.md)")
    p.add_argument("--no-card", action="store_true", help="do not write the results into the model card")
    p.add_argument(
        "--save-volumes",
        action="store_true",
        help="also write each test scan, its ground truth and the model's heatmap to OUT/cases",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark and writes the outputs."""
    check_output_folder(args.out, make=False)  # a file in its place is said before any work
    from medae.analysis import analyze
    from medae.analysis.checks import check_contrast, check_input
    from medae.cli.progressbar import ProgressBar
    from medae.model import load_model
    from medae.training.evaluate import EvaluationSettings, evaluate
    from medae.training.evaluation_report import build_report, card_section, update_card, write_outputs
    from medae.training.evaluation_summary import summarise

    settings = EvaluationSettings(
        n_healthy=args.n_healthy, n_lesion=args.n_lesion, seed=args.seed, n_boot=args.bootstrap
    )
    model = load_model(args.model, device=args.device)
    command = (
        "medae " + " ".join(sys.argv[1:])
        if sys.argv and "medae" in Path(sys.argv[0]).name
        else "medae evaluate " + " ".join(_argv_from(args))
    )
    with ProgressBar("evaluate", every=30) as bar:
        records, run_info = evaluate(
            model,
            settings,
            analyze,
            train_data=args.train_data,
            save_dir=args.out / "cases" if args.save_volumes else None,
            progress=bar,
            # The scans medae train leaves out (a label map, a T2) are left out of the baselines' fit too.
            screens={"screen": check_input, "screen_contrast": check_contrast},
        )
    summary = summarise(records, n_boot=settings.n_boot, seed=settings.seed)
    report = build_report(records, run_info, settings, summary, model, command)
    paths = write_outputs(report, args.out, args.markdown)
    if not args.no_card:
        update_card(model.folder, card_section(report), model.card.sha256)
        paths.append(model.folder / "card.json")
    for t in report["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        print(f"{'met    ' if t['met'] else 'NOT met'}  {t['target']}: {value}")
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def _argv_from(args: argparse.Namespace) -> list[str]:
    """The command line rebuilt from parsed arguments (when run through ``main(argv)``)."""
    out = []
    if args.model is not None:
        out += ["--model", str(args.model)]
    out += [
        "--out",
        str(args.out),
        "--n-healthy",
        str(args.n_healthy),
        "--n-lesion",
        str(args.n_lesion),
        "--seed",
        str(args.seed),
        "--bootstrap",
        str(args.bootstrap),
    ]
    if args.train_data is not None:
        out += ["--train-data", str(args.train_data)]
    if args.markdown is not None:
        out += ["--markdown", str(args.markdown)]
    if args.no_card:
        out.append("--no-card")
    if args.save_volumes:
        out.append("--save-volumes")
    if args.device != "auto":
        out += ["--device", args.device]
    return out
