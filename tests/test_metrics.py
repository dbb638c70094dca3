import numpy as np
import pytest

from medae.training import metrics as M


def hists(scores, labels):
    scores, labels = np.asarray(scores), np.asarray(labels, bool)
    return M.code_histogram(scores[labels]), M.code_histogram(scores[~labels])


# --- average precision ---------------------------------------------------------------------------------


def test_ap_perfect_inverted_and_hand_computed():
    labels = [1, 1, 0, 0]
    assert M.average_precision([0.9, 0.8, 0.2, 0.1], labels) == pytest.approx(1.0)
    # Inverted: negatives first; positives reached at ranks 3 and 4: 0.5 * 1/3 + 0.5 * 2/4.
    assert M.average_precision([0.1, 0.2, 0.8, 0.9], labels) == pytest.approx(0.5 / 3 + 0.25)
    # Ranks of positives 1 and 3: 0.5 * 1 + 0.5 * 2/3.
    assert M.average_precision([0.9, 0.3, 0.5, 0.1], labels) == pytest.approx(0.5 + 1 / 3)


def test_ap_ties_form_one_threshold_and_random_scores_give_prevalence():
    # All tied: one threshold with precision = prevalence.
    assert M.average_precision(np.ones(10), [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]) == pytest.approx(0.2)
    rng = np.random.default_rng(0)
    y = rng.random(200_000) < 0.05
    ap = M.average_precision(rng.random(y.size), y)
    assert ap == pytest.approx(y.mean(), abs=0.005)
    assert np.isnan(M.average_precision([0.1, 0.2], [0, 0]))


def test_exact_metrics_match_scikit_learn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.random(5000) < 0.1
    s = rng.normal(size=y.size) + 1.2 * y
    s[::7] = np.round(s[::7], 1)  # some ties
    assert M.average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert M.roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_roc_auc_hand_cases():
    assert M.roc_auc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 1.0
    assert M.roc_auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert M.roc_auc([0.5, 0.5, 0.5, 0.5], [1, 1, 0, 0]) == 0.5
    # One of four pairs inverted.
    assert M.roc_auc([0.9, 0.3, 0.5, 0.1], [1, 1, 0, 0]) == 0.75


# --- histograms --------------------------------------------------------------------------------------


def test_score_codes_preserve_order_and_round_trip():
    v = np.array([-70000.0, -3.5, -1e-3, -0.0, 0.0, 1e-6, 0.25, 1.0, 1.001, 7.0, 65504.0, 1e9], np.float32)
    codes = M.score_codes(v).astype(np.int64)
    assert np.all(np.diff(codes) >= 0)
    # Values float16 holds exactly come back exactly.
    exact = np.array([-3.5, 0.0, 0.25, 1.0, 7.0], np.float32)
    np.testing.assert_array_equal(M.code_values(M.score_codes(exact)), exact)
    # Distinct codes for values 0.2% apart.
    assert M.score_codes(np.float32(1.0)) != M.score_codes(np.float32(1.002))


def test_histogram_metrics_equal_exact_metrics():
    rng = np.random.default_rng(2)
    y = rng.random(50_000) < 0.03
    s = (rng.normal(size=y.size) + 2.0 * y).astype(np.float32)
    pos, neg = hists(s, y)
    assert float(M.hist_average_precision(pos, neg)) == pytest.approx(M.average_precision(s, y), abs=2e-3)
    assert float(M.hist_roc_auc(pos, neg)) == pytest.approx(M.roc_auc(s, y), abs=1e-3)
    # Scores float16 holds exactly: no quantisation at all, so the same numbers.
    q = np.round(s * 8) / 8
    pos, neg = hists(q, y)
    assert float(M.hist_average_precision(pos, neg)) == pytest.approx(M.average_precision(q, y), abs=1e-12)
    assert float(M.hist_roc_auc(pos, neg)) == pytest.approx(M.roc_auc(q, y), abs=1e-12)


def test_best_dice_hand_computed():
    # Thresholds 0.9: 2/3, 0.8: 1/2, 0.3: 4/5, 0.2: 2/3 -> best 0.8 when predicting >= 0.3.
    pos, neg = hists([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0])
    pos, neg = M.compact_columns(pos, neg)
    best, col = M.hist_best_dice(pos, neg)
    assert float(best) == pytest.approx(0.8)
    used = np.nonzero(M.code_histogram(np.array([0.9, 0.8, 0.3, 0.2])))[0]
    assert float(M.code_values(used[int(col)])) == pytest.approx(0.3, abs=1e-3)
    # Works on stacks (bootstrap replicates) too.
    best2, _ = M.hist_best_dice(np.stack([pos, pos]), np.stack([neg, neg]))
    np.testing.assert_allclose(best2, [0.8, 0.8])


def test_dice_and_region_overlaps():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0:4, 0:5] = True  # 20
    b[2:6, 0:5] = True  # 20, overlap 10
    assert M.dice(a, b) == pytest.approx(0.5)
    assert M.dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    truth = np.zeros((20, 20), int)
    truth[2:5, 2:5] = 1
    truth[10:14, 10:14] = 2
    pred = np.zeros((20, 20), int)
    pred[4:6, 4:6] = 1  # touches lesion 1
    pred[17:19, 0:2] = 2  # false positive
    pred[0:1, 15:19] = 3  # false positive
    detected, fp = M.region_overlaps(truth, pred)
    assert detected == {1: True, 2: False}
    assert fp == 2


# --- bootstrap ---------------------------------------------------------------------------------------


def test_bootstrap_weights_keep_strata_sizes():
    w = M.bootstrap_weights([np.arange(3), np.arange(3, 10)], 10, 200, seed=0)
    assert w.shape == (200, 10)
    np.testing.assert_array_equal(w[:, :3].sum(1), 3)
    np.testing.assert_array_equal(w[:, 3:].sum(1), 7)
    assert not np.all(w == 1)
    np.testing.assert_array_equal(w, M.bootstrap_weights([np.arange(3), np.arange(3, 10)], 10, 200, seed=0))


def test_bootstrap_interval_contains_point_and_narrows_with_more_data():
    rng = np.random.default_rng(3)
    widths = []
    for n in (20, 500):
        x = rng.random(n)
        w = M.bootstrap_weights([np.arange(n)], n, 400, seed=1)
        point, boot = M.weighted_ratio(x, np.ones(n), w)
        est = M.interval(point, boot)
        assert est.low <= point <= est.high
        assert point == pytest.approx(x.mean())
        widths.append(est.high - est.low)
    assert widths[1] < widths[0] / 2
    assert M.interval(0.5, np.array([np.nan])).to_dict() == {"value": 0.5, "ci95": [None, None]}


def test_weighted_scan_auroc_matches_exact_and_resamples():
    h = np.array([1.0, 2.0, 3.0])
    s = np.array([2.5, 4.0])
    exact = M.roc_auc(np.r_[h, s], np.r_[np.zeros(3), np.ones(2)])
    assert M.weighted_scan_auroc(h, s) == pytest.approx(exact)
    boot = M.weighted_scan_auroc(h, s, np.ones((4, 3)), np.ones((4, 2)))
    np.testing.assert_allclose(boot, exact)
    # Only the top healthy scan drawn: 2.5 loses to 3.0, 4.0 wins.
    one = M.weighted_scan_auroc(h, s, np.array([[0, 0, 3.0]]), np.array([[1.0, 1.0]]))
    assert one[0] == pytest.approx(0.5)


def test_histogram_bootstrap_of_ap_brackets_the_point():
    rng = np.random.default_rng(4)
    pos, neg = [], []
    for _ in range(12):  # 12 "scans"
        y = rng.random(3000) < 0.05
        s = rng.normal(size=y.size) + 1.5 * y
        p, n = hists(s, y)
        pos.append(p)
        neg.append(n)
    pos, neg = M.compact_columns(np.stack(pos), np.stack(neg))
    point = float(M.hist_average_precision(pos.sum(0), neg.sum(0)))
    w = M.bootstrap_weights([np.arange(12)], 12, 300, seed=0)
    est = M.interval(point, M.hist_average_precision(w @ pos, w @ neg))
    assert est.low < point < est.high
    assert 0.0 < est.high - est.low < 0.5


def test_combined_metrics_and_merging_negative_runs_change_nothing():
    rng = np.random.default_rng(5)
    pos, neg = [], []
    for _ in range(6):
        y = rng.random(4000) < 0.04
        s = rng.normal(size=y.size) + 1.0 * y
        p, n = hists(s, y)
        pos.append(p)
        neg.append(n)
    pos, neg = M.compact_columns(np.stack(pos), np.stack(neg))
    merged_pos, merged_neg, first = M.merge_negative_runs(pos, neg)
    assert merged_pos.shape[1] < pos.shape[1] / 2
    w = M.bootstrap_weights([np.arange(6)], 6, 20, seed=0)
    for p, n in ((pos.sum(0), neg.sum(0)), (w @ pos, w @ neg)):
        ap, auc, best, col = M.hist_metrics(p, n)
        np.testing.assert_allclose(ap, M.hist_average_precision(p, n), atol=1e-6)
        np.testing.assert_allclose(auc, M.hist_roc_auc(p, n), atol=1e-6)
        ref_best, ref_col = M.hist_best_dice(p, n)
        np.testing.assert_allclose(best, ref_best, atol=1e-6)
        np.testing.assert_array_equal(col, ref_col)
    p, n = w @ pos, w @ neg
    mp, mn = w @ merged_pos, w @ merged_neg
    for a, b in zip(M.hist_metrics(p, n)[:3], M.hist_metrics(mp, mn)[:3], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(first[M.hist_metrics(mp, mn)[3]], M.hist_metrics(p, n)[3])
