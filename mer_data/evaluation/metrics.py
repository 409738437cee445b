"""MEGC2019 recognition metrics: UF1 and UAR on pooled predictions, per-class F1/recall and the confusion matrix.

UF1 = mean over classes of F1_c, F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c); UAR = mean over classes of TP_c / N_c. Both are
computed once on the predictions of all folds pooled together, as the MEGC2019 protocol defines them. A class is "absent"
when no sample of it is in the evaluated set: its recall is undefined and it is left out of UAR; its F1 is 0 when the model
predicted it anyway (every such prediction is a false positive) and undefined (left out of UF1) when it did not. Which
classes were left out is reported, never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts, rows = true class, columns = predicted class."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape} vs {p.shape}")
    for name, v in (("y_true", t), ("y_pred", p)):
        if v.size and (v.min() < 0 or v.max() >= n_classes):
            raise ValueError(f"{name} holds a class id outside 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class support, TP/FP/FN, precision, recall and F1 (NaN where undefined) from a confusion matrix."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    support = conf.sum(axis=1)  # true samples of each class
    predicted = conf.sum(axis=0)
    fp, fn = predicted - tp, support - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
    return {"support": support.astype(np.int64), "tp": tp.astype(np.int64), "fp": fp.astype(np.int64),
            "fn": fn.astype(np.int64), "precision": precision, "recall": recall, "f1": f1}


def uf1_uar(conf: np.ndarray) -> tuple[float, float]:
    """(UF1, UAR) of a confusion matrix; classes where a term is undefined are left out of that mean (NaN if none left)."""
    pc = per_class(conf)
    f1, recall = pc["f1"], pc["recall"]
    uf1 = float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan")
    uar = float(np.nanmean(recall)) if np.isfinite(recall).any() else float("nan")
    return uf1, uar


def evaluate(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict:
    """UF1, UAR, per-class metrics, confusion matrix and absent classes of one set of predictions, as plain JSON data."""
    conf = confusion_matrix(y_true, y_pred, len(class_names))
    pc = per_class(conf)
    uf1, uar = uf1_uar(conf)
    return {
        "n": int(conf.sum()),
        "uf1": _finite(uf1),
        "uar": _finite(uar),
        "per_class": {
            name: {"support": int(pc["support"][i]), "f1": _finite(pc["f1"][i]), "recall": _finite(pc["recall"][i]),
                   "precision": _finite(pc["precision"][i])}
            for i, name in enumerate(class_names)
        },
        "absent": [name for i, name in enumerate(class_names) if pc["support"][i] == 0],
        "confusion": conf.tolist(),
    }


def grouped(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[str], class_names: Sequence[str]) -> dict:
    """`evaluate` separately for each group (a fold, a dataset), keyed by group name in sorted order."""
    t, p, g = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    return {str(name): evaluate(t[g == name], p[g == name], class_names) for name in sorted(set(g.tolist()))}


def fold_mean(folds: Mapping[str, dict]) -> dict:
    """Mean and standard deviation over folds of the per-fold UF1/UAR — reported beside, never instead of, the pooled values."""
    out: dict[str, float | int | None] = {"n_folds": len(folds)}
    for key in ("uf1", "uar"):
        values = np.array([f[key] for f in folds.values() if f[key] is not None], dtype=np.float64)
        out[f"{key}_mean"] = float(values.mean()) if values.size else None
        out[f"{key}_std"] = float(values.std()) if values.size else None
    return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
