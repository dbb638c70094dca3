"""Label layout: measurement labels drawn close together do not cover each other."""

from medae.viewer.labels import place_labels


def overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_labels_wanted_in_one_place_are_stacked_nearby():
    bounds = (0.0, 0.0, 400.0, 300.0)
    wanted = [(100.0, 100.0, 60.0, 14.0)] * 3 + [(105.0, 104.0, 40.0, 42.0)]
    placed = place_labels(wanted, bounds)
    assert placed[0] == wanted[0]  # the first keeps its place
    for n, a in enumerate(placed):
        for b in placed[n + 1 :]:
            assert not overlap(a, b)
        assert a[2:] == wanted[n][2:]  # sizes kept
        assert 0 <= a[0] <= 400 - a[2] and 0 <= a[1] <= 300 - a[3]
        # Near: within a few label heights of where it was wanted, not thrown to a corner.
        assert abs(a[1] - wanted[n][1]) <= 60 and abs(a[0] - wanted[n][0]) <= 70


def test_labels_stay_inside_and_keep_their_place_when_there_is_no_room():
    bounds = (0.0, 0.0, 60.0, 20.0)
    placed = place_labels([(50.0, 15.0, 50.0, 14.0), (0.0, 0.0, 50.0, 14.0)], bounds)
    assert placed[0] == (10.0, 6.0, 50.0, 14.0)  # pushed inside the bounds
    assert placed[1] == (0.0, 0.0, 50.0, 14.0)  # nowhere free: its own place, rather than outside the view


def test_labels_apart_stay_where_they_are():
    wanted = [(10.0, 10.0, 50.0, 14.0), (10.0, 200.0, 50.0, 14.0)]
    assert place_labels(wanted, (0.0, 0.0, 300.0, 300.0)) == wanted
