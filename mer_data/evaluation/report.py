"""Human-readable LOSO results: the text table printed at the end of `mer-eval loso`, and the confusion matrix as a PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _pct(x: float | None) -> str:
    return "   n/a" if x is None else f"{100 * x:6.2f}"


def results_table(results: dict) -> str:
    """Pooled UF1/UAR first (the MEGC2019 numbers), then per class, per dataset, and the fold mean, labelled as such."""
    kind = "training-only baseline (no pretraining)" if results.get("baseline") else f"init {results.get('init')}"
    if results.get("model", "mubert") != "mubert":
        fold = results["config"]["fold"]
        kind = f"model {results['model']} ({fold['preset']}), select {fold['select']}"
    lines = [f"{results.get('dataset')} {results.get('protocol')}: {results['n']} samples, "
             f"{len(results['folds'])} folds, {kind}",
             f"pooled over all folds   UF1 {_pct(results['uf1'])}   UAR {_pct(results['uar'])}",
             *[f"*** {flag} ***" for flag in results.get("optimistic", [])],
             "", f"{'class':<14}{'support':>8}{'F1':>8}{'recall':>8}"]
    for name, pc in results["per_class"].items():
        lines.append(f"{name:<14}{pc['support']:>8}{_pct(pc['f1']):>8}{_pct(pc['recall']):>8}")
    if results.get("absent"):
        lines.append(f"absent from the evaluated set (left out of UAR): {', '.join(results['absent'])}")
    for name, d in results.get("per_dataset", {}).items():
        lines.append(f"{name:<14}{d['n']:>8}  UF1 {_pct(d['uf1'])}  UAR {_pct(d['uar'])}")
    fm = results["fold_mean"]
    if fm["uf1_mean"] is not None:
        lines.append(f"mean over folds (not the MEGC metric): UF1 {_pct(fm['uf1_mean'])} ± {100 * fm['uf1_std']:.2f}"
                     f"   UAR {_pct(fm['uar_mean'])} ± {100 * fm['uar_std']:.2f}")
    if results.get("missing_from_shards"):
        lines.append(f"{len(results['missing_from_shards'])} ok samples of the manifest were not in the shards "
                     f"(first: {results['missing_from_shards'][0]})")
    return "\n".join(lines)


def confusion_png(conf: np.ndarray, classes: list[str], path: Path, cell: int = 64) -> Path:
    """Row-normalised confusion matrix (rows true, columns predicted) with the counts written in each cell."""
    n = len(classes)
    margin = 12 + 8 * max(len(c) for c in classes)
    img = np.full((margin + n * cell + 30, margin + n * cell + 10, 3), 255, np.uint8)
    rows = conf.sum(axis=1, keepdims=True)
    frac = np.divide(conf, rows, out=np.zeros(conf.shape, dtype=np.float64), where=rows > 0)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(n):
        for j in range(n):
            shade = int(255 * (1 - frac[i, j]))
            y0, x0 = margin + i * cell, margin + j * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (255, shade, shade), -1)
            colour = (255, 255, 255) if frac[i, j] > 0.5 else (0, 0, 0)
            cv2.putText(img, str(int(conf[i, j])), (x0 + 8, y0 + cell // 2 + 6), font, 0.5, colour, 1, cv2.LINE_AA)
        cv2.putText(img, classes[i], (4, margin + i * cell + cell // 2 + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        label = classes[i][: cell // 8]
        cv2.putText(img, label, (margin + i * cell + 2, margin - 6), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: true class, columns: predicted", (4, img.shape[0] - 10), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return Path(path)
