"""A tissue contrast unlike the healthy T1 scans' (not inverted) is warned of; healthy contrast is not."""

import numpy as np
import pytest

from medae.analysis.tissue import MARGIN, TissueContrast, check_tissue_contrast, healthy_range, tissue_contrast

HEALTHY = {"n_scans": 3, "grey_place": [0.35, 0.77], "csf_white": [0.2, 0.56], "dark_white": [0.12, 0.19]}


def test_a_contrast_within_the_healthy_range_or_its_margin_is_not_warned_of():
    assert check_tissue_contrast(TissueContrast(0.6, 0.4, 0.15), HEALTHY) == []
    # Just beyond the range but inside the margin: the calibration did not see every healthy scan.
    edge = 0.77 + 0.9 * MARGIN * (0.77 - 0.35)
    assert check_tissue_contrast(TissueContrast(edge, 0.4, 0.15), HEALTHY) == []


@pytest.mark.parametrize(
    ("measure", "said"),
    [
        (TissueContrast(0.95, 0.4, 0.15), "grey and white matter barely differ"),
        (TissueContrast(0.1, 0.4, 0.15), "differ far more than in healthy T1"),
        (TissueContrast(0.6, 0.8, 0.15), "CSF is far brighter"),
        (TissueContrast(0.6, 0.05, 0.15), "CSF is far darker"),
        (TissueContrast(0.6, 0.4, 0.45), "a gamma below 1"),
        (TissueContrast(0.6, 0.4, 0.01), "a gamma above 1"),
    ],
)
def test_a_contrast_beyond_the_margin_names_what_differs_and_what_to_do(measure, said):
    (warning,) = check_tissue_contrast(measure, HEALTHY)
    assert said in warning and "healthy" in warning and "original T1-weighted series" in warning


def test_nothing_is_checked_without_a_recorded_range_or_where_the_zero_is_not_trusted():
    assert check_tissue_contrast(TissueContrast(0.95, 0.4, 0.15), None) == []
    assert check_tissue_contrast(TissueContrast(0.6, 0.4, None), HEALTHY) == []


def test_the_relations_follow_the_reference_tissue_classes():
    rng = np.random.default_rng(0)
    reference = rng.choice([0.3, 0.65, 0.9], size=(20, 20, 20)).astype(np.float32)
    image = np.select([reference < 0.4, reference < 0.7], [0.3, 0.7], 1.0).astype(np.float32)
    mask = np.ones(image.shape, bool)
    m = tissue_contrast(image, mask, reference, {"method": "percentile", "low": 100.0, "high": 900.0}, True)
    assert m.grey_place == pytest.approx(0.4 / 0.7) and m.csf_white == pytest.approx(0.3)
    assert m.dark_white == pytest.approx(100.0 / 900.0)
    # A stored zero that need not be the absence of signal leaves the stored-value relation out.
    assert (
        tissue_contrast(image, mask, reference, {"method": "percentile", "low": 100.0, "high": 900.0}, False).dark_white
        is None
    )
    assert healthy_range([m, m]) == {
        "n_scans": 2,
        "grey_place": [round(m.grey_place, 4)] * 2,
        "csf_white": [0.3, 0.3],
        "dark_white": [round(100 / 900, 4)] * 2,
    }


@pytest.mark.slow
def test_remapped_and_flattened_contrast_is_warned_of_and_the_healthy_scan_is_not():
    from medae.analysis import analyze
    from medae.model import load_model
    from medae.training.healthy import generate_healthy, head_distance
    from medae.training.template import load_template

    model = load_model(device="cpu")
    template = load_template()
    scan = generate_healthy(template, 880931, head_distance(template))
    vol = scan.volume
    said = "tissue contrast is unlike that of the healthy T1 scans"

    clean = analyze(vol, model, reconstruction=False)
    assert not any(said in w for w in clean.warnings), clean.warnings
    assert set(clean.extra["tissue_contrast"]) == {"grey_place", "csf_white", "dark_white"}

    # Values remapped by a gamma of 0.4 on export: still a T1 by its correlation, so no other warning said it.
    arr = vol.array.astype(np.float32)
    top = float(arr.max())
    gamma = analyze(vol.with_array(np.round(top * (arr / top) ** 0.4).astype(np.int16)), model, reconstruction=False)
    assert any(said in w and "a gamma below 1" in w for w in gamma.warnings), gamma.warnings

    # Grey matter as bright as white matter (a FLAIR-like protocol with bright white matter).
    grey = np.clip(scan.gm, 0, 1)
    wm_level = float(np.median(arr[scan.wm > 0.9]))
    flat = arr + grey * (wm_level - arr) * (scan.brain > 0.5)
    flattened = analyze(vol.with_array(np.round(flat).astype(np.int16)), model, reconstruction=False)
    assert any(said in w and "barely differ" in w for w in flattened.warnings), flattened.warnings
