"""MEGC2019 metrics against hand-computed cases."""

import math

import numpy as np
import pytest

from mer_data.evaluation.metrics import confusion_matrix, evaluate, fold_mean, grouped, uf1_uar

CLASSES = ["negative", "positive", "surprise"]


def test_confusion_rows_are_truth_columns_predictions():
    conf = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert conf.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_hand_computed_uf1_uar():
    # negative: TP 1, FP 1, FN 1 → F1 = 2/4, recall 1/2
    # positive: TP 1, FP 1, FN 0 → F1 = 2/3, recall 1
    # surprise: TP 2, FP 0, FN 1 → F1 = 4/5, recall 2/3
    uf1, uar = uf1_uar(confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3))
    assert uf1 == pytest.approx((1 / 2 + 2 / 3 + 4 / 5) / 3)
    assert uar == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)


def test_perfect_and_constant_predictions():
    y = [0, 1, 2, 0, 1, 2]
    assert uf1_uar(confusion_matrix(y, y, 3)) == (1.0, 1.0)
    # always "negative": recall 1,0,0; F1 negative = 2·2/(4+4+0) = 0.5, others 0
    uf1, uar = uf1_uar(confusion_matrix(y, [0] * 6, 3))
    assert uf1 == pytest.approx(0.5 / 3)
    assert uar == pytest.approx(1 / 3)


def test_absent_class_left_out_of_uar_but_false_alarms_count_in_uf1():
    # no true "surprise" sample; one surprise prediction → surprise F1 = 0, recall undefined
    result = evaluate([0, 0, 1, 1], [0, 0, 1, 2], CLASSES)
    assert result["absent"] == ["surprise"]
    assert result["per_class"]["surprise"]["recall"] is None
    assert result["per_class"]["surprise"]["f1"] == 0.0
    assert result["uar"] == pytest.approx((1 + 0.5) / 2)
    assert result["uf1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    # absent and never predicted → undefined F1, left out of UF1 as well
    quiet = evaluate([0, 1], [0, 1], CLASSES)
    assert quiet["per_class"]["surprise"]["f1"] is None and quiet["uf1"] == 1.0


def test_grouped_and_fold_mean_differ_from_pooled():
    y_true = [0, 1, 0, 1]
    y_pred = [0, 1, 1, 1]
    folds = grouped(y_true, y_pred, ["a", "a", "b", "b"], CLASSES[:2])
    assert folds["a"]["uf1"] == 1.0
    assert folds["b"]["uar"] == pytest.approx(0.5)  # negative missed, positive right
    assert folds["b"]["uf1"] == pytest.approx((0 + 2 / 3) / 2)
    mean = fold_mean(folds)
    pooled = evaluate(y_true, y_pred, CLASSES[:2])
    assert mean["n_folds"] == 2
    assert not math.isclose(mean["uf1_mean"], pooled["uf1"])


def test_rejects_bad_ids():
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        confusion_matrix([0], [0, 1], 3)
    assert np.array_equal(confusion_matrix([], [], 2), np.zeros((2, 2), dtype=np.int64))
