"""``medae sample``: draw new healthy-looking volumes from a variational model."""

from __future__ import annotations

import argparse

from medae.cli.args import check_output_folder, finite_float, positive_int, seed_int, user_path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``sample`` subcommand."""
    p = sub.add_parser("sample", help="sample new volumes from a variational model", description=__doc__)
    p.add_argument("--model", required=True, help="a VAE model folder")
    p.add_argument("--out", required=True, type=user_path, help="output folder")
    p.add_argument("--n", type=positive_int, default=4, help="how many volumes (default 4)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--temperature", type=finite_float, default=1.0, help="scales the prior's spread (default 1)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Writes ``sample_000.nii.gz`` ... on the model grid."""
    check_output_folder(args.out, make=False)  # a file in its place is said before any work
    from medae.io.nifti import save_nifti
    from medae.model import load_model
    from medae.model.sampling import sample_volumes

    model = load_model(args.model, device=args.device)
    for i, vol in enumerate(sample_volumes(model, args.n, args.seed, args.temperature)):
        path = save_nifti(vol, args.out / f"sample_{i:03d}.nii.gz")
        print(path)
    return 0
