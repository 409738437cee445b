"""Contact sheet of random (seeded) shard pairs: I_t, I_{t+δ} and their amplified absolute difference, one row each.

Meant for a person's eye: aligned faces sit at the same place in every row, and the difference column is dark except
where something moved (a well-aligned clip shows motion only, not a shifted face outline). With `eyes`, each frame also
shows where the face track put the eyes (green dots, from the sample's json) and the template's eye positions (white
crosses): dots on the pupils mean the track follows the face, dots on the crosses mean the crop is aligned.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np

from mer_data import MerDataError
from mer_data.records import STATUS_OK
from mer_data.shards import finished_shards, read_rows, shard_paths
from mer_data.pair_align import template

LABEL_H = 18  # pixel height of the caption strip above each row


def pick_pairs(out: Path, count: int, seed: int) -> list[dict]:
    """`count` ok rows drawn without replacement (seeded) from all finished shards, in shard order."""
    rows = [r for i in finished_shards(out) for r in read_rows(shard_paths(out, i)["parquet"]) if r["status"] == STATUS_OK]
    if not rows:
        raise MerDataError(f"{out}: no finished shard with written pairs")
    picks = np.random.default_rng(seed).choice(len(rows), size=min(count, len(rows)), replace=False)
    return [rows[i] for i in sorted(picks)]


def load_pair(out: Path, row: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Decode one row's sample from its shard's tar → the two (S, S, 3) BGR uint8 frames and its json."""
    with tarfile.open(shard_paths(out, row["shard"])["tar"]) as tar:
        names = {m.name.partition(".")[2]: m for m in tar.getmembers() if m.name.startswith(row["key"] + ".")}
        frames = []
        for slot in ("f0", "f1"):
            member = next(m for ext, m in names.items() if ext.startswith(slot + "."))
            data = np.frombuffer(tar.extractfile(member).read(), np.uint8)
            frames.append(cv2.imdecode(data, cv2.IMREAD_COLOR))
        meta = json.loads(tar.extractfile(names["json"]).read())
    return frames[0], frames[1], meta


def draw_eyes(frame: np.ndarray, eyes, size: int) -> np.ndarray:
    """A copy of an aligned frame (any side) with the template's eye positions (white crosses) and `eyes` ((2, 2) px
    of the size×size output: the tracked eyes; None to skip) as green dots."""
    out = frame.copy()
    scale = frame.shape[0] / size
    for x, y in template(size) * scale:
        cv2.drawMarker(out, (round(x), round(y)), (255, 255, 255), cv2.MARKER_CROSS, 9, 1, cv2.LINE_AA)
    for x, y in np.asarray(eyes if eyes is not None else [], np.float64).reshape(-1, 2) * scale:
        cv2.circle(out, (round(x), round(y)), 2, (0, 255, 0), -1, cv2.LINE_AA)
    return out


def pair_row(f0: np.ndarray, f1: np.ndarray, caption: str, tile: int, gain: float) -> np.ndarray:
    """One sheet row: f0 | f1 | gain·|f1 − f0| (heat-mapped), each tile×tile, with a caption strip on top."""
    diff = np.abs(f1.astype(np.int16) - f0.astype(np.int16)).max(axis=2)  # (S, S) largest channel change
    heat = cv2.applyColorMap(np.clip(diff * gain, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    tiles = [cv2.resize(im, (tile, tile), interpolation=cv2.INTER_AREA) for im in (f0, f1, heat)]
    strip = np.full((LABEL_H, 3 * tile, 3), 255, np.uint8)
    cv2.putText(strip, caption[: 3 * tile // 7], (3, LABEL_H - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.vstack([strip, np.hstack(tiles)])


def contact_sheet(out: Path, count: int = 8, seed: int = 0, tile: int = 160, gain: float = 8.0,
                  eyes: bool = False) -> np.ndarray:
    """The sheet as one BGR uint8 image: `count` rows of (f0, f1, amplified difference); with `eyes`, the tracked
    and template eyes drawn on f0 and f1 (the difference is taken before drawing)."""
    rows = []
    for row in pick_pairs(Path(out), count, seed):
        f0, f1, meta = load_pair(Path(out), row)
        caption = f"{row['subject']}/{row['clip']} t={row['t0']}->{row['t1']} d={row['delta']}"
        tiles = pair_row(f0, f1, caption, tile, gain)
        if eyes:
            tracked = meta.get("eyes") or [None, None]
            marked = [draw_eyes(cv2.resize(f, (tile, tile), interpolation=cv2.INTER_AREA), e, meta.get("size", 224))
                      for f, e in zip((f0, f1), tracked)]
            tiles[LABEL_H:, : 2 * tile] = np.hstack(marked)
        rows.append(tiles)
    return np.vstack(rows)


def write_preview(out: Path, sheet_path: Path, count: int = 8, seed: int = 0, gain: float = 8.0,
                  eyes: bool = False) -> Path:
    """Draw the contact sheet of shard directory `out` into `sheet_path` (PNG), via a temporary name."""
    sheet = contact_sheet(out, count=count, seed=seed, gain=gain, eyes=eyes)
    sheet_path = Path(sheet_path)
    sheet_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = sheet_path.with_name(sheet_path.name + ".tmp.png")
    if not cv2.imwrite(str(tmp), sheet):
        raise MerDataError(f"--out {sheet_path}: cannot write an image there")
    os.replace(tmp, sheet_path)
    return sheet_path
