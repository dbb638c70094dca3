"""Model folders: ``weights.safetensors`` + ``card.json`` (+ ``reference.nii.gz``), loaded safely.

Only safetensors is accepted (no pickle); the weights' sha256 must match the card. The two files are
written as a pair: the new weights first under ``PENDING``, then the card naming them, then the weights
renamed into place. A save stopped between the last two steps is finished on the next load (the pending
weights are the ones the card names); stopped before, it leaves the previous pair as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from medae.atomic import write_bytes, write_text
from medae.errors import ModelError, OutputError
from medae.model.card import ModelCard

WEIGHTS = "weights.safetensors"
CARD = "card.json"
#: New weights being saved, until the card naming them is written (then they are renamed to ``WEIGHTS``).
PENDING = "weights.pending.safetensors"
REFERENCE = "reference.nii.gz"
DEFAULT_MODEL = "brain-t1-dae"
CODEC_MODEL = "brain-t1-codec"


def default_model_dir() -> Path:
    """The shipped default model: ``$MEDAE_MODEL`` if set, else ``models/brain-t1-dae`` beside the package."""
    env = os.environ.get("MEDAE_MODEL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL


def default_codec_dir() -> Path:
    """The shipped model for compressed studies' latents: ``models/brain-t1-codec`` beside the package."""
    return Path(__file__).resolve().parents[2] / "models" / CODEC_MODEL


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_model_dir(path: str | os.PathLike | None) -> Path:
    """Checks that a model folder is complete; None means the default model."""
    # `--model=~/models/t1` reaches here unexpanded (the shell expands a ~ only at the start of a word).
    folder = Path(path).expanduser() if path is not None else default_model_dir()
    if folder.is_file() and folder.name == CARD:
        folder = folder.parent
    if not folder.is_dir():
        raise ModelError(
            f"{folder}: no model folder there. Choose a folder holding {CARD} and {WEIGHTS} (--model on the"
            " command line, Model folder in the viewer's File > Preferences; the default model ships in models/)."
        )
    finish_interrupted_save(folder)
    for name in (CARD, WEIGHTS):
        if not (folder / name).is_file():
            others = sorted(p.name for p in folder.iterdir())
            hint = (
                " Pickled weights (.pt/.pth/.ckpt) are refused: export to safetensors."
                if any(n.endswith((".pt", ".pth", ".ckpt", ".bin")) for n in others)
                else ""
            )
            raise ModelError(
                f"{folder}: the model folder lacks {name}.{hint} Choose a folder holding {CARD} and {WEIGHTS} (--model "
                "on the command line, Model folder in the viewer's File > Preferences; empty for the shipped model)."
            )
    return folder


def read_tensors(folder: Path, card: ModelCard) -> dict[str, np.ndarray]:
    """Verifies the weights' hash and reads all tensors as numpy arrays."""
    from safetensors.numpy import load_file

    weights = folder / WEIGHTS
    if not card.sha256:
        raise ModelError(f"{folder / CARD}: the card has no sha256 of the weights; the model cannot be verified.")
    if sha256_file(weights) != card.sha256:
        # A training run stopped before it wrote its pair leaves this too (its card kept, or its weights
        # never renamed where the folder may not be written): that run can finish it.
        remedy = (
            "If its training was stopped, run the same `medae train` command again; otherwise restore the model folder."
            if (folder / "train_state").is_dir()
            else "Restore the model folder from the release (or train it again)."
        )
        raise ModelError(
            f"{weights}: the weights do not match the card's sha256 ({CARD} describes other weights, or the file "
            f"changed or is corrupt), so the model cannot be trusted. {remedy}"
        )
    try:
        return load_file(str(weights))
    except Exception as exc:
        raise ModelError(f"{weights}: not a valid safetensors file ({exc}). Restore the model folder.") from exc


def finish_interrupted_save(folder: Path) -> None:
    """Renames weights left pending by a save stopped after its card was written, when the card names them.

    Pending weights the card does not name are from a save stopped before its card: the pair in place is
    the previous one, whole, and they are left for the next save to replace.
    """
    pending = folder / PENDING
    if not pending.is_file():
        return
    try:
        named = json.loads((folder / CARD).read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return  # no card (or a damaged one) to finish with: loading says so
    if not named or sha256_file(pending) != named:
        return
    try:
        os.replace(pending, folder / WEIGHTS)
    except FileNotFoundError:
        return  # another process (the save itself, or a load) put them in place first
    except OSError as exc:
        raise ModelError(
            f"{folder}: saving this model was stopped before its weights were put in place ({PENDING} holds the "
            f"weights {CARD} names) and the folder cannot be written to finish it ({exc.strerror or exc}). Rename "
            f"{PENDING} to {WEIGHTS} there, or copy the folder somewhere you may write and load it from there."
        ) from exc


def save_model_folder(folder: Path, card: ModelCard, tensors: dict[str, np.ndarray]) -> Path:
    """Writes the weights and the card recording their hash as a pair (see the module's note).

    A kill at any moment leaves the previous pair, or the new one once the next load finishes the rename.
    """
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    pending = folder / PENDING
    write_bytes(pending, safetensors_bytes(arrays, {"format": "medae", "model": card.id}))
    card.sha256 = sha256_file(pending)
    write_text(folder / CARD, card.to_json())
    try:
        os.replace(pending, folder / WEIGHTS)
    except OSError as exc:
        if (folder / WEIGHTS).is_file() and sha256_file(folder / WEIGHTS) == card.sha256:
            return folder  # a model loaded meanwhile finished the save
        raise OutputError(
            f"{folder / WEIGHTS}: cannot put the new weights in place ({exc.strerror or exc}). The card names "
            f"them as {PENDING}: make the folder writable and load the model, which finishes the save."
        ) from exc
    return folder


def safetensors_bytes(arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A safetensors file's bytes with its JSON header's keys in sorted order.

    The library writes the metadata in an order that changes from one process to the next, so the same
    tensors gave one of two files, and two sha256 in the card: sorted, equal tensors give equal bytes.
    """
    from safetensors.numpy import save

    blob = save(arrays, metadata=metadata)
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode("utf-8")
    header += b" " * (-len(header) % 8)  # the data start on an 8-byte boundary, as the library keeps them
    return len(header).to_bytes(8, "little") + header + blob[8 + size :]
