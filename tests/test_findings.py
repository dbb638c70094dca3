"""Findings: which side of the patient each region lies on."""

from __future__ import annotations

import numpy as np

from medae.analysis.findings import extract_findings


def _sides(heat: np.ndarray, affine: np.ndarray, **kw) -> dict[float, str]:
    _labels, findings = extract_findings(heat, affine, threshold=1.0, min_region_ml=0.0, **kw)
    return {round(f.centroid_world[0]): f.side for f in findings}


def test_a_region_across_the_midline_is_bilateral_and_others_keep_their_side():
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = (-40.0, -20.0, -10.0)  # voxel x index 40 is world x = 0, the midline
    heat = np.zeros((81, 40, 20), np.float32)
    heat[20:60, 5:10, 5:10] = 5.0  # x from -20 to +19 mm: half on each side
    heat[28:45, 20:25, 5:10] = 5.0  # x from -12 to +4 mm: mostly on the left
    heat[70:75, 30:35, 5:10] = 5.0  # x from +30 to +34 mm: right
    heat[3:8, 30:35, 5:10] = 5.0  # x from -37 to -33 mm: left
    sides = _sides(heat, affine)
    assert sides == {0: "bilateral", -4: "left", 32: "right", -35: "left"}


def test_a_faint_region_over_both_sides_around_a_strong_spot_is_bilateral():
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = (-40.0, -20.0, -10.0)
    heat = np.zeros((81, 40, 20), np.float32)
    heat[15:65, 5:30, 5:15] = 1.2  # faint, x from -25 to +24 mm
    heat[50:60, 10:20, 8:12] = 40.0  # strong, on the right: most of the excess
    (finding,) = extract_findings(heat, affine, threshold=1.0, min_region_ml=0.0)[1]
    assert finding.side == "bilateral"


def test_the_side_comes_from_the_reference_frame_when_the_scan_is_aligned():
    affine = np.eye(4)
    heat = np.zeros((40, 10, 10), np.float32)
    heat[30:35, 2:6, 2:6] = 5.0  # world x = +30..+34 (right in the scan's own frame)
    # A reference in which the head sits 50 mm to the left: the same region is on the left there.
    to_ref = np.eye(4)
    to_ref[0, 3] = -50.0
    assert _sides(heat, affine) == {32: "right"}
    assert _sides(heat, affine, to_reference=to_ref) == {32: "left"}
    # A region spanning the reference's midline (x = 50 in the scan's frame) is bilateral there.
    wide = np.zeros((120, 10, 10), np.float32)
    wide[30:70, 2:6, 2:6] = 5.0
    assert _sides(wide, affine, to_reference=to_ref) == {50: "bilateral"}


def test_widespread_findings_are_named_as_possibly_a_degraded_scan():
    from medae.analysis.findings import widespread_warnings as _widespread

    heat = np.zeros((81, 40, 20), np.float32)
    heat[70:75, 30:35, 5:10] = 5.0
    _labels, one = extract_findings(heat, np.eye(4), threshold=1.0, min_region_ml=0.0)
    assert _widespread(one) == []  # one small region: nothing to say
    for k in range(7):
        heat[10 * k : 10 * k + 3, 2:5, 2:5] = 5.0
    _labels, many = extract_findings(heat, np.eye(4), threshold=1.0, min_region_ml=0.0)
    (note,) = _widespread(many)
    assert "8 region(s)" in note and "degraded scan" in note
    big = np.zeros((60, 60, 40), np.float32)
    big[:, :, :] = 5.0  # one region of 144 mL
    _labels, large = extract_findings(big, np.eye(4), threshold=1.0, min_region_ml=0.0)
    assert "144 mL" in _widespread(large)[0]


def test_findings_where_a_cut_head_would_fold_over_are_named():
    from medae.analysis.findings import wrap_warnings

    # Axes: i left-right, j back-front (RAS), k bottom-top; 2 mm voxels.
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    head = np.zeros((60, 80, 60), np.float32)
    head[10:50, 8:72, 0:50] = 100.0  # air on every side but the bottom (the neck leaves the field)
    labels = np.zeros(head.shape, np.int16)
    labels[25:30, 9:13, 20:25] = 1  # at the back, 2-10 mm inside the field's back edge
    assert wrap_warnings(head, affine, labels) == []  # nothing cut: no fold
    noisy = head.copy()
    speckle = np.random.default_rng(1).random(head.shape) < 0.03
    noisy[speckle & (head == 0)] = 20.0  # air noise peaking at a fifth of the tissue: no tissue at the edge
    assert wrap_warnings(noisy, affine, labels) == []
    cut = head.copy()
    cut[10:50, 8:, 0:50] = 100.0  # the face runs out of the field at the front
    (note,) = wrap_warnings(cut, affine, labels)
    assert "front edge" in note and "finding 1 lies within 40 mm" in note and "wrap-around" in note
    far = np.zeros_like(labels)
    far[25:30, 40:44, 20:25] = 1  # mid-head, 80 mm from the back edge: not where a fold lands
    assert wrap_warnings(cut, affine, far) == []
    # Flipped storage (index growing backwards) names the same edge.
    flipped = np.diag([2.0, -2.0, 2.0, 1.0])
    (note,) = wrap_warnings(cut[:, ::-1], flipped, labels[:, ::-1])
    assert "front edge" in note
    # A scan cut only at the bottom: the neck, no warning.
    neck = np.zeros_like(labels)
    neck[25:30, 30:35, 40:48] = 1  # near the top edge, opposite the bottom
    assert wrap_warnings(head, affine, neck) == []


def test_a_redrawn_result_names_only_its_own_findings_in_its_warnings():
    from medae.analysis.findings import finding_warnings
    from medae.analysis.result import AnalysisResult
    from medae.volume import Volume

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    head = np.zeros((60, 80, 60), np.float32)
    head[10:50, 8:, 0:50] = 100.0  # cut at the front
    heat = np.zeros(head.shape, np.float32)
    heat[25:30, 9:13, 20:25] = 12.0  # near the back edge: where a fold lands
    heat[25:30, 40:44, 20:25] = 6.0  # mid-head, fainter
    vol = Volume(head, affine, "MR")
    labels, findings = extract_findings(heat, affine, 8.0, 0.01)
    notes = finding_warnings(findings, labels, vol, True)
    assert len(notes) == 1 and "finding 1 lies" in notes[0]
    first = AnalysisResult(
        vol,
        vol.with_array(heat),
        vol.with_array(labels),
        None,
        None,
        findings,
        5.0,
        50.0,
        8.0,
        "z",
        "m",
        "",
        "cpu",
        warnings=["a warning about the scan", *notes],
        wrap_check=True,
        finding_notes=notes,
    )
    lower = first.at_threshold(5.0)  # both regions, ranked again
    assert len(lower.findings) == 2 and lower.warnings[0] == "a warning about the scan"
    rank = next(f.label for f in lower.findings if f.peak > 10)
    (note,) = lower.finding_notes
    assert f"finding {rank} lies" in note and lower.warnings == ["a warning about the scan", note]
    higher = lower.at_threshold(20.0)  # no finding: nothing to say about findings, the scan's warning stays
    assert higher.findings == [] and higher.finding_notes == [] and higher.warnings == ["a warning about the scan"]


def test_findings_at_a_face_that_cuts_the_head_are_named():
    from medae.analysis.findings import cut_edge_warnings

    affine = np.diag([1.0, 1.0, 2.0, 1.0])  # RAS, 2 mm slices: k = 0 is the bottom face
    head = np.zeros((40, 40, 30), np.float32)
    head[5:35, 5:35, 0:25] = 100.0  # a head whose lower part the field of view cuts off; air above it
    labels = np.zeros(head.shape, np.int16)
    labels[18:22, 18:22, 3:6] = 2  # 6-12 mm above the cut
    labels[18:22, 18:22, 14:17] = 1  # well inside
    (note,) = cut_edge_warnings(head, affine, labels)
    assert note.startswith("Finding 2 lies within 12 mm of the bottom edge")
    assert cut_edge_warnings(head, affine, np.where(labels == 1, 1, 0)) == []
    closed = np.zeros_like(head)
    closed[5:35, 5:35, 3:25] = 100.0  # the whole head inside the field: air at every face
    assert cut_edge_warnings(closed, affine, labels) == []
    flipped = affine.copy()
    flipped[2, 2], flipped[2, 3] = -2.0, 58.0  # k = 0 is now the top face
    assert "top edge" in cut_edge_warnings(head, flipped, labels)[0]


def test_findings_where_a_cut_part_of_the_head_would_fold_are_named():
    from medae.analysis.findings import wrap_warnings

    affine = np.diag([1.0, 1.0, 1.0, 1.0])  # RAS: i = 0 is the left face
    head = np.zeros((120, 60, 40), np.float32)
    head[0:100, 10:50, 5:35] = 100.0  # cut at the left face, air at the right one
    labels = np.zeros(head.shape, np.int16)
    labels[100:104, 28:32, 18:22] = 1  # within 40 mm of the right face, where the left part folds to
    (note,) = wrap_warnings(head, affine, labels)
    assert note.startswith("The head reaches the left edge") and "finding 1 lies within 40 mm" in note
    labels[:] = 0
    labels[30:34, 28:32, 18:22] = 1  # far from it
    assert wrap_warnings(head, affine, labels) == []
    thick = np.diag([3.0, 1.0, 1.0, 1.0])  # the cut axis is now a thick slice axis: slices cannot fold
    labels[100:104] = 1
    assert wrap_warnings(head, thick, labels) == []


def test_a_reversed_axis_in_a_file_without_orientation_names_the_missing_header():
    import pytest

    from medae.analysis.orientation import FlipMatch, check_orientation
    from medae.errors import ModelMismatchError

    match = FlipMatch("front-back (anterior-posterior)", 0.75, 0.34)
    with pytest.raises(ModelMismatchError, match=r"axis reversed.*stores no valid orientation, so a default one"):
        check_orientation(match, assumed=True)
    with pytest.raises(ModelMismatchError, match=r"NIfTI files whose qform and sform codes are 0, must be converted"):
        check_orientation(match, assumed=True)
    with pytest.raises(ModelMismatchError) as err:
        check_orientation(match)
    # A file that stores an orientation is not told it is an Analyze file without one.
    assert "default one was assumed" not in str(err.value) and "Analyze" not in str(err.value)
    assert check_orientation(None, assumed=True) == []


def test_measuring_regions_stops_when_cancelled():
    import threading

    import pytest

    from medae.errors import CancelledError

    heat = np.zeros((30, 30, 30), np.float32)
    heat[5:10, 5:10, 5:10] = 20.0
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        extract_findings(heat, np.eye(4), 8.0, 0.0, cancel=cancel)
    labels, findings = extract_findings(heat, np.eye(4), 8.0, 0.0, cancel=threading.Event())
    assert len(findings) == 1 and labels.max() == 1


def test_a_finding_brighter_than_any_tissue_is_named_as_a_likely_artefact():
    from medae.analysis.findings import bright_warnings

    array = np.full((20, 20, 20), 100.0, np.float32)
    labels = np.zeros((20, 20, 20), np.int32)
    labels[2:5, 2:5, 2:5] = 1  # a lesion as bright as tissue can be
    array[2:5, 2:5, 2:5] = 250.0
    labels[10:13, 10:13, 10:13] = 2  # a metal clip's bright rim
    array[11, 11, 11] = 900.0
    (note,) = bright_warnings(array, labels, too_bright=300.0)
    assert note.startswith("Finding 2 holds values brighter than any tissue") and "artefact" in note
    assert bright_warnings(array, labels, too_bright=None) == []  # a model without a tissue scale: not checked
    assert bright_warnings(array, np.where(labels == 2, 0, labels), too_bright=300.0) == []
    # Values remapped (squared): the scalp's fat is beyond three times white matter too, and a lesion as bright
    # as it is tissue, not metal; the clip's rim stays brighter than anything else.
    array[15:20, :, :] = 400.0
    array[2:5, 2:5, 2:5] = 380.0
    (note,) = bright_warnings(array, labels, too_bright=300.0)
    assert note.startswith("Finding 2 holds")
