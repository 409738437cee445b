"""Runs of `mer-eval loso` side by side: one row per run (model, preset, protocol flags, pooled UF1 / UAR / accuracy,
per dataset for composites, parameters, step cost), as text, markdown and a PNG. An optimistic protocol is named in
its row, never hidden."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from mer_data import MerDataError

COLUMNS = ("run", "model", "preset", "UF1", "UAR", "acc", "n", "params", "s/step", "protocol")


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def compare_rows(runs: list[Path]) -> list[dict]:
    """One dict per run folder (its results.json), in the order given; a folder without results is a one-line error."""
    rows = []
    for run in runs:
        path = Path(run) / "results.json"
        if not path.is_file():
            raise MerDataError(f"{run}: no results.json (not a finished `mer-eval loso` run)")
        try:
            r = json.loads(path.read_text())
            cfg = r.get("config", {})
            fold = cfg.get("fold") or {}
            flags = r.get("optimistic", [])
            row = {"run": Path(run).name, "model": r.get("model", "mubert"),
                   "preset": fold.get("preset") or ("init" if r.get("init") else cfg.get("preset", "-")),
                   "UF1": _pct(r["uf1"]), "UAR": _pct(r["uar"]), "acc": _pct(r.get("accuracy")), "n": str(r["n"]),
                   "params": "-" if r.get("params") is None else f"{r['params'] / 1e6:.2f}M",
                   "s/step": "-" if r.get("seconds_per_step") is None else f"{r['seconds_per_step']:.3f}",
                   "protocol": "; ".join(flags) if flags else f"honest ({fold.get('select', 'fixed')})"}
        except (KeyError, TypeError, ValueError) as e:
            raise MerDataError(f"{path}: not a results file of `mer-eval loso` ({e})") from None
        for name, d in sorted(r.get("per_dataset", {}).items()):
            row[f"{name} UF1/UAR"] = f"{_pct(d['uf1'])}/{_pct(d['uar'])}"
        rows.append(row)
    return rows


def _columns(rows: list[dict]) -> list[str]:
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    return [*COLUMNS[:-1], *extra, COLUMNS[-1]]


def text(rows: list[dict]) -> str:
    """A fixed-width table."""
    cols = _columns(rows)
    width = {c: max(len(c), *(len(r.get(c, "-")) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols)]
    lines += ["  ".join(r.get(c, "-").ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    """A GitHub markdown table."""
    cols = _columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r.get(c, "-") for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def table_png(rows: list[dict], path: Path) -> Path:
    """The table drawn cell by cell on a white image (rows of an optimistic protocol in red)."""
    cols = _columns(rows)
    cells = [cols] + [[r.get(c, "-") for c in cols] for r in rows]
    font, scale, h = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 22
    widths = [max(cv2.getTextSize(line[j], font, scale, 1)[0][0] for line in cells) + 14 for j in range(len(cols))]
    xs = np.concatenate([[10], 10 + np.cumsum(widths)]).astype(int)
    img = np.full((h * len(cells) + 14, int(xs[-1]) + 10, 3), 255, np.uint8)
    for i, line in enumerate(cells):
        colour = (0, 0, 200) if i and rows[i - 1]["protocol"].startswith("optimistic") else (0, 0, 0)
        for j, cell in enumerate(line):
            cv2.putText(img, cell, (int(xs[j]), h * (i + 1)), font, scale, colour, 1, cv2.LINE_AA)
    cv2.line(img, (10, h + 6), (int(xs[-1]), h + 6), (0, 0, 0), 1)
    if not cv2.imwrite(str(path), img):
        raise MerDataError(f"{path}: cannot write the PNG")
    return path
