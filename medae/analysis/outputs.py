"""Writes an analysis: NIfTI heatmap and findings on the input grid, report.json, and DICOM on request."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medae.analysis.result import AnalysisResult
from medae.atomic import remove_leftovers, write_text
from medae.errors import MedaeError, OutputError, PartialOutputError
from medae.io.nifti import save_nifti


def write_outputs(
    result: AnalysisResult,
    out_dir: str | Path,
    *,
    dicom: bool = False,
    keep_phi: bool = False,
    reconstruction: bool = False,
    extra_report: dict | None = None,
    extra_files: dict[str, Path] | None = None,
    later: tuple[str, ...] = (),
) -> dict[str, Path]:
    """Writes the result into ``out_dir``; every file atomically.

    An earlier run's outputs there (``OUTPUT_NAMES``, other than ``extra_files``) are removed first, so that
    a run stopped halfway never leaves them beside the new ones; other files are never touched.

    Files: ``heatmap.nii.gz`` (float32, input shape and affine), ``findings.nii.gz`` (int16 labels),
    ``report.json``; with ``reconstruction``, ``reconstruction.nii.gz``; with ``dicom`` (DICOM input or
    not), ``heatmap_pmap.dcm`` (Parametric Map) and, when there are findings, ``findings_seg.dcm``
    (Segmentation), both de-identified unless ``keep_phi``; when the DICOM export fails, everything else is
    still written (the failure among the report's warnings) and ``PartialOutputError`` is raised.
    ``extra_report`` is merged into the report; ``extra_files`` (name -> path) are files the caller wrote
    into the folder, listed in the report too; ``later`` names files the caller writes there afterwards,
    and then the report itself (the incomplete report stands until then).

    Raises:
        OutputError: A file of one of these names is in the folder and no medae report there lists it
            (it may be a scan of the user's): nothing is written.

    Returns:
        Name -> path of everything written (and of ``extra_files``).
    """
    out = Path(out_dir)
    check_not_source(result.volume, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc}).") from exc
    planned = ["heatmap.nii.gz", "findings.nii.gz", *later, *(Path(p).name for p in (extra_files or {}).values())]
    if reconstruction and result.reconstruction is not None:
        planned.append("reconstruction.nii.gz")
    if dicom:
        planned += ["heatmap_pmap.dcm", "findings_seg.dcm"]
    # Files of these names that no medae report lists are someone else's: refused before anything changes.
    # The rest are listed in a report marked incomplete until the real one replaces it, so that a run killed
    # midway leaves files that are recognised as results (not scans) and are replaced by the next run.
    claim_outputs(out, planned)
    # An earlier run's results go before any new file is written: a run stopped halfway (Ctrl-C, a kill, a
    # full disk) then leaves part of one result, never one scan's heatmap beside another's findings and report.
    remove_stale_outputs(out, {**(extra_files or {}), "report": out / "report.json"})
    written: dict[str, Path] = {}
    written["heatmap"] = save_nifti(marked(result.heatmap, result), out / "heatmap.nii.gz", dtype=np.float32)
    written["findings"] = save_nifti(marked(result.labels, result), out / "findings.nii.gz", dtype=np.int16)
    if reconstruction and result.reconstruction is not None:
        written["reconstruction"] = save_nifti(
            marked(result.reconstruction, result), out / "reconstruction.nii.gz", dtype=np.float32
        )
    failed = None
    if dicom:
        try:
            written.update(_write_dicom(result, out, keep_phi))
        except MedaeError as exc:
            # An optional export must not cost the analysis: the report and the NIfTI files are written,
            # with the failure among the warnings.
            failed = f"The DICOM export failed: {exc}"
            result.warnings.append(failed)
    written.update(extra_files or {})  # files the caller wrote beside these (the summary image)
    if later:
        # The caller writes more files, then the report: until then the incomplete one lists them all, so
        # that a kill in between leaves nothing that no report lists.
        if failed:  # the report follows from the caller, with the failure among its warnings
            raise PartialOutputError(f"{failed} The heatmap, findings and report.json were written to {out}.", written)
        return written
    report = result.report()
    if extra_report:
        report.update(extra_report)
    report["files"] = {k: Path(p).name for k, p in written.items()}
    deidentify_report(report, keep_phi)
    written["report"] = out / "report.json"
    write_text(written["report"], json.dumps(report, indent=2) + "\n")
    if failed:
        raise PartialOutputError(f"{failed} The heatmap, findings and report.json were written to {out}.", written)
    return written


def marked(volume, result: AnalysisResult):
    """``volume`` whose NIfTI description says that the analysis was forced, when it was.

    A map opened alone in another viewer then still tells that its scan was not one the model can judge.
    """
    if not result.forced:
        return volume
    from dataclasses import replace

    kind = volume.meta.get("kind", "map")
    return replace(volume, meta={**volume.meta, "nifti_descrip": f"{kind} FORCED past a model check: see report.json"})


def deidentify_report(report: dict, keep_phi: bool) -> dict:
    """``report`` (changed in place) without the source's folders and description, its UIDs pseudonymised.

    Every writer of report.json goes through here, so that none of them leaves the real UID in.
    """
    from medae.io.deid import Deidentification, without_uids

    if keep_phi:
        return report
    given = report.get("input") or {}
    if given.get("source"):
        source = Path(str(given["source"]))
        if source.is_dir():
            # A series' own folder is named for its patient as often as not; the series' pseudonymous UID
            # below says which series it was.
            given.pop("source")
        else:
            # Files of an archive are often named by their UIDs: those become the pseudonyms too.
            given["source"] = without_uids(source.name)
    # The basic profile removes Series Description: typed at the console, it can hold a patient's name.
    given.pop("series_description", None)
    if given.get("series_uid"):
        # The pseudonymous UID the DICOM exports refer to the series by (the same mapping).
        given["series_uid"] = Deidentification().uid(given["series_uid"])
    if isinstance(report.get("warnings"), list):  # "part 2 of series <UID>, which was split ..."
        report["warnings"] = [without_uids(str(w)) for w in report["warnings"]]
    return report


def _write_dicom(result: AnalysisResult, out: Path, keep_phi: bool) -> dict[str, Path]:
    from medae.io.dicom_export import write_parametric_map, write_segmentation

    written = {
        "parametric_map": write_parametric_map(
            result.heatmap,
            result.volume,
            out / "heatmap_pmap.dcm",
            units_description=f"anomaly score, {result.units}",
            keep_phi=keep_phi,
            model_id=result.model_id,
        )
    }
    if result.findings:
        written["segmentation"] = write_segmentation(
            result.labels,
            result.volume,
            out / "findings_seg.dcm",
            segment_descriptions=[f.describe() for f in result.findings],
            model_id=result.model_id,
            keep_phi=keep_phi,
        )
    return written


#: Every file name a run of the analysis may write into its folder (the command line adds the summary image).
OUTPUT_NAMES = (
    "heatmap.nii.gz",
    "findings.nii.gz",
    "reconstruction.nii.gz",
    "heatmap_pmap.dcm",
    "findings_seg.dcm",
    "summary.png",
    "summary_sc.dcm",
    "report.json",
)


def check_not_source(volume, out_dir: str | Path) -> None:
    """Refuses an output folder where a result's file name is one of the scan's own files.

    A scan named like an output (``heatmap.nii.gz``) in the folder its results go to would be replaced,
    or removed as an earlier run's file.

    Raises:
        OutputError: naming the file.
    """
    from medae.io.loader import is_source_of

    out = Path(out_dir)
    if volume is None or not out.is_dir():
        return
    for name in OUTPUT_NAMES:
        if is_source_of(out / name, volume):
            raise OutputError(
                f"{out / name} is the scan's own file, and the results would be written over it; medae never "
                "overwrites a source. Choose another output folder."
            )


#: What report.json says while a run is writing the files it lists (replaced by the real report at its end).
INCOMPLETE = "incomplete: the run writing these results was stopped before it finished; run it again"


def medae_files(out_dir: str | Path) -> set[str] | None:
    """The output names that medae's report.json in ``out_dir`` lists as its own (itself included).

    None when the folder holds no report.json, or one that is not medae's.
    """
    try:
        report = json.loads((Path(out_dir) / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = report.get("files") if isinstance(report, dict) else None
    if not isinstance(files, dict):
        return None
    return {str(v) for v in files.values()} | {"report.json"}


def check_outputs(out_dir: str | Path, names: Iterable[str]) -> None:
    """Refuses, before any work, output names in ``out_dir`` that are files no medae report there lists.

    Raises:
        OutputError: naming them (see ``claim_outputs``).
    """
    _foreign(Path(out_dir), {*names, "report.json"})


def _foreign(out: Path, names: set[str]) -> set[str]:
    """``medae_files(out)``, after refusing any of ``names`` that is a file of someone else's there."""
    ours = medae_files(out) or set()
    foreign = sorted(n for n in names if n not in ours and (out / n).exists())
    if foreign:
        one = len(foreign) == 1
        raise OutputError(
            f"{out} holds {', '.join(foreign)}, which medae would write over, but no medae report there lists "
            f"{'it' if one else 'them'}: {'it may be a file' if one else 'they may be files'} of yours. Choose "
            f"another output folder, or move {'it' if one else 'them'} away."
        )
    return ours


def claim_outputs(out_dir: str | Path, names: Iterable[str], own_folder: bool = False) -> None:
    """Makes ``names`` medae's to write in ``out_dir``, or refuses them when one is someone else's file.

    A file of an output's name that no medae report there lists (a scan called ``reconstruction.nii.gz``, a
    picture called ``summary.png``) would be replaced or removed: the run is refused instead. Otherwise
    report.json is replaced by one marked incomplete that lists the earlier run's files and these, so that
    whatever a kill leaves is known as medae's.

    Args:
        out_dir: The output folder.
        names: The files about to be written there.
        own_folder: The folder is one medae made for its results (a batch run's series folder): every file
            of an output's name there is medae's, even one a killed run left without a report.

    Raises:
        OutputError: naming the files that are not medae's.
    """
    out = Path(out_dir)
    names = {*names, "report.json"}
    ours = {n for n in OUTPUT_NAMES if (out / n).is_file()} if own_folder else _foreign(out, names)
    listed = sorted((ours | names) - {"report.json"})
    write_text(
        out / "report.json", json.dumps({"status": INCOMPLETE, "files": {n: n for n in listed}}, indent=2) + "\n"
    )


def remove_stale_outputs(out_dir: str | Path, written: dict[str, Path]) -> list[str]:
    """Removes the outputs of an earlier run into the same folder that this run did not write again.

    A Segmentation of findings the new run no longer has, or a summary of another scan, must not stand
    beside the new results. Only files that medae's report in the folder lists are touched (see
    ``claim_outputs``): a file of the same name that is not medae's is left alone.

    Returns:
        The names removed.
    """
    out = Path(out_dir)
    remove_leftovers(out, OUTPUT_NAMES)  # half-written files of a run that was killed
    keep = {Path(p).name for p in written.values()}
    ours = medae_files(out) or set()
    removed = []
    for name in OUTPUT_NAMES:
        path = out / name
        if name not in keep and name in ours and path.is_file():
            try:
                path.unlink()
            except OSError as exc:
                raise OutputError(
                    f"{path}: an output of an earlier run cannot be removed ({exc.strerror or exc}); remove it, or "
                    "choose an empty output folder."
                ) from exc
            removed.append(name)
    return removed
