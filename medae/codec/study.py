"""Compressing a study into one ``.mae`` file and restoring it: the modes, their guarantees, the checks.

- ``lossless``: every voxel, the dtype and the affine come back bit for bit (checked by a sha256 of the
  values stored in the file, and by decoding before the file is written).
- ``near-lossless``: every voxel comes back within ``max_error`` of the original, in the scan's units
  (JPEG-LS's bound for integers, quantisation for floats); checked the same way before writing.
- ``latent``: only the compression model's latent: about 60 kB that decode to a smooth,
  healthy-looking version of the region the model covers. Not the scan; never for diagnosis.

Every mode keeps the shape, the affine, the modality and the non-identifying description; patient data
only when asked (``keep_phi``).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

import numpy as np

from medae import __version__
from medae.codec import container, values
from medae.errors import InputError
from medae.progress import ProgressFn, check_cancel, report
from medae.volume import Volume

MODES = ("lossless", "near-lossless", "latent")
LATENT_REFUSAL = (
    "a compressed study that holds only a latent (a smooth, healthy-looking approximation), not the scan: "
    "an analysis would find nothing. Analyse the original scan, or a lossless or near-lossless copy."
)
LATENT_NOTE = (
    "Decoded from a latent: a smooth, healthy-looking approximation of the region the compression model "
    "covers; not the scan, never for diagnosis (fine detail is lost, lesions are blurred or missing)"
)


def compress(
    volume: Volume,
    mode: str = "lossless",
    max_error: float | None = None,
    model=None,
    keep_phi: bool = False,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> tuple[dict, dict[str, bytes]]:
    """The header and sections of ``volume`` compressed in ``mode``.

    Args:
        volume: The scan.
        mode: One of :data:`MODES`.
        max_error: Near-lossless bound in the scan's units (default: :func:`values.default_max_error`).
        model: A loaded compression model (``latent`` mode only).
        keep_phi: Store the patient-identifying fields too.
        force: ``latent`` mode on a scan of another modality than the model's.
        progress: Progress callback.
        cancel: Cancel event.

    Raises:
        InputError: A mode or bound that cannot apply to this scan.
    """
    if mode not in MODES:
        raise InputError(f"unknown compression mode {mode!r}; choose one of {', '.join(MODES)}.")
    array = np.asarray(volume.array)
    header: dict = {
        "mode": mode,
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "affine": np.asarray(volume.affine, dtype=np.float64).tolist(),
        "modality": volume.modality,
        "meta": _jsonable(_without_bound(volume.meta if keep_phi else deidentified_meta(volume.meta))),
        # The decoder's own notes are written again from the header when this file is decoded.
        "warnings": [w for w in volume.warnings if not w.startswith(_DECODER_NOTES)],
        "written_by": f"medae {__version__}",
    }
    if keep_phi and volume.phi:
        header["phi"] = _jsonable(volume.phi)
    report(progress, 0.0, "Compressing")
    prior = float(volume.meta.get("max_error_from_acquired") or 0.0)
    if mode == "latent":
        from medae.codec import latent

        if model is None:
            raise InputError(
                "latent mode needs a compression model (--model); the shipped one is models/brain-t1-codec."
            )
        info, data, notes = latent.encode(volume, model, force=force, progress=progress, cancel=cancel)
        header["latent"] = info
        header["warnings"] += notes
        return header, {"latent": data}
    bound = 0.0
    if mode == "near-lossless":
        bound = values.default_max_error(array) if max_error is None else float(max_error)
        if not np.isfinite(bound) or bound < 0:
            raise InputError(f"--max-error must be a finite number >= 0, not {max_error}.")
        bound = values.usable_bound(array, bound)
    digest = _digest(array) if bound == 0 else None
    info, data = _encode_checked(array, bound, digest, cancel, progress)
    header["values"] = info
    header["max_error"] = bound
    # A scan decoded from a near-lossless file and compressed again: the errors of both codings add up.
    header["max_error_from_acquired"] = bound + prior
    header["sha256_values"] = digest
    report(progress, 1.0, "Compressed")
    return header, {"values": data}


def _encode_checked(
    array: np.ndarray, bound: float, digest: str | None, cancel, progress: ProgressFn | None = None
) -> tuple[dict, bytes]:
    """Codes the values, decodes them again and checks the promise (``digest`` when exact, else ``bound``)."""
    check_cancel(cancel)
    info, data = values.encode(array, bound)
    check_cancel(cancel)
    report(progress, 0.6, "Checking the compressed values")
    back = values.decode(info, data, array.shape)
    # Each stage takes seconds on a large scan: a cancel is honoured between them, not after all of them.
    check_cancel(cancel)
    if digest is not None:
        ok = back.dtype == array.dtype and _digest(back) == digest
    else:
        ok = _largest_error(back, array) <= bound
        if not ok and array.dtype.kind == "f":
            # The float type's own rounding can add a hair to the bound: a finer step keeps it.
            info, data = values.encode(array, bound * 0.5)
            ok = _largest_error(values.decode(info, data, array.shape), array) <= bound
    if not ok:
        raise InputError(
            "the compressed values did not decode to the scan within the promised bound; nothing was written. "
            "Use --mode lossless, and report this scan's type to medae's developers."
        )
    check_cancel(cancel)
    return info, data


def decompress(header: dict, sections: dict[str, bytes], model=None, source: str | None = None) -> Volume:
    """The study back as a ``Volume`` (its shape, affine, dtype, modality and description).

    Raises:
        InputError: A header that does not describe a study (damaged, or written by a newer medae).
    """
    check_header(header, source)
    try:
        return _decompress(header, sections, model, source)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        name = source or "the study"
        raise InputError(f"{name}: the file's header is damaged ({exc!r}); restore a good copy.") from exc


def check_header(header: dict, source: str | None = None) -> None:
    """Raises ``InputError`` unless ``header`` holds what decoding needs, each of the right kind."""
    name = source or "the study"

    def bad(what: str) -> InputError:
        return InputError(f"{name}: the file's header is damaged ({what}); restore a good copy.")

    mode = header.get("mode")
    if mode not in MODES:
        raise InputError(f"{name}: unknown compression mode {mode!r}: the file was written by a newer medae.")
    shape = header.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)):
        raise bad("its grid is not three positive sizes")
    try:
        dtype = np.dtype(header.get("dtype"))
        affine = np.asarray(header.get("affine"), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise bad("its voxel type or affine cannot be read") from exc
    if dtype.kind not in "biuf" or affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise bad("its voxel type or affine cannot be read")
    part = header.get("latent" if mode == "latent" else "values")
    if not isinstance(part, dict):
        raise bad(f"it has no {'latent' if mode == 'latent' else 'values'} description")
    if mode != "latent" and not isinstance(header.get("max_error", 0), int | float):
        raise bad("its error bound is not a number")
    if not isinstance(header.get("max_error_from_acquired") or 0, int | float):
        raise bad("its error bound against the acquired scan is not a number")


def _decompress(header: dict, sections: dict[str, bytes], model, source: str | None) -> Volume:
    shape = tuple(int(s) for s in header["shape"])
    affine = np.asarray(header["affine"], dtype=np.float64)
    warnings = list(header.get("warnings", []))
    meta = dict(header.get("meta") or {})
    if header["mode"] == "latent":
        from medae.codec import latent

        if model is None:
            raise InputError(
                f"this study holds only a latent of model {header['latent'].get('model')!r}; "
                "decoding it needs that model (--model)."
            )
        decoded = latent.decode(header["latent"], sections["latent"], shape, model)
        dtype = np.dtype(header["dtype"])
        if dtype.kind in "biu":
            limits = np.iinfo(dtype) if dtype.kind != "b" else np.iinfo(np.uint8)
            decoded = np.clip(np.rint(decoded), limits.min, limits.max)
        array = decoded.astype(dtype)
        meta["kind"] = "latent reconstruction"
    elif header["mode"] in ("lossless", "near-lossless"):
        array = values.decode(header["values"], sections["values"], shape)
        if array.dtype != np.dtype(header["dtype"]) or array.shape != shape:
            raise InputError(f"{source or 'the study'}: the voxels do not decode to the grid and type of the header.")
        bound = float(header.get("max_error_from_acquired", header.get("max_error")) or 0.0)
        if bound > 0:
            # Lossy, however slightly: whoever reads this scan, and every result made from it, must know.
            meta["max_error_from_acquired"] = bound
            warnings.append(
                f"Decoded from a near-lossless compressed study: each voxel may differ from the acquired scan "
                f"by up to {bound:g}"
            )
        expected = header.get("sha256_values")
        if expected and _digest(array) != expected:
            raise InputError(
                f"{source or 'the study'}: the decoded voxels do not match the stored checksum; the file is damaged."
            )
    else:
        raise InputError(f"unknown compression mode {header['mode']!r}: the file was written by a newer medae.")
    if meta.get("kind") == "latent reconstruction":  # also a latent preview compressed again, losslessly
        warnings.append(LATENT_NOTE)
    return Volume(
        array,
        affine,
        header.get("modality") or "OT",
        meta,
        phi=dict(header.get("phi") or {}),
        source=source,
        warnings=warnings,
    )


def write_study(path: str | os.PathLike, header: dict, sections: dict[str, bytes]) -> Path:
    """Writes the compressed study atomically."""
    return container.write(path, header, sections)


def read_study(path: str | os.PathLike, model=None, device: str = "auto") -> Volume:
    """Reads and decodes a ``.mae`` file.

    Args:
        path: The file.
        model: The compression model for a latent file (default: the shipped one, loaded when needed).
        device: Where that model runs.
    """
    header, sections = container.read(path)
    if header.get("mode") == "latent" and model is None:
        from medae.model import load_model
        from medae.model.store import default_codec_dir

        model = load_model(default_codec_dir(), device=device)
    return decompress(header, sections, model=model, source=str(path))


def is_compressed_study(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file that starts like a ``.mae`` (whatever its name), or a file named ``.mae``.

    A ``.mae`` whose first bytes were damaged is still one: its reader says what is wrong with it, where
    the other readers would only say that they found no scan.
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(len(container.SIGNATURE)) == container.SIGNATURE:
                return True
    except OSError:
        return False
    return str(path).lower().endswith(".mae")


def describe(header: dict, size: int | None = None, source: str | None = None) -> str:
    """One line: mode, grid and size of a compressed study (the header checked first; ``source`` names it)."""
    check_header(header, source)
    shape = "x".join(str(s) for s in header["shape"])
    raw = int(np.prod(header["shape"])) * np.dtype(header["dtype"]).itemsize
    text = f"{header['mode']}, {shape} {np.dtype(header['dtype']).name}"
    if header["mode"] == "near-lossless":
        text += f", every voxel within {header['max_error']:g}"
    acquired = float(header.get("max_error_from_acquired") or 0.0)
    if header["mode"] != "latent" and acquired > float(header.get("max_error") or 0.0):
        text += f" of a scan decoded from a near-lossless study: within {acquired:g} of the acquired scan"
    if header["mode"] == "latent":
        text += f", latent of model {header['latent']['model']}"
    if size:
        text += f"; {size / 1e6:.2f} MB from {raw / 1e6:.2f} MB ({raw / size:.1f}:1)"
    return text


#: Description fields that name places on the writer's disk (folder names often hold a patient's name).
_PATH_FIELDS = ("source_files", "frame_numbers", "thumbnail_file")
#: Free text of files other than DICOM: a NIfTI's description field, or its file name, which often holds
#: a patient's name. DICOM series and study descriptions are protocol names ("AX T1 POST GAD"), kept as
#: report.json keeps them: the analysis reads them (the contrast-agent check).
_FREE_TEXT = ("series_description", "study_description")
#: BIDS entities of a file name that name the person or the visit.
_BIDS_PERSONAL = re.compile(r"^(sub|ses)-", re.IGNORECASE)
_DECODER_NOTES = ("Decoded from a latent", "Decoded from a near-lossless")
#: UIDs that name a class or an encoding, not a patient's study: kept.
_PUBLIC_UIDS = ("sop_class_uid", "transfer_syntax_uid")


def deidentified_meta(meta: dict) -> dict:
    """The description without paths or free text, and with study, series and frame-of-reference UIDs pseudonymised.

    A BIDS file name keeps its entities but the subject and session, so that what they say of the scan
    (``ce-`` for a contrast agent) still reaches the analysis.

    The UIDs are replaced as ``report.json`` and the DICOM exports replace them (the same mapping), so a
    compressed study, its analysis and its DICOM objects still name the same series.
    """
    from medae.io.deid import Deidentification

    policy = Deidentification()
    dicom = meta.get("format") == "dicom"
    out = {}
    for key, value in meta.items():
        if key in _PATH_FIELDS:
            continue
        if key in _FREE_TEXT and not dicom:
            value = _bids_without_person(str(value or ""))
            if not value:
                continue
        if isinstance(value, str) and value and (key.endswith("_uid") or key == "series_key"):
            if key not in _PUBLIC_UIDS:
                value = policy.uid(value)
        out[key] = value
    return out


def _bids_without_person(name: str) -> str:
    """A BIDS file name without its subject and session ("ce-gadolinium_T1w.nii.gz"); "" for other names."""
    parts = name.split("_")
    if not any(_BIDS_PERSONAL.match(p) for p in parts):
        return ""
    return "_".join(p for p in parts if not _BIDS_PERSONAL.match(p))


def _without_bound(meta: dict) -> dict:
    """``meta`` without the bound a decoder wrote there: the header's own ``max_error_from_acquired`` holds it."""
    return {k: v for k, v in meta.items() if k != "max_error_from_acquired"}


def _jsonable(value):
    """``value`` as plain JSON types (numpy scalars and arrays unpacked, non-finite floats as None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _digest(array: np.ndarray) -> str:
    """sha256 of the type, the grid and the values in C order (a slab at a time: no copy of the volume)."""
    h = hashlib.sha256(f"{array.dtype.str} {list(array.shape)}\n".encode())
    if array.ndim == 0 or array.size == 0:
        h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()
    for i in range(array.shape[0]):
        h.update(np.ascontiguousarray(array[i]).tobytes())
    return h.hexdigest()


def _largest_error(decoded: np.ndarray, original: np.ndarray) -> float:
    """Largest absolute difference, in float64, a slab at a time (no float64 copy of the volume)."""
    if decoded.size == 0:
        return 0.0
    return max(
        float(np.max(np.abs(decoded[i].astype(np.float64) - original[i].astype(np.float64))))
        for i in range(decoded.shape[0])
    )
