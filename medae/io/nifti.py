"""NIfTI (.nii, .nii.gz) <-> ``Volume``, with nibabel; FreeSurfer MGH (.mgz, .mgh) and Analyze are read too.

The affine is chosen as nibabel does it (sform when its code is set, else qform, else the zooms; MGH
stores its voxel-to-RAS matrix); scaling slope/intercept is applied only when it changes values, so
integer data keeps its dtype.
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np

from medae.atomic import atomic_path
from medae.errors import InputError, OutputError, VolumeSelectionError
from medae.geometry import orientation_code
from medae.io.nibabel_notes import nibabel_notes
from medae.volume import Volume, value_sample

NIFTI_SUFFIXES = (".nii", ".nii.gz", ".img", ".hdr")
# FreeSurfer's volumes: brain MR users get them from every FreeSurfer run, and they carry a full affine.
MGH_SUFFIXES = (".mgz", ".mgh")


def is_nifti(path: str | os.PathLike) -> bool:
    """True when the file name says NIfTI/Analyze or MGH: the single-file volumes nibabel reads."""
    name = str(path).lower()
    return name.endswith(NIFTI_SUFFIXES + MGH_SUFFIXES)


def _format_name(path: Path) -> str:
    """The format the file name promises, for messages and ``Volume.meta``."""
    return "MGH" if str(path).lower().endswith(MGH_SUFFIXES) else "NIfTI"


def load_nifti(path: str | os.PathLike, index: int | None = None) -> Volume:
    """Reads a NIfTI file into a ``Volume``.

    Args:
        path: A .nii or .nii.gz file.
        index: For 4D files, which volume (0-based) to take. Required when there is more than one.

    Raises:
        InputError: unreadable file, 4D without ``index``, or no usable geometry.
    """
    with nibabel_notes() as notes:
        volume = _load_nifti(Path(path), index)
    # medae words the zero voxel size itself (with what it means); other repairs are passed on as they are.
    volume.warnings.extend(f"nibabel repaired the file's header: {n}" for n in notes if "pixdim" not in n)
    return volume


def _one_line(exc: BaseException) -> str:
    """The message of nibabel on one line, without its question (answered after it) and the empty "from" of a stream."""
    text = " ".join(str(exc).split())
    return text.replace(" from - could the file be damaged?", "").replace(" - could the file be damaged?", "")


def _short_advice(exc: BaseException) -> str:
    """What to do when the data is shorter than the header's shape: a cut copy, or a header that claims more."""
    if "Expected" in str(exc) and "bytes" in str(exc):
        return (
            "The file holds fewer voxels than its header's dimensions say: it was cut short (copy it again) or its "
            "header's dimensions are wrong (convert the scan again from the original)."
        )
    return "The file may be truncated; copy it again."


def _nib_load(path: Path, warnings: list[str] | None = None):
    """The nibabel image of a file, read by its content when its name says the other compression.

    An uncompressed NIfTI named .nii.gz (or a gzipped one named .nii) is common after a tool renamed or
    decompressed a file; nibabel trusts the name and fails.
    """
    import gzip

    import nibabel as nib

    try:
        with open(path, "rb") as fh:
            gz_data = fh.read(2) == b"\x1f\x8b"
    except OSError:
        return nib.load(str(path))  # nibabel's own error (no such file, no permission) is worded below
    name = path.name.lower()
    gz_name = name.endswith((".gz", ".mgz"))
    if gz_data == gz_name:
        return nib.load(str(path))
    holder = nib.fileholders.FileHolder(fileobj=gzip.open(path, "rb") if gz_data else open(path, "rb"))  # noqa: SIM115
    classes = (nib.MGHImage,) if name.endswith((".mgz", ".mgh")) else (nib.Nifti1Image, nib.Nifti2Image)
    for klass in classes:
        try:
            img = klass.from_file_map({"image": holder, "header": holder})
        except Exception:  # not this format: try the next
            holder.fileobj.seek(0)
            continue
        if warnings is not None:
            right = "compressed (gzip)" if gz_data else "not compressed"
            mgh = klass is nib.MGHImage
            ending = (".mgz" if gz_data else ".mgh") if mgh else (".nii.gz" if gz_data else ".nii")
            warnings.append(
                f"The file is {right}, unlike what its name says; it was read by its content. Rename it to end "
                f"in {ending} so that other tools read it too."
            )
        return img
    return nib.load(str(path))


def _unreadable(path: Path, exc: Exception) -> str:
    """Why nibabel could not read a file named as NIfTI or MGH, in words that say what to do."""
    kind = _format_name(path)
    version = "FreeSurfer MGH/MGZ" if kind == "MGH" else "NIfTI-1/2"
    detail = str(exc)
    if "Cannot work out file type" in detail or "is not a gzip file" in detail:
        # Read by content already: neither compression nor header is the format's (or what the gzip
        # compression holds is not: saying the file is not compressed would send the user the wrong way).
        what = (
            f"it is gzip-compressed, but what it holds is not a {version} header"
            if _starts_with_gzip(path)
            else f"its content is neither a {version} header nor gzip-compressed"
        )
        return (
            f"{path}: not a {kind} file: {what}. It may be another kind of file under this name, or a damaged "
            "copy; open the original file."
        )
    return f"{path}: not a readable {kind} file ({detail}). Check that the file is complete and is {version}."


def _starts_with_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def _load_nifti(path: Path, index: int | None) -> Volume:
    warnings: list[str] = []
    try:
        img = _nib_load(path, warnings)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file. Check the path.") from exc
    except Exception as exc:  # nibabel raises many types for bad headers
        if path.exists() and not os.access(path, os.R_OK):  # nibabel words a refused read as any other
            raise InputError(f"{path}: no permission to read the file. Check its access rights.") from exc
        raise InputError(_unreadable(path, exc)) from exc
    if not hasattr(img, "affine"):  # CIFTI-2 and other non-spatial images share the .nii suffix
        raise InputError(f"{path}: {type(img).__name__} data has no voxel grid; medae reads 3D volumes.")
    shape = img.shape
    if len(shape) < 3:
        shape = tuple(shape) + (1,) * (3 - len(shape))
    extra = int(np.prod(shape[3:])) if len(shape) > 3 else 1
    check_volume_index(path, index, extra)
    try:
        # ArrayProxy applies slope/intercept only when they are not 1/0, so integer data keeps its dtype.
        proxy = img.dataobj
        if len(img.shape) == 4:
            data = np.asanyarray(proxy[..., index or 0])
        else:
            data = np.asanyarray(proxy).reshape(tuple(shape[:3]) + (extra,))[..., index or 0]
    except MemoryError as exc:
        need = np.prod(shape[:3], dtype=np.float64) * np.dtype(img.get_data_dtype()).itemsize
        raise InputError(
            f"{path}: its header's dimensions ({' x '.join(str(int(n)) for n in shape[:3])}) ask for "
            f"{need / 2**30:,.1f} GiB for one volume, more memory than this machine has. If the scan is not that "
            "large, its header is wrong: convert the scan again from the original."
        ) from exc
    except FileNotFoundError as exc:  # a header whose voxels live in another file (.hdr/.img): that one is gone
        missing = _missing_data_file(img) or "the file disappeared while it was read. Check the path and open it again."
        raise InputError(f"{path}: {missing}") from exc
    except Exception as exc:  # truncated gzip, short file, bad offsets
        raise InputError(f"{path}: the image data cannot be read ({_one_line(exc)}). {_short_advice(exc)}") from exc
    # In memory and in the file's own (Fortran) order: a C-order copy would transpose every voxel.
    data = np.array(data, order="K") if isinstance(data, np.memmap) else np.asarray(data)
    data = finite_values(data, warnings, path)
    if data.dtype.kind == "c" or data.dtype.names:
        raise InputError(
            f"{path}: the voxels are colours (RGB), not the grey values of a scan; it is probably a rendering or "
            "an overlay. Open the scan itself."
            if data.dtype.names
            else f"{path}: the voxels are complex numbers ({data.dtype}). Save their magnitude as a real-valued "
            "image and open that."
        )
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    affine, note = _usable_affine(img)
    if note:
        warnings.append(note)
    space = _space_code(img.header, affine)  # before the unit change: the header holds its own units
    affine, unit = _in_millimetres(img, affine, warnings)
    sizes = _stored_voxel_sizes(img)
    zero = [axis for axis, size in enumerate(sizes) if size == 0]
    if zero:
        warnings.append(
            f"The file's voxel size (pixdim) is 0 along {', '.join('ijk'[a] for a in zero)}; 1 mm was assumed "
            "there, as nibabel does, so distances and volumes may be wrong. Fix the voxel sizes in the header."
        )
    negative = [axis for axis, size in enumerate(sizes) if size < 0]
    if negative:
        warnings.append(
            f"The file's voxel size (pixdim) is negative along {', '.join('ijk'[a] for a in negative)}; its size "
            "was used, as nibabel does (in NIfTI only the qform's sign flag flips an axis), but some tools read a "
            "negative size as a left-right flip or as 1 mm: check the scan's orientation, and fix the header."
        )
    header = img.header
    descrip = ""
    try:
        descrip = header["descrip"].item().decode("latin-1", "replace").strip("\x00 ")
    except Exception:
        pass
    meta = {"format": _format_name(path).lower(), "series_description": descrip or path.name}
    from medae.io.sidecar import sidecar_facts

    meta.update(sidecar_facts(path))
    if unit:
        meta["space_unit"] = unit  # outputs are written back in the file's own units
    if space > 1:
        meta["nifti_space_code"] = space  # aligned, Talairach or MNI: outputs say the same space
    if extra > 1:
        meta["volume_index"] = index
        meta["volumes"] = extra
    modality = guess_modality(data)
    meta["modality_guessed"] = True
    return Volume(array=data, affine=affine, modality=modality, meta=meta, source=str(path), warnings=warnings)


def check_volume_index(path: Path, index: int | None, count: int) -> None:
    """Raises ``InputError`` unless ``index`` picks one of ``count`` volumes (or there is only one)."""
    if count > 1 and index is None:
        raise VolumeSelectionError(
            f"{path}: a 4D file with {count} volumes. Choose one with --volume N (0 to {count - 1}).", count
        )
    if index is not None and not 0 <= index < count:
        raise InputError(
            f"{path}: volume index {index} is out of range; the file has {count} volumes (0 to {count - 1})."
        )


def finite_values(data: np.ndarray, warnings: list[str], path: str | os.PathLike = "scan") -> np.ndarray:
    """NaN and infinities (resampling tools write them outside the field of view) -> the minimum finite value.

    Raises:
        InputError: no voxel is finite.
    """
    if data.dtype.kind != "f":
        return data
    bad = ~np.isfinite(data)
    if not bad.any():
        return data
    finite = data[~bad]
    if not finite.size:
        raise InputError(
            f"{path}: every voxel is NaN or infinite, so there is no image to analyse. The file is probably a failed "
            "export or computation: load the original scan again."
        )
    warnings.append(f"{int(bad.sum())} voxels were NaN or infinite; they were set to the minimum finite value.")
    data = data.copy()
    data[bad] = finite.min()
    return data


#: NIfTI spatial units (xyzt_units) other than millimetres, and their size in mm.
_UNITS_MM = {"meter": 1000.0, "micron": 0.001}


def _in_millimetres(img, affine: np.ndarray, warnings: list[str]) -> tuple[np.ndarray, str | None]:
    """The affine in mm when the header stores its distances in metres or microns (nibabel ignores the units).

    Returns:
        The affine in mm and the file's unit when it was converted (else None).
    """
    header = img.header
    try:
        unit = header.get_xyzt_units()[0]
    except Exception:
        return affine, None
    scale = _UNITS_MM.get(unit)
    if scale is None:
        return affine, None
    out = affine.copy()
    out[:3, :] *= scale
    sizes = " x ".join(f"{v:.3g}" for v in np.linalg.norm(out[:3, :3], axis=0))
    warnings.append(
        f"The file gives its distances in {unit}s; they were converted to mm for the analysis (voxels {sizes} "
        f"mm). The NIfTI outputs keep the file's {unit}s and affine, so that they lie over it in every viewer."
    )
    return out, unit


def _space_code(header, affine: np.ndarray) -> int:
    """The NIfTI xform code (1 scanner, 2 aligned, 3 Talairach, 4 MNI) of the transform ``affine`` came from."""
    if not (hasattr(header, "get_sform") and hasattr(header, "get_qform")):
        return 0
    for get in (header.get_sform, header.get_qform):
        xform, code = get(coded=True)
        if code and xform is not None and np.allclose(xform, affine, atol=1e-4):
            return int(code)
    return 0


#: A qform (a rotation) is written when it places every corner of the grid this close to the sform.
QFORM_TOLERANCE_MM = 0.1


def _qform_error_mm(img, shape: tuple[int, ...]) -> float:
    """How far the image's qform places the grid's corners from its sform (file units)."""
    n = np.asarray(tuple(shape[:3]) + (1,) * (3 - len(shape[:3])), dtype=np.float64) - 1
    corners = np.array([[i, j, k, 1.0] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])
    diff = (np.asarray(img.get_sform()) - np.asarray(img.get_qform())) @ corners.T
    return float(np.linalg.norm(diff[:3], axis=0).max())


def _valid(affine) -> bool:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        return False
    # Relative to the voxel sizes: a header in metres has 0.0009 m voxels, whose determinant is tiny but
    # whose axes are as independent as any scan's; a zero or repeated axis gives 0 either way.
    norms = np.linalg.norm(a[:3, :3], axis=0)
    return bool(np.all(norms > 0)) and abs(np.linalg.det(a[:3, :3])) > 1e-6 * float(np.prod(norms))


def _usable_affine(img) -> tuple[np.ndarray, str | None]:
    """The file's voxel -> RAS+ mm matrix, falling back when the one nibabel picks is degenerate.

    nibabel takes the sform, then the qform, then the voxel sizes; a broken sform (a zero column, NaN) must
    not hide a good qform, and a scan without any usable geometry is still shown, with a warning that says
    what was assumed.

    Returns:
        The affine and a warning (None when the file stores a valid orientation of its own).
    """
    chosen = np.asarray(img.affine, dtype=np.float64)
    header = img.header
    if _valid(chosen):
        note = _no_orientation_note(header, chosen, _spm_mat(img), _mgh_without_geometry(img))
        return chosen, note or _disagreement_note(img, chosen)
    if hasattr(header, "get_qform"):
        qform, code = header.get_qform(coded=True)
        if code and qform is not None and _valid(qform):
            return np.asarray(qform, dtype=np.float64), "The file's sform is invalid; its qform was used instead."
    try:
        zooms = np.asarray(header.get_zooms()[:3], dtype=np.float64)
    except Exception:
        zooms = np.zeros(3)
    if zooms.size == 3 and np.all(np.isfinite(zooms)) and np.all(zooms > 0):
        affine = np.diag(np.r_[zooms, 1.0])
        return affine, (
            f"The file has no valid orientation; its voxel sizes ({', '.join(f'{z:g}' for z in zooms)} mm) were "
            "used with the voxel axes taken as right, anterior, superior: left and right may be swapped."
        )
    return np.eye(4), (
        "The file has no valid orientation or voxel size; a 1 mm grid with the voxel axes taken as right, "
        "anterior, superior was assumed: sizes and left/right may be wrong."
    )


def _stored_voxel_sizes(img) -> list[float]:
    """The voxel sizes (i, j, k) as stored, where the grid is built from them; empty otherwise.

    The qform and the plain voxel-size grid scale by pixdim, and nibabel takes 1 for a 0 and the size of a
    negative one while it reads the header (so the header as loaded no longer shows them); an sform carries
    its own scaling.
    """
    header = img.header
    if not hasattr(header, "get_sform") or header.get_sform(coded=True)[1]:
        return []
    try:
        from nibabel.openers import ImageOpener

        files = img.file_map
        with ImageOpener((files.get("header") or files["image"]).filename) as fh:
            raw = type(header).from_fileobj(fh, check=False)
        sizes = np.asarray(raw["pixdim"][1:4], dtype=np.float64)
    except Exception:  # the image itself was read; only this extra check is given up
        return []
    return [float(size) for size in sizes]


def _disagreement_note(img, chosen: np.ndarray) -> str | None:
    """A warning when the file's sform and qform both claim the geometry and place the scan apart.

    Tools differ in which one they read, so the same file (and a heatmap on it) can land in two places.
    """
    header = img.header
    if not (hasattr(header, "get_sform") and hasattr(header, "get_qform")):
        return None
    sform, scode = header.get_sform(coded=True)
    qform, qcode = header.get_qform(coded=True)
    if not (scode and qcode) or sform is None or qform is None or not _valid(qform):
        return None
    shape = np.asarray((tuple(img.shape[:3]) + (1, 1))[:3], dtype=np.float64)  # a 2D file is one slice
    corners = np.array([[i, j, k, 1.0] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) * np.r_[shape - 1, 1.0]
    apart = float(np.linalg.norm((np.asarray(sform) - np.asarray(qform)) @ corners.T, axis=0).max())
    if apart <= 1.0:
        return None
    used = "sform" if np.allclose(chosen, sform) else "qform"
    return (
        f"The file's sform and qform place the scan up to {apart:.0f} mm apart; medae used the {used}, as nibabel and "
        "FSL do. A viewer that reads the other one shows this scan, and its heatmap, elsewhere: "
        "correct the header with the tool that wrote it."
    )


def _mgh_without_geometry(img) -> bool:
    """True for an MGH file whose goodRASFlag says it stores no geometry (nibabel sets the flag on reading)."""
    if not hasattr(img.header, "get_vox2ras"):
        return False
    name = getattr(getattr(img, "file_map", {}).get("image"), "filename", None)
    if not name:
        return False
    try:
        with open(name, "rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            fh = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
            block = fh.read(30)
    except (OSError, EOFError):
        return False
    # version, width, height, depth, frames, type, dof (4 bytes each, big-endian), then the flag (2 bytes).
    return len(block) == 30 and int.from_bytes(block[28:30], "big", signed=True) == 0


def _spm_mat(img) -> bool:
    """True when an Analyze image's orientation came from the SPM .mat file beside it."""
    holder = getattr(img, "file_map", {}).get("mat")
    name = getattr(holder, "filename", None)
    return bool(name) and os.path.isfile(name)


def _no_orientation_note(header, affine: np.ndarray, has_mat: bool = False, mgh_default: bool = False) -> str | None:
    """A warning when the file stores no orientation and nibabel's default grid was taken."""
    if hasattr(header, "get_vox2ras"):
        if not mgh_default:
            return None
        # Without its flag, nibabel (as FreeSurfer) puts in a 1 mm coronal grid whatever the file held.
        return (
            "The file stores no orientation (its goodRASFlag is 0): medae assumed FreeSurfer's default, 1 mm voxels "
            f"with axes pointing {orientation_code(affine)}. Sizes, left and right, and front and back may be "
            "wrong; convert the scan again from its original DICOM."
        )
    if has_mat:  # SPM keeps it in the .mat
        return None
    if hasattr(header, "get_qform"):
        if header.get_sform(coded=True)[1] or header.get_qform(coded=True)[1]:
            return None
        what = "The file stores no orientation (its qform and sform codes are 0)"
    else:
        what = "Analyze files (.hdr/.img) store no orientation"
    return (
        f"{what}: medae assumed the usual default, voxel axes pointing {orientation_code(affine)}. Left and right, "
        "and front and back, may be wrong; convert the scan to NIfTI with its true orientation."
    )


def guess_modality(data: np.ndarray) -> str:
    """NIfTI carries no modality: values down to air at about -1000 with bone above +300 mean CT HU."""
    sample = value_sample(data)
    # Values far below air (-1024 HU) are padding outside the field of view (-32768, -3024), written into
    # CT and MR files alike: they say nothing about the modality. Data that is nearly all that low has no
    # padding to drop.
    real = sample[sample > -1500]
    sample = real if real.size >= 0.1 * sample.size else sample
    lo, hi = np.percentile(sample, [0.5, 99.9]) if sample.size else (0, 0)
    return "CT" if lo <= -900 and hi >= 300 else "MR"


def save_nifti(volume: Volume, path: str | os.PathLike, dtype: np.dtype | None = None) -> Path:
    """Writes ``volume`` (array and affine) atomically as NIfTI with its sform, and qform where it can hold it.

    NIfTI-1, or NIfTI-2 for a dimension longer than NIfTI-1 can hold (32767).

    Both carry the input's xform code (aligned, MNI, ...; scanner when unknown). A sheared grid gets no qform.

    ``.nii.gz`` is compressed on several cores (one standard gzip member; see ``gzip_parallel``).

    Args:
        volume: What to write; no patient data is written.
        path: Target .nii or .nii.gz.
        dtype: Optional on-disk dtype; defaults to the array's.
    """
    import nibabel as nib

    path = Path(path)
    arr = np.asarray(volume.array)
    if dtype is not None and arr.dtype != np.dtype(dtype):
        arr = arr.astype(dtype)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    # A result of a scan stored in metres or microns is written in the same unit: the same numbers as the
    # scan's own header, which viewers that ignore units compare.
    unit = volume.meta.get("space_unit")
    affine = np.array(volume.affine, dtype=np.float64)
    if unit in _UNITS_MM:
        affine[:3, :] /= _UNITS_MM[unit]
    else:
        unit = "mm"
    # 64-bit integers are legal NIfTI but nibabel asks for them explicitly (many tools cannot read them).
    # NIfTI-1 stores each dimension as a 16-bit integer; a longer one needs NIfTI-2, which current tools read.
    kind = nib.Nifti2Image if max(arr.shape, default=0) > 32767 else nib.Nifti1Image
    img = kind(arr, affine, dtype=arr.dtype if arr.dtype.kind in "iu" and arr.itemsize == 8 else None)
    img.header.set_data_dtype(arr.dtype)
    code = int(volume.meta.get("nifti_space_code") or 1)
    code = code if 1 <= code <= 4 else 1
    img.set_sform(affine, code=code)
    img.set_qform(affine, code=code)
    if _qform_error_mm(img, arr.shape) * _UNITS_MM.get(unit, 1.0) > QFORM_TOLERANCE_MM:
        # A qform is a rotation: of a sheared grid (gantry tilt) it keeps only the nearest rotation, millimetres
        # to centimetres off at the edges, and tools that prefer the qform would place the result there. ITK's
        # readers then refuse the file, as they refuse the sheared scan itself; a wrong place would be worse.
        img.set_qform(None, code=0)
    img.header.set_xyzt_units(unit)
    # The description field is 80 bytes of ASCII; it carries the series description (never PHI).
    descrip = str(
        volume.meta.get("nifti_descrip")
        or volume.meta.get("series_description")
        or volume.meta.get("kind")
        or "written by medae"
    )
    img.header["descrip"] = descrip.encode("ascii", "replace")[:79]
    try:
        with atomic_path(path) as tmp:
            if path.name.lower().endswith(".gz"):
                _write_nifti_gz(img.header, arr, tmp)
            else:
                nib.save(img, str(tmp))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc}). Check that the folder exists and is writable.") from exc
    return path


def _write_nifti_gz(header, arr: np.ndarray, target: Path) -> None:
    """Header, empty extension flag, then the voxels in Fortran order, through the parallel gzip writer."""
    from medae.io.gzip_parallel import write_gzip

    hdr = header.copy()
    hdr.set_data_offset(len(hdr.binaryblock) + 4)  # 352 for NIfTI-1, 544 for NIfTI-2
    hdr.set_slope_inter(1.0, 0.0)
    slab = max(1, (8 << 20) // max(1, arr.itemsize * int(np.prod(arr.shape[:-1]))))

    def chunks():
        yield hdr.binaryblock + b"\0\0\0\0"
        for k in range(0, arr.shape[-1], slab):
            part = np.asfortranarray(arr[..., k : k + slab])
            yield memoryview(part.reshape(-1, order="F"))

    with open(target, "wb") as f:
        write_gzip(f, chunks(), level=1, threads=min(4, os.cpu_count() or 1))


def nifti_info(path: str | os.PathLike):
    """A ``SeriesInfo`` for a NIfTI file, from its header only."""
    from medae.io.loader import SeriesInfo

    path = Path(path)
    try:
        with nibabel_notes():  # repairs are said when the scan is loaded
            img = _nib_load(path)
            shape = tuple(int(s) for s in (tuple(img.shape) + (1, 1, 1))[:3])
            chosen, note = _usable_affine(img)  # the geometry loading will use, and its warning
            affine = _in_millimetres(img, chosen, [])[0]
        n_volumes = int(np.prod(img.shape[3:])) if len(img.shape) > 3 else 1
        dtype = np.dtype(img.get_data_dtype())
    except Exception as exc:
        if path.exists() and not os.access(path, os.R_OK):  # nibabel words a refused read as any other
            raise InputError(f"{path}: no permission to read the file. Check its access rights.") from exc
        raise InputError(_unreadable(path, exc)) from exc
    info = SeriesInfo.for_file(path, "nifti", shape, affine, n_volumes)
    if note:
        info.warnings.append(note)
    if dtype.kind == "c" or dtype.fields:  # listed, so that the folder's content is seen, but not loadable
        info.warnings.append(f"complex or structured voxel data ({dtype}, e.g. RGB): not a scan medae can read.")
    missing = _missing_data_file(img)
    if missing:
        info.warnings.append(missing[0].lower() + missing[1:])
    short = _short_by(img, path)
    if short:
        info.warnings.append(
            f"the file lacks {short:.0%} of the voxel data its header's dimensions need: it was cut short or its "
            "header is wrong, and it will not load."
        )
    return info


def _missing_data_file(img) -> str:
    """What to do when the voxel file beside a header (the .img of a .hdr) does not exist; empty otherwise."""
    image = getattr(img, "file_map", {}).get("image")
    header = getattr(img, "file_map", {}).get("header")
    name = getattr(image, "filename", None)
    if not name or name == getattr(header, "filename", None) or os.path.exists(name):
        return ""
    return (
        f"The voxel data file {Path(name).name} that this header needs is missing beside it: copy it into "
        f"{Path(name).parent} with the header, and load it again."
    )


def _short_by(img, path: Path) -> float:
    """How much of the voxel data an uncompressed single file lacks (0 when complete or not knowable cheaply)."""
    if not str(path).lower().endswith(".nii") or getattr(img, "files_types", None) != (("image", ".nii"),):
        return 0.0
    try:
        with open(path, "rb") as fh:
            if fh.read(2) == b"\x1f\x8b":  # gzipped under a plain name (read by content): its size says nothing
                return 0.0
        # A single file's voxels start at vox_offset, which some writers leave 0 meaning "right after the header".
        offset = max(int(img.header["vox_offset"]), int(getattr(img.header, "single_vox_offset", 0)))
        need = math.prod(int(n) for n in img.shape) * np.dtype(img.get_data_dtype()).itemsize
        have = path.stat().st_size - offset
    except (OSError, TypeError, ValueError):
        return 0.0
    return (need - have) / need if need > 0 and have < need else 0.0
