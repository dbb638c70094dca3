"""NRRD (.nrrd, .nhdr) and MetaImage (.mha, .mhd) <-> ``Volume``, read with SimpleITK.

3D Slicer saves volumes as NRRD by default and ITK tools write MetaImage, so a department's research
scans often come this way. Both store origin, spacing and direction in LPS; the voxel -> RAS+ affine
is that matrix with x and y negated.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from medae import geometry
from medae.errors import InputError
from medae.volume import Volume

ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def is_itk_image(path: str | os.PathLike) -> bool:
    """True when the file name says NRRD or MetaImage."""
    return str(path).lower().endswith(ITK_SUFFIXES)


def _format_name(path: Path) -> str:
    return "NRRD" if str(path).lower().endswith((".nrrd", ".nhdr")) else "MetaImage"


def _reader(path: Path):
    """A SimpleITK reader with the header read; a clear ``InputError`` when the file is not readable."""
    import SimpleITK as sitk

    if not path.is_file():
        raise InputError(f"{path}: no such file. Check the path.")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    said: list[str] = []
    try:
        with itk_messages(said):
            reader.ReadImageInformation()
    except RuntimeError as exc:
        _raise_if_data_file_missing(path, exc)
        why = _cause(exc, said)
        if "not supported" in why:  # a layout ITK cannot take (a time or list axis last, a 2D grid in 3D space)
            raise InputError(
                f"{path}: ITK, which reads {_format_name(path)} files, does not support this file's layout ({why}). "
                "Save the scan again as NIfTI (3D Slicer: Save, NIfTI), or put a volume axis first in the NRRD "
                "header (kinds: list domain domain domain)."
            ) from exc
        raise InputError(
            f"{path}: not a readable {_format_name(path)} file ({why}). Check that the file, and the "
            "data file its header names, are complete."
        ) from exc
    return reader


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def itk_messages(said: list[str]):
    """Keeps what ITK's readers print to the process's stderr off the console, and appends it to ``said``.

    ITK's MetaImage and NRRD readers print their problems (a short or damaged data file, a header field
    missing) with the C++ runtime's own stream, so Python cannot catch them; some of them raise nothing
    at all. Only one thread at a time redirects the process's stderr.
    """
    with _STDERR_LOCK:
        try:
            kept = tempfile.TemporaryFile()
            saved = os.dup(2)
        except OSError:  # no stderr at all (a windowed program) or no temporary file: nothing to keep off
            yield
            return
        with kept:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(kept.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                kept.seek(0)
                text = kept.read(65536).decode("utf-8", "replace")
                ours = [ln for ln in text.splitlines() if _ITK_LINE.search(ln)]
                said.append("\n".join(ours))
                # What another thread printed meanwhile is not ITK's: it goes where it was going.
                theirs = [ln for ln in text.splitlines() if ln.strip() and not _ITK_LINE.search(ln)]
                if theirs and sys.stderr is not None:
                    sys.stderr.write("\n".join(theirs) + "\n")


#: Lines ITK's MetaImage and NRRD readers print (MetaIO's own prefixes, and the words of its few others).
_ITK_LINE = re.compile(
    r"^\s*(MetaImage|MetaObject|MetaIO|MET_|ITK|Uncompress|ideal =|WARNING: In |\w+ required|Error parsing|"
    r"Cannot (open|parse|read)|NrrdImageIO|nrrd)"
)


def _cause(exc: Exception | None, said: list[str]) -> str:
    """The reason a read failed: ITK's printed messages before its exception's stale system error."""
    printed = [ln.strip() for text in said for ln in text.splitlines() if ln.strip()]
    printed = [re.sub(r"^(MetaImage|MetaObject|MetaIO): *(\w+: *)?", "", ln) for ln in printed]
    reason = _reason(exc) if exc is not None else ""
    # "ITK ERROR: NrrdImageIO(0x55d...): ReadImageInformation: why": the object's address says nothing.
    reason = re.sub(r"^ITK ERROR: \w+\(0x[0-9a-fA-F]+\): (\w+: )?", "", reason)
    if printed and (not reason or "No such file or directory" in reason or "Could not create IO" in reason):
        return "; ".join(dict.fromkeys(printed[:3]))
    return reason or "; ".join(printed[:3])


def _raise_if_damaged(path: Path, said: list[str]) -> None:
    """Refuses data ITK read with complaints but without an error: a compressed file that does not inflate."""
    text = " ".join(said)
    sizes = re.search(r"ideal = (\d+) : actual = (\d+)", text)
    if sizes:
        raise InputError(
            f"{path}: its image data is cut short ({sizes.group(2)} of {sizes.group(1)} bytes). Copy it again (wait "
            "until the copy has finished)."
        )
    if "Uncompress failed" in text or "not read completely" in text:
        raise InputError(
            f"{path}: its compressed image data is damaged (it does not inflate whole). Copy it again from its source."
        )


def _open(path: Path):
    """The reader with its header read, the grid shape, the affine in mm, the number of volumes, the unit."""
    reader = _reader(path)
    try:
        shape, affine, volumes = _geometry(reader)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    unit, scale = _space_unit(path)
    if scale != 1.0:
        affine = affine.copy()
        affine[:3, :] *= scale
    return reader, shape, affine, volumes, unit


#: NRRD ``space units`` medae converts, as NIfTI's units are named (ITK takes every distance as mm).
_NRRD_UNITS = {"m": ("meter", 1000.0), "um": ("micron", 0.001), "\u00b5m": ("micron", 0.001), "mm": (None, 1.0)}


def _space_unit(path: Path) -> tuple[str | None, float]:
    """The unit an NRRD header gives its distances in (None for mm) and its size in mm.

    Raises:
        InputError: A unit medae does not know, or one per axis that differ.
    """
    if _format_name(path) != "NRRD":
        return None, 1.0
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536).decode("utf-8", "replace").split("\n\n", 1)[0]
    except OSError:
        return None, 1.0
    found = re.search(r"^space units\s*:(.*)$", head, re.MULTILINE | re.IGNORECASE)
    units = {u.strip().lower() for u in re.findall(r'"([^"]*)"', found.group(1))} if found else set()
    if not units or units <= {"mm", ""}:
        return None, 1.0
    if len(units) == 1 and next(iter(units)) in _NRRD_UNITS:
        return _NRRD_UNITS[next(iter(units))]
    raise InputError(
        f"{path}: its header gives distances in {', '.join(sorted(units))}, which medae does not convert. Save the "
        "scan again with distances in mm (or m or \u00b5m)."
    )


def _unit_note(unit: str | None, affine: np.ndarray) -> list[str]:
    if unit is None:
        return []
    sizes = " x ".join(f"{v:.3g}" for v in np.linalg.norm(affine[:3, :3], axis=0))
    return [
        f"The file gives its distances in {unit}s; they were converted to mm for the analysis (voxels {sizes} mm). "
        f"The NIfTI outputs keep the file's {unit}s, so that they lie over it in every viewer."
    ]


def _raise_if_data_file_missing(path: Path, exc: Exception) -> None:
    missing = _missing_data_file(path)
    if missing is not None:
        raise InputError(
            f"{path}: its header names the data file {missing.name}, which is not there ({missing.parent}). "
            "Copy the data file beside the header."
        ) from exc


def _raise_if_data_file_short(path: Path, reader, exc: Exception) -> None:
    # A data file still being copied, or cut short: ITK's own reason is a stale system error
    # ("No such file or directory"), so the sizes are compared here to name the cause.
    found = _data_file(path)
    if found is None or not found[0].is_file() or not found[1]:
        return
    import SimpleITK as sitk

    bits = re.search(r"(\d+)-bit", sitk.GetPixelIDValueAsString(reader.GetPixelID()))
    if bits is None:
        return
    need = int(np.prod(reader.GetSize(), dtype=np.int64)) * reader.GetNumberOfComponents() * int(bits.group(1)) // 8
    have = found[0].stat().st_size
    if have < need:
        raise InputError(
            f"{path}: its data file {found[0].name} holds {have} bytes where the header describes {need}: it is "
            "cut short or still being copied. Copy it again (wait until the copy has finished)."
        ) from exc


def _data_file(path: Path) -> tuple[Path, bool] | None:
    """The detached data file a MetaImage (.mhd) or NRRD (.nhdr) header names, and whether it is stored raw."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536).decode("latin-1")
    except OSError:
        return None
    found = re.search(r"^\s*(?:ElementDataFile\s*=|data ?file\s*:)\s*(.+?)\s*$", head, re.IGNORECASE | re.MULTILINE)
    name = found.group(1) if found else ""
    # LOCAL: the data follow the header; LIST and %-patterns name several files, not checked here.
    if not name or name.upper().startswith(("LOCAL", "LIST")) or "%" in name:
        return None
    packed = re.search(
        r"^\s*(?:CompressedData\s*=\s*true|encoding\s*:\s*(?!raw\b)\S+)", head, re.IGNORECASE | re.MULTILINE
    )
    return path.parent / name, packed is None


def _missing_data_file(path: Path) -> Path | None:
    """The detached data file a MetaImage (.mhd) or NRRD (.nhdr) header names, when it does not exist."""
    found = _data_file(path)
    return None if found is None or found[0].exists() else found[0]


def _reason(exc: Exception) -> str:
    # ITK's messages carry source file names and line numbers; the reason is on the last non-empty line.
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _affine(spacing, origin, direction, dim: int) -> np.ndarray:
    """Voxel (i, j, k) -> RAS+ mm from ITK's LPS geometry, padded to 3D for 2D images."""
    d = np.eye(3)
    d[:dim, :dim] = np.asarray(direction, dtype=np.float64).reshape(dim, dim)
    s = np.ones(3)
    s[:dim] = spacing
    o = np.zeros(3)
    o[:dim] = origin
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ d @ np.diag(s)
    affine[:3, 3] = _LPS_TO_RAS @ o
    return affine


def _geometry(reader) -> tuple[tuple[int, ...], np.ndarray, int]:
    """Grid shape (I, J, K[, T]), the 3D affine and the number of volumes, from the header alone."""
    dim = reader.GetDimension()
    size = tuple(int(s) for s in reader.GetSize())
    if dim == 4:
        # A time series: the first three axes are space; the fourth axis's geometry is not spatial.
        spacing = reader.GetSpacing()[:3]
        origin = reader.GetOrigin()[:3]
        direction = np.asarray(reader.GetDirection()).reshape(4, 4)[:3, :3].ravel()
        return size, _checked(_affine(spacing, origin, direction, 3)), size[3]
    if dim not in (2, 3):
        raise InputError(f"{dim}-dimensional image: medae reads 3D volumes.")
    shape = size + (1,) * (3 - dim)
    affine = _affine(reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection(), dim)
    return shape, _checked(affine), _list_length(reader)


def _list_length(reader) -> int:
    """The number of volumes a voxel's list axis holds (an NRRD DWI or multi-volume file), else 1.

    3D Slicer writes diffusion and multi-volume files with a ``list`` axis (older DWI files: ``vector``
    with the DWMRI keys). Any other ``vector`` is a displacement field, a gradient or a colour, not volumes.
    """
    components = reader.GetNumberOfComponents()
    kind = (_meta(reader, "NRRD_kinds[pixel]") or "").strip().lower()
    keys = reader.GetMetaDataKeys() if components > 1 else ()
    diffusion = any(k.startswith(("DWMRI_", "MultiVolume.")) for k in keys) or _meta(reader, "modality") == "DWMRI"
    listed = kind == "list" or (kind == "vector" and diffusion)
    return components if components > 1 and listed else 1


def _checked(affine: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(
            "the file's spacing or direction is degenerate, so its voxels have no place in space. Fix the header "
            "(space directions, spacing) or convert the scan to NIfTI with its true geometry."
        )
    return affine


def load_itk_image(path: str | os.PathLike, index: int | None = None) -> Volume:
    """Reads an NRRD or MetaImage file into a ``Volume``.

    Args:
        path: A .nrrd, .nhdr, .mha or .mhd file.
        index: For 4D files, which volume (0-based) to take. Required when there is more than one.

    Raises:
        InputError: unreadable file, several components per voxel, 4D without ``index``, or bad geometry.
    """
    from medae.io.nifti import check_volume_index, finite_values, guess_modality

    path = Path(path)
    reader, _, affine, volumes, unit = _open(path)
    components = reader.GetNumberOfComponents()
    listed = components > 1 and volumes == components  # volumes along a list axis, one per component
    if components > 1 and not listed:
        raise InputError(
            f"{path}: {components} values per voxel (a colour, vector or tensor image). medae reads scalar scans; "
            "export the scan itself as a greyscale volume."
        )
    check_volume_index(path, index, volumes)
    said: list[str] = []
    try:
        import SimpleITK as sitk

        with itk_messages(said):
            image = reader.Execute()
        # ITK's array is (K, J, I) in C order: its transpose is (I, J, K) in Fortran order, without a copy.
        data = sitk.GetArrayFromImage(image)
    except RuntimeError as exc:
        _raise_if_data_file_missing(path, exc)
        _raise_if_data_file_short(path, reader, exc)
        _raise_if_damaged(path, said)
        raise InputError(
            f"{path}: the image data cannot be read ({_cause(exc, said)}). The file may be truncated; copy it again."
        ) from exc
    _raise_if_damaged(path, said)
    if listed:
        data = data[..., index or 0]  # ITK puts the components last: (K, J, I, C)
    elif data.ndim == 4:
        data = data[index or 0]
    data = data.reshape(data.shape[-3:] if data.ndim >= 3 else (1,) + data.shape).T
    if data.dtype.kind == "c":
        raise InputError(f"{path}: complex voxel data ({data.dtype}) is not a scan medae can read.")
    warnings: list[str] = _unit_note(unit, affine)
    data = finite_values(data, warnings, path)
    note = _no_orientation_note(reader, affine)
    if note:
        warnings.append(note)
    meta = {"format": _format_name(path).lower(), "series_description": path.name}
    if unit:
        meta["space_unit"] = unit  # outputs are written back in the file's own units
    if volumes > 1:
        meta["volume_index"] = index
        meta["volumes"] = volumes
    modality = _stored_modality(reader)
    if modality is None:
        modality = guess_modality(data)
        meta["modality_guessed"] = True
    return Volume(array=data, affine=affine, modality=modality, meta=meta, source=str(path), warnings=warnings)


def _meta(reader, key: str) -> str | None:
    return reader.GetMetaData(key) if reader.HasMetaDataKey(key) else None


def _stored_modality(reader) -> str | None:
    """MetaImage may name the modality (``Modality = MET_MOD_CT``); NRRD never does."""
    return {"MET_MOD_CT": "CT", "MET_MOD_MR": "MR"}.get(_meta(reader, "Modality") or "")


def _no_orientation_note(reader, affine: np.ndarray) -> str | None:
    """A warning when an NRRD file has no ``space`` field, so its axes were taken as ITK's default."""
    if _meta(reader, "ITK_InputFilterName") != "NrrdImageIO" or _meta(reader, "NRRD_space"):
        return None
    return (
        "The file stores no orientation (its header has no 'space' field): medae assumed the usual default, voxel "
        f"axes pointing {geometry.orientation_code(affine)}. Left and right, and front and back, may be wrong; "
        "save the scan again with its orientation (3D Slicer does this)."
    )


def itk_image_info(path: str | os.PathLike):
    """A ``SeriesInfo`` for an NRRD or MetaImage file, from its header only."""
    from medae.io.loader import SeriesInfo

    path = Path(path)
    reader, shape, affine, volumes, unit = _open(path)
    info = SeriesInfo.for_file(path, "itk", shape, affine, volumes)
    info.warnings.extend(_unit_note(unit, affine))
    note = _no_orientation_note(reader, affine)
    if note:
        info.warnings.append(note)
    missing = _missing_data_file(path)
    if missing is not None:
        info.warnings.append(f"its header names the data file {missing.name}, which is not there: copy it beside.")
    return info
