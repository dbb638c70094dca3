"""Is this scan something the model can judge? Checks tied to the model card.

A mismatch that still allows a meaningful result becomes a warning carried into every output; one that
cannot be meaningful (a chest CT given to a brain MRI model) is refused with ``ModelMismatchError``,
unless the user forces it, in which case the refusal becomes a loud warning.
"""

from __future__ import annotations

import re

import numpy as np

from medae.errors import InputError, ModelMismatchError
from medae.model.card import ALIGNMENT_LIMITS, ModelCard
from medae.model.registration import MIN_VOXELS_TO_ALIGN
from medae.volume import Volume

#: How every warning of a check the user forced past begins (``AnalysisResult.forced`` looks for it).
FORCED = "Forced past"

BODY_PART_SYNONYMS = {
    "BRAIN": {"BRAIN", "HEAD", "SKULL", "HEADNECK", "HEAD_NECK", "CEREBRUM", "NEURO"},
    "CHEST": {"CHEST", "THORAX", "LUNG", "CHESTABDOMEN"},
    "ABDOMEN": {"ABDOMEN", "ABDOMENPELVIS", "PELVIS", "LIVER", "KIDNEY"},
}


def _norm(part: str) -> str:
    return "".join(ch for ch in part.upper() if ch.isalnum() or ch == "_")


def scan_location(volume: Volume) -> str:
    """Where the scan is ("scan" for a volume made in memory)."""
    return volume.location or "scan"


def _dicom(volume: Volume) -> bool:
    return volume.meta.get("format") == "dicom"


def other_modality(volume: Volume, card: ModelCard) -> bool:
    """True when the scan is of another modality than the model's (a CT given to an MR model)."""
    modality = (volume.modality or "").upper()
    return bool(modality) and modality not in ("OT", card.modality.upper())


def kind_problems(volume: Volume, card: ModelCard) -> list[str]:
    """What makes the scan another kind than the model's: its modality or body part, in words ([] if none)."""
    problems = []
    modality = (volume.modality or "").upper()
    guessed = bool(volume.meta.get("modality_guessed"))
    if other_modality(volume, card):
        judged = " (judged from its values)" if guessed else ""
        if guessed and modality == "CT" and card.modality.upper() == "MR" and _filled_magnitude(volume):
            judged = (
                " (judged from its values; but all of them but one fill value are positive, as in an MR scan "
                "that a tool filled with -1024 outside its field, which is analysed as MR when forced)"
            )
        problems.append(f"the scan is {modality}{judged} but the model {card.id} was trained on {card.modality}")
    part = volume.meta.get("body_part")
    if part:
        wanted = BODY_PART_SYNONYMS.get(card.body_part.upper(), {card.body_part.upper()})
        if _norm(str(part)) not in {_norm(p) for p in wanted}:
            problems.append(f"the scan's body part is {part} but the model {card.id} knows {card.body_part}")
    return problems


def _filled_magnitude(volume: Volume) -> bool:
    """Whether the scan is one negative fill value around positive ones: a magnitude (MR) image, filled."""
    from medae.volume import padding_value

    array = np.asarray(volume.array)
    return array.ndim == 3 and padding_value(array, magnitude=True) is not None and padding_value(array) is None


def check_input(volume: Volume, card: ModelCard, force: bool = False) -> list[str]:
    """Checks before any work: modality, body part, voxel size.

    Returns:
        Warnings to carry into the outputs.

    Raises:
        ModelMismatchError: the result could not be meaningful (and ``force`` is False).
    """
    if volume.meta.get("kind") == "latent reconstruction":
        # Decoded from a compressed study's latent: the model's own healthy-looking approximation, where
        # nothing abnormal survives, so an analysis would call any scan healthy.
        raise InputError(
            f"{scan_location(volume)}: this is a latent reconstruction (a smooth, healthy-looking approximation "
            "from a compressed study), not a scan: an analysis would find nothing. Analyse the original scan, or "
            "a lossless or near-lossless copy."
        )
    own = _own_output(volume)
    if own:
        raise InputError(
            f"{scan_location(volume)}: this is {own} that medae wrote, not a scan: an analysis of it would mean "
            "nothing. Open the scan it was made from (its report.json names it)."
        )
    warnings: list[str] = []
    problems = kind_problems(volume, card)
    spacing = np.asarray(volume.spacing)
    model_sp = float(card.space.get("spacing", 1.0))
    # At 5 mm a 6 mm lesion can fall between slices (it was found at 1 mm and missed at 5 mm); 3 mm is common.
    acquired = _acquired_thickness(volume)
    if acquired > max(spacing.max(), 2 * model_sp):
        # Slices resliced thinner keep the blur of the thick ones: the grid looks fine, the header tells.
        step = float(volume.meta.get("slice_step_mm") or spacing.max())
        warnings.append(
            f"Thick slices ({acquired:.1f} mm as acquired, by the header's slice thickness, though stored "
            f"{step:.1f} mm apart; the model works at {model_sp:g} mm): small findings may be missed."
        )
    elif spacing.max() > 2 * model_sp:
        warnings.append(
            f"Thick slices ({spacing.max():.1f} mm, the model works at {model_sp:g} mm): small findings may be missed."
        )
    if spacing.min() < 0.2:
        warnings.append(f"Unusually small voxels ({spacing.min():.2f} mm): check the scan's geometry.")
    warnings += _contrast_agent(volume, card) + _child(volume, card)
    size, advice = _size_problem(volume, card)
    if size and not force:
        raise ModelMismatchError(
            f"{scan_location(volume)}: {size}. {advice}, or pass --force to analyse anyway.", problem=size
        )
    if size:
        warnings.append(f"{FORCED} a size mismatch: {size}. Interpret the result with great caution.")
    if _is_blank(volume.array):
        value = np.asarray(volume.array).flat[0]
        raise InputError(
            f"{scan_location(volume)}: every voxel has the same value ({value:g}), so there is no image to "
            "analyse. The file is probably an empty or failed export: load the original series again."
        )
    largest = _largest_magnitude(volume.array)
    if largest > MAX_MAGNITUDE:
        raise InputError(
            f"{scan_location(volume)}: voxel values reach {largest:.3g}, beyond what the analysis computes with "
            f"(32-bit floats hold up to 3.4e+38, and no scanner writes values near {MAX_MAGNITUDE:.0e}): the file's "
            "scaling is probably broken (a scl_slope or RescaleSlope far too large, or a failed conversion). "
            "Export the scan again, or fix the scaling in its header."
        )
    if min(volume.shape) < 8:
        n = min(volume.shape)
        what = (
            "one file of a DICOM series, open the folder that holds the whole series"
            if _dicom(volume)
            else "a slab or a single slice, open the whole scan"
        )
        slices = f"{n} slice{'s' if n != 1 else ''}"
        thin = f"the scan has only {slices} along one axis; it is not a 3D volume (if it is {what})"
        registers = card.space.get("alignment", "register") == "register"
        if registers and n < MIN_VOXELS_TO_ALIGN:  # nothing to force: the alignment cannot even start
            raise ModelMismatchError(
                f"{scan_location(volume)}: {thin}. It cannot be aligned to the model's reference.", forceable=False
            )
        problems.append(thin)
    diffusion = _diffusion(volume)
    if diffusion and card.modality.upper() == "MR":
        problems.append(f"it is {diffusion}, not the kind of scan the model {card.id} learnt")
    levels = _few_levels(volume.array)
    if levels:
        problems.append(
            f"the file holds only {levels} distinct values: it looks like a mask or label map (a segmentation), "
            "not an image"
        )
    else:
        derived = _derived_map_name(volume)
        if derived:
            problems.append(
                f"its file name ({derived}) is that of a segmentation or tissue probability map, not an image: "
                "analysed, such a map reads as healthy or wildly abnormal, never as what it shows"
            )
    if problems:
        text = "; ".join(problems)
        # Another modality or body part wants another model; a mask or a lone slice wants the scan itself.
        advice = (
            "choose a model for this kind of scan (--model)"
            if kind_problems(volume, card)
            else "open the scan itself (its whole series, not a segmentation or one file of it)"
        )
        if not force:
            raise ModelMismatchError(
                f"{scan_location(volume)}: {text}. The result would not be meaningful; {advice}, or pass --force to "
                "analyse anyway.",
                problem=text,
            )
        warnings.append(f"{FORCED} a model mismatch: {text}. Interpret the result with great caution.")
    return warnings


#: Words a protocol puts after "post" (plane, fat saturation, sequence, reformat, slice thickness): "AX T1 POST FS",
#: "T1 MPRAGE POST 3D" and "POST T1 AX" say after an agent as much as "AX T1 POST" does; "post-op" and "post
#: fossa" are none of them.
_ACQUISITION_WORDS = (
    r"ax|axial|sag|sagittal|cor|coronal|tra|trans|obl|fs|fatsat|fat\s*sat|3d|2d|mpr|mprage|t1|t1w|se|tse|fse|spgr"
    r"|bravo|vibe|tfe|ffe|gre|flash|space|cube|iso|thin|\d+(\.\d+)?\s*mm"
)
#: Words of DICOM series descriptions that mark an acquisition after a contrast agent ("T1 +C", "MPRAGE
#: POST GAD", "T1 KM", "AX T1 POST"); "post" alone only at the end ("post-op", "post fossa" are not).
_POST_CONTRAST = re.compile(
    r"(\+\s?c\b|\bc\+|(?<![a-z])(post)?(gad|gado|gadolinium|gd|km|mdc|ce|contrast|kontrast)(?![a-z])"
    r"|(?<![a-z])post(\s+(" + _ACQUISITION_WORDS + r"))*\s*$)",
    re.IGNORECASE,
)
#: ... unless they say the opposite ("PRE GAD", "T1 NON CE", "nativ", "ohne KM", "sin gd").
_WITHOUT_CONTRAST = re.compile(
    r"(?<![a-z])(pre|non|no|none|without|w/?o|nativ|native|plain|ohne|vor|sin|sans|senza|sem)(?![a-z])",
    re.IGNORECASE,
)
#: A BIDS file name's contrast entity ("sub-01_ce-gadolinium_T1w.nii.gz"); other entities' labels are no words.
_BIDS_CONTRAST = re.compile(r"(?:^|_)ce-(?!none)[a-z0-9]+", re.IGNORECASE)
#: What some exports write into ContrastBolusAgent when there was none.
_NO_AGENT = re.compile(r"^\s*(none|no|n/?a|null|-+|0)?\s*$", re.IGNORECASE)


def _contrast_agent(volume: Volume, card: ModelCard) -> list[str]:
    """A warning when the scan was acquired after a contrast agent and the model never saw one."""
    if card.space.get("contrast_agent"):
        return []
    agent = str(volume.meta.get("contrast_agent") or "").strip()
    if _NO_AGENT.match(agent):  # some scanners leave the agent empty and name its ingredient or route alone
        agent = str(volume.meta.get("contrast_ingredient") or "").strip()
    route = str(volume.meta.get("contrast_route") or "").strip()
    dicom = volume.meta.get("format") == "dicom"
    # The acquisition's own words: a DICOM series description, or a file's sidecar (dcm2niix, BIDS); and
    # for a file its name ("T1_MPRAGE_POST_GAD.nii.gz", "sub-01_ce-gadolinium_T1w.nii.gz").
    description = str(volume.meta.get("series_description" if dicom else "sidecar_description") or "")
    names = [] if dicom else [str(volume.meta.get("series_description") or ""), _file_name(volume)]
    if _WITHOUT_CONTRAST.search(description):
        return []  # "T1 PRE GAD": the description is the acquisition's own word
    # A name saying both ("T1_PRE_GAD") says before; it never overrules a header's agent.
    named = next((n for n in names if _contrast_name(n) and (_bids(n) or not _WITHOUT_CONTRAST.search(n))), None)
    if not _NO_AGENT.match(agent) and not _WITHOUT_CONTRAST.search(agent):
        why = f"its header names a contrast agent ({agent})"
    elif not _NO_AGENT.match(route) and not _WITHOUT_CONTRAST.search(route):
        why = f"its header gives the contrast agent's route ({route})"
    elif _POST_CONTRAST.search(description.replace("_", " ")):
        # A typed description can hold a name: only the DICOM one, shown in its own field anyway, is quoted.
        why = f"its series description ({description}) says so" if dicom else "its sidecar's series description says so"
    elif named:
        why = f"its file name ({named}) says so"
    else:
        return []
    return [
        f"The scan looks acquired after a contrast agent ({why}); the model {card.id} knows scans without one, "
        "so enhancing vessels, dura and choroid plexus can be found as regions. Read the findings with that in "
        "mind, or analyse the series acquired before the contrast agent."
    ]


#: DICOM's PatientAge: a number of days, weeks, months or years ("004M", "045Y").
_DICOM_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def _age_years(phi: dict) -> float | None:
    """The patient's age at the scan in years, from PatientAge or else the birth and study dates (None: unknown)."""
    import datetime

    match = _DICOM_AGE.match(str(phi.get("patient_age") or ""))
    if match:
        return int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2).upper()]
    try:
        born, scanned = (
            datetime.datetime.strptime(str(phi.get(k) or "").strip()[:8], "%Y%m%d").date()
            for k in ("patient_birth_date", "study_date")
        )
    except ValueError:
        return None
    days = (scanned - born).days
    return days / 365.25 if days >= 0 else None


def _child(volume: Volume, card: ModelCard) -> list[str]:
    """A warning when the header makes the patient a child and the model knows adult brains only.

    A child's head rarely reaches the alignment's small-head note, and an infant's grey/white contrast,
    halfway to isointense, still scores like a healthy adult's: only the header tells. The age is given as a
    band, never as itself: the outputs are de-identified.
    """
    if _norm(card.body_part) not in {_norm(p) for p in BODY_PART_SYNONYMS["BRAIN"]}:
        return []
    age = _age_years(volume.phi)
    if age is None or age >= 18:
        return []
    infant = age < 2
    return [
        f"The header makes the patient a child (under {2 if infant else 18} years); the model {card.id} learnt adult "
        "brains only. A child's brain differs in size and shape"
        + (", and under 2 years in its grey/white contrast (myelination)," if infant else ",")
        + " which can be found as regions or hide real ones: read the result with great caution."
    ]


#: A BIDS name starts with its subject entity ("sub-01_..."); other hyphens ("POST-GAD") are words.
_BIDS_ENTITY = re.compile(r"^sub-[a-z0-9]+(_|$)", re.IGNORECASE)
#: Words of a file name (not BIDS) that mark a contrast agent, whole words only ("sub-gd01" is a label);
#: with the names of public contrast-enhanced sets (BraTS "t1ce", "t1c"; TCIA "T1Gd").
_CONTRAST_TOKENS = {
    "gad",
    "gd",
    "gado",
    "km",
    "mdc",
    "ce",
    "contrast",
    "kontrast",
    "postgad",
    "postcontrast",
    "t1c",
    "t1ce",
    "t1gd",
    "t1post",
    "t1wce",
}


def _bids(name: str) -> bool:
    return bool(_BIDS_ENTITY.search(name))


def _contrast_name(name: str) -> bool:
    """Whether a file name says contrast agent: BIDS's ``ce-`` entity, or a contrast word of another name."""
    if _bids(name):
        return bool(_BIDS_CONTRAST.search(name))
    tokens = re.split(r"[_\-.\s]+", name.lower())
    return any(t in _CONTRAST_TOKENS for t in tokens) or bool(re.search(r"\+c(?![a-z])|(?<![a-z])c\+", name.lower()))


def _acquired_thickness(volume: Volume) -> float:
    """The slice thickness a DICOM header gives (0 when none, or not DICOM)."""
    value = volume.meta.get("slice_thickness") if _dicom(volume) else None
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) and value > 0 else 0.0


def _size_problem(volume: Volume, card: ModelCard) -> tuple[str | None, str]:
    """A scan far smaller or larger than the body part the model knows, and what to do about it.

    Even a slab of a head spans most of the head in-plane, so only a scan whose longest side is under a
    third of the model's field, or whose shortest is over five times it, is called wrong. Its cause is
    named where the header tells it: distances given in other units, or usual voxels but too few of them
    (a crop); else the voxel sizes themselves.

    Returns:
        (the problem, or None; the advice, a sentence without its full stop).
    """
    across = np.asarray(volume.shape[:3], dtype=np.float64) * np.asarray(volume.spacing, dtype=np.float64)
    model = np.asarray(card.shape, dtype=np.float64) * float(card.space.get("spacing", 1.0))
    if across.max() >= model.min() / 3 and across.min() <= 5 * model.max():
        return None, ""
    small = across.max() < model.min() / 3
    size = " x ".join(f"{v:.0f}" if v >= 100 else f"{v:.3g}" for v in across)
    voxels = " x ".join(f"{v:.3g}" for v in volume.spacing)
    problem = (
        f"the scan is {size} mm across, far {'smaller' if small else 'larger'} than the "
        f"{card.body_part.lower()} the model knows (its field is {' x '.join(f'{v:.0f}' for v in model)} mm)"
    )
    unit = volume.meta.get("space_unit")
    if unit:
        return (
            f"{problem}: its header gives distances in {unit}s (the NIfTI xyzt_units field), which makes its "
            f"voxels {voxels} mm; that units field is probably wrong",
            "Set the file's spatial units to mm (or convert the scan again from the original)",
        )
    if small and 0.3 <= min(volume.spacing) and max(volume.spacing) <= 10:
        shape = " x ".join(str(n) for n in volume.shape[:3])
        return (
            f"{problem}: its voxels ({voxels} mm) are of a usual size but it has only {shape} of them, so it "
            f"looks like a crop or a patch of a scan, not a whole {card.body_part.lower()}",
            "Open the whole scan",
        )
    return (
        f"{problem}: the voxel sizes in its header ({voxels} mm) are probably wrong",
        "Correct the voxel sizes in the file's header (or convert the scan again from the original)",
    )


# A scan, even one stored in 8 bits, has far more grey levels than this; a mask or a segmentation has
# a handful (background plus a few labels), and the model would only report how unlike a head it is.
MAX_LABEL_LEVELS = 8


#: File names that the common tools give their maps derived from a scan (values between 0 and 1, or
#: tissue classes, with few of a scan's features): BIDS derivatives, FSL FAST, SPM segment, FreeSurfer.
_DERIVED_NAMES = re.compile(
    r"(_(probseg|dseg|mask|pveseg|mixeltype|seg)(\.|$))|(_pve_\d)|(^(m?w?r?c[1-6])[a-z])"
    r"|(^(aseg|aparc[^/]*|wmparc|ribbon|filled|wm)\.(mgz|mgh|nii))",
    re.IGNORECASE,
)


#: ImageType values of diffusion series and the maps made from them (DICOM and vendors' own).
_DIFFUSION_TYPES = {"DIFFUSION", "ADC", "TRACEW", "TRACE", "FA", "EADC", "EXP", "DWI"}
#: Series descriptions and file names of diffusion series ("ep2d_diff", "DWI b1000", "sub-01_dwi.nii.gz").
_DIFFUSION_WORDS = re.compile(r"(^|[^a-z])(dwi|adc|dti|diff(usion)?|tracew|ep2d_diff)([^a-z]|$)", re.IGNORECASE)


def _diffusion(volume: Volume) -> str:
    """What says the scan is a diffusion series or a map of one, in words ("" when nothing does)."""
    b = volume.meta.get("b_value")
    if isinstance(b, (int, float)) and b > 0:
        return f"a diffusion-weighted series (b = {b:g} s/mm2)"
    types = sorted(_DIFFUSION_TYPES & {str(t).upper() for t in volume.meta.get("image_type") or ()})
    if types:
        return f"a diffusion series or a map of one (ImageType {', '.join(types)})"
    for text in (str(volume.meta.get("series_description") or ""), _file_name(volume)):
        if text and _DIFFUSION_WORDS.search(text):
            return f"a diffusion series or a map of one (named {text!r})"
    return ""


#: The descriptions medae writes into its own maps (a NIfTI's descrip), and what each is in words.
_OWN_MAPS = {"heatmap": "a heatmap", "findings": "a findings label map", "reconstruction": "a reconstruction"}


def _own_output(volume: Volume) -> str:
    """What the file is when it is one of medae's own maps (by the description medae writes), else ""."""
    if volume.meta.get("format") == "dicom":
        return ""
    text = str(volume.meta.get("series_description") or "").strip().lower()
    return _OWN_MAPS.get(text.split(" forced")[0].strip(), "")


def _derived_map_name(volume: Volume) -> str:
    """The file's name when it says a segmentation or probability map (``..._probseg.nii.gz``), else ""."""
    name = "" if volume.meta.get("format") == "dicom" else _file_name(volume)
    return name if name and _DERIVED_NAMES.search(name) else ""


def _file_name(volume: Volume) -> str:
    """The name of the file the scan came from ("" when none), whichever separator its path uses."""
    return str(volume.source or "").replace("\\", "/").rsplit("/", 1)[-1]


def _few_levels(array: np.ndarray) -> int:
    """The number of distinct values when it is at most ``MAX_LABEL_LEVELS``, else 0.

    Every analysis runs this, so a sparse sample settles a real scan (hundreds of levels) before the
    costlier sample that counts a label map's levels is sorted.
    """
    a = np.asarray(array)
    for step in (8, 2):
        sample = a[::step, ::step, ::step]
        n = np.unique(sample).size if sample.size else 0
        if n > MAX_LABEL_LEVELS:
            return 0
    return n if n > 1 else 0


#: Values beyond this cannot pass the 32-bit float stages (alignment, resampling) without overflowing.
MAX_MAGNITUDE = 1e30


def _largest_magnitude(array: np.ndarray) -> float:
    """The largest absolute value of a float scan (integers always fit); NaN were replaced on loading."""
    a = np.asarray(array)
    if a.dtype.kind != "f" or a.size == 0:
        return 0.0
    return float(max(abs(np.nanmax(a)), abs(np.nanmin(a))))


def _is_blank(array: np.ndarray) -> bool:
    """True when every voxel has one value; a sparse sample settles almost every real scan at once."""
    a = np.asarray(array)
    if a.size == 0:
        return True
    sample = a[::4, ::4, ::4]
    if sample.min() != sample.max():
        return False
    return bool(a.min() == a.max())


#: Below this coverage the covered part itself is judged less surely. Twelve axial slabs of 30 and 50 mm from two
#: healthy generated heads (28-53% coverage) scored at the 54th-100th percentile of the healthy calibration scans
#: (the whole heads: 26th and 38th), eight of them with 1-5 findings of up to 2.7 mL; a 70 mm slab (69%) scored
#: at the 45th, without findings.
SLAB_JUDGED_BELOW = 0.6


def check_coverage(coverage: float) -> list[str]:
    """A warning when so little of the brain is covered that the covered part is judged less surely too.

    Preparation already says that the rest is not assessed; that sentence alone read as if the part the
    scan covers were judged as surely as a whole scan.
    """
    if coverage >= SLAB_JUDGED_BELOW:
        return []
    return [
        f"With {coverage:.0%} of the brain's region in the scan, the part it covers is judged less surely as well: "
        "the alignment and the intensity scaling rest on that part alone, and the score compares it with whole "
        "healthy brains (healthy slabs covering 28-53% scored above 54-100% of healthy scans, most with 1-5 small "
        "findings). Read the score, its percentile and small findings with caution."
    ]


def check_alignment(ref_to_input: np.ndarray, metric: float | None, card: ModelCard, force: bool = False) -> list[str]:
    """Checks that registration found a plausible pose and a real match to the reference.

    Raises:
        ModelMismatchError: the scan does not resemble the reference at all (and ``force`` is False).
    """
    warnings: list[str] = []
    scales = np.linalg.svd(ref_to_input[:3, :3], compute_uv=False)
    limits = card.space.get("alignment_limits", ALIGNMENT_LIMITS)
    bad = []
    advice = f"Check that it is {_a(card.modality)} scan of the {card.body_part.lower()}"
    if scales.min() < limits["scale"][0] or scales.max() > limits["scale"][1]:
        what, advice = _scaling_cause(scales, card)
        bad.append(f"the alignment needed a scaling of {scales.min():.2f}-{scales.max():.2f} ({what})")
    elif float(np.mean(scales)) < SMALL_HEAD_BELOW:
        warnings.append(
            f"The {card.body_part.lower()} is smaller than the ones the model knows (about {np.mean(scales):.0%} of "
            "the reference's size; the healthy training and calibration heads needed 0.92-1.13). If it is a "
            "child's, read the result with caution: the model was trained on adults, and a child's brain differs."
        )
    if metric is not None and metric > limits["metric"]:
        bad.append(f"the scan matches the {card.body_part.lower()} reference poorly (similarity {-metric:.2f})")
        # A scan of something else both matches poorly and needs an odd scaling: the header is not the likely
        # cause then, and converting again would not help.
        advice = (
            f"It does not look like {_a(card.modality)} scan of the {card.body_part.lower()}: check that it is one "
            "(if it is, its header's voxel sizes or axes may be wrong: convert it again from the original DICOM)"
        )
    elif metric is not None and metric > limits["metric_warn"]:
        warnings.append(
            f"The alignment to the reference is weak (similarity {-metric:.2f}); check the heatmap's position."
        )
    if bad:
        text = "; ".join(bad)
        if not force:
            raise ModelMismatchError(
                f"The scan could not be aligned to the model's {card.body_part.lower()} reference: {text}. "
                f"{advice} (or pass --force)."
            )
        warnings.append(f"{FORCED} a failed alignment: {text}. Interpret the result with great caution.")
    return warnings


#: A mean alignment scaling below this is a head smaller than any the model was trained or calibrated on
#: (72 of those healthy heads: 0.92-1.13; the limit that refuses is the card's, 0.7 by default).
SMALL_HEAD_BELOW = 0.82


def _a(code: str) -> str:
    """``code`` with its article as it is read aloud: "an MR", "a CT"."""
    return f"{'an' if code[:1].upper() in 'AEFHILMNORSX' else 'a'} {code}"


def _scaling_cause(scales: np.ndarray, card: ModelCard) -> tuple[str, str]:
    """What an alignment scaling far from 1 most likely means, and what to do about it."""
    part = card.body_part.lower()
    if scales.max() / scales.min() > 1.35:
        # One axis stretched against another: no head is shaped so; the header's axes or voxel sizes are.
        return (
            "stretched along one axis against another, unlike any head: the header's voxel sizes or axes are "
            "likely mixed up",
            "Convert the scan again from the original DICOM (a slice thickness given for the wrong axis, or axes "
            "swapped, makes this)",
        )
    if scales.max() < 1.0:
        return (
            f"the {part} is far smaller than the adult ones the model knows, about {np.mean(scales):.0%} of their size",
            "A child's head is outside what the model was trained on (adults only); otherwise the header's voxel "
            "sizes are too small",
        )
    return (
        f"the {part} is far larger than the ones the model knows, about {np.mean(scales):.0%} of their size",
        "The header's voxel sizes are likely too large (another unit, or a wrong spacing)",
    )


# Correlation of an aligned scan with the model's reference inside the analysed region. With the
# brain-refined alignment, generated T1 heads score 0.60-0.75 (0.52-0.60 with three lesions of 18-22 mm);
# the same heads given T2 contrast score -0.57 to -0.69 and FLAIR-like contrast 0.24-0.38 (0.10-0.20
# under the whole-head fit alone, which aligned them worse). A model trained on one contrast cannot
# judge another.
# Correlation with the reference brain: healthy and diseased scans of the model's sequence lie far above
# 0.45; a T2 or PD inverts it; a CT (windowed, skull-stripped or stored with an offset, so that its
# Hounsfield units are not recognised) or a scan of something else barely correlates at all (0.08-0.26).
CONTRAST_LIMITS = {"refuse_below": 0.0, "unlike_below": 0.15, "warn_below": 0.45}


def contrast_similarity(image: np.ndarray, mask: np.ndarray, reference: np.ndarray) -> float | None:
    """Pearson correlation of the model-space image with the reference inside ``mask`` (None if undefined)."""
    from medae.model.brain_only import correlation

    return correlation(image, reference, mask)


def check_contrast(similarity: float | None, card: ModelCard, force: bool = False) -> list[str]:
    """Checks that the scan's tissue contrast resembles the one the model was trained on.

    Raises:
        ModelMismatchError: the contrast is inverted against the reference (a T2 or PD scan given to a
            T1 model, for example) or barely related to it (a CT), and ``force`` is False.
    """
    if similarity is None:
        return []
    limits = {**CONTRAST_LIMITS, **card.space.get("contrast_limits", {})}
    sequence = card.space.get("sequence") or _sequence_from_id(card.id)
    what = f"{sequence} " if sequence else ""
    if similarity < limits["refuse_below"]:
        text = (
            f"the scan's tissue contrast is inverted against the model's {what}reference (correlation "
            f"{similarity:.2f}); it looks like another sequence (T2, PD or FLAIR, for example) or another "
            "modality (PET, or a CT whose values are not Hounsfield units)"
        )
        if not force:
            raise ModelMismatchError(
                f"{text}. The model {card.id} was trained on {what}scans only and cannot judge this one; choose a "
                "model for this kind of scan (--model), or pass --force to analyse anyway.",
                problem=text,
            )
        return [f"{FORCED} a contrast mismatch: {text}. Interpret the result with great caution."]
    # Measured under the brain-refined alignment; under the whole-head fit alone FLAIR-like scans fall
    # as low (0.10-0.20), so a card without that stage only warns.
    unlike = limits["unlike_below"] if card.space.get("brain_refine_mm") is not None else limits["refuse_below"]
    if similarity < unlike:
        part = card.body_part.lower()
        text = (
            f"the scan barely resembles the model's {what}{part} reference (correlation {similarity:.2f}): "
            f"another modality (a CT, for example), another sequence, or not a {part} scan"
        )
        if not force:
            raise ModelMismatchError(
                f"{text}. The model {card.id} was trained on {what}{card.modality} scans of the {part} only and "
                "cannot judge this one; choose a model for this kind of scan (--model), or pass --force to "
                "analyse anyway."
            )
        return [f"{FORCED} a contrast mismatch: {text}. Interpret the result with great caution."]
    if similarity < limits["warn_below"]:
        return [
            f"The scan's tissue contrast differs from the model's {what}reference (correlation {similarity:.2f}): "
            "another sequence, another modality (a CT?), an unusual protocol, or a pose the alignment did not "
            "find (check that the heatmap lies on the anatomy). Much of the heatmap may reflect that, not disease."
        ]
    return []


def _sequence_from_id(model_id: str) -> str:
    for seq in ("t1", "t2", "flair", "pd"):
        if seq in model_id.lower().replace("_", "-").split("-"):
            return seq.upper()
    return ""
