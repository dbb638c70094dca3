"""What an alignment's scaling says about the scan: a child's head, a header with mixed-up axes."""

from pathlib import Path

import numpy as np
import pytest

from medae.analysis.checks import check_alignment
from medae.errors import ModelMismatchError
from medae.model.card import ModelCard

CARD = ModelCard.read(Path(__file__).resolve().parents[1] / "models" / "brain-t1-dae" / "card.json")


def _scaled(*s):
    m = np.eye(4)
    m[:3, :3] = np.diag(s) @ np.array([[0.96, -0.28, 0], [0.28, 0.96, 0], [0, 0, 1.0]])  # with a rotation
    return m


def test_an_adult_head_gets_no_note():
    assert check_alignment(_scaled(0.95, 1.0, 1.05), -0.7, CARD) == []


def test_a_small_head_is_named_as_possibly_a_childs():
    (note,) = check_alignment(_scaled(0.72, 0.74, 0.76), -0.7, CARD)
    assert "smaller than the ones the model knows" in note and "child" in note


@pytest.mark.parametrize(
    ("scales", "said"),
    [
        ((0.66, 0.68, 0.69), "A child's head is outside what the model was trained on"),
        ((1.6, 1.6, 1.65), "voxel sizes are likely too large"),
        ((0.66, 1.59, 1.0), "axes are likely mixed up"),
    ],
)
def test_a_refused_scaling_names_its_likely_cause(scales, said):
    with pytest.raises(ModelMismatchError, match=said):
        check_alignment(_scaled(*scales), -0.7, CARD)
    forced = check_alignment(_scaled(*scales), -0.7, CARD, force=True)
    assert any("Forced past a failed alignment" in w or "failed alignment" in w for w in forced)


def test_an_odd_scaling_with_a_poor_match_says_the_scan_is_not_a_head_before_blaming_its_header():
    """An abdomen stretched to a head both matches poorly and needs an odd scaling: converting again won't help."""
    with pytest.raises(ModelMismatchError, match=r"does not look like an MR scan of the brain: check that it is one"):
        check_alignment(_scaled(0.66, 1.59, 1.0), -0.19, CARD)
