"""Prediction files of a spotter (CSV or parquet: video, onset, offset, type, score, emotion): writing and validated reading."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mer_data import MerDataError
from mer_data.sheets import to_int

PREDICTION_COLUMNS = ("video", "onset", "offset", "type", "score", "emotion")
REQUIRED = ("video", "onset", "offset")
TYPES = ("macro", "micro")


@dataclass(frozen=True)
class Prediction:
    """One spotted interval, checked against the manifest's videos."""

    video: str  # the manifest's video id (dataset-qualified)
    onset: int  # first frame, inclusive, the dataset's numbering
    offset: int  # last frame, inclusive
    type: str | None = None  # macro | micro, or None (the convention decides, e.g. by length)
    score: float | None = None  # confidence; higher first when a convention orders predictions
    emotion: str | None = None  # the class an STR spotter gives it
    row: int = 0  # the row in the file (CSV: the line number, header = 1; parquet: 1-based row)


def write_predictions(rows: list[dict], path: Path) -> Path:
    """Write prediction dicts (keys PREDICTION_COLUMNS; type/score/emotion may be missing) as .csv or .parquet; the file
    appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = [{c: r.get(c) for c in PREDICTION_COLUMNS} for r in rows]
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".parquet":
        schema = pa.schema([("video", pa.string()), ("onset", pa.int64()), ("offset", pa.int64()),
                            ("type", pa.string()), ("score", pa.float64()), ("emotion", pa.string())])
        pq.write_table(pa.Table.from_pylist(full, schema=schema), tmp)
    elif path.suffix == ".csv":
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, PREDICTION_COLUMNS)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in full)
    else:
        raise MerDataError(f"{path}: predictions are written as .csv or .parquet")
    os.replace(tmp, path)
    return path


def _raw_rows(path: Path) -> list[tuple[int, dict]]:
    """(row number, cells) of a prediction file."""
    if not path.is_file():
        raise MerDataError(f"predictions {path} do not exist")
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise MerDataError(f"cannot read predictions {path}: {exc}") from None
        columns, rows = table.column_names, list(enumerate(table.to_pylist(), start=1))
    else:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            rows = list(enumerate(reader, start=2))
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise MerDataError(f"{path}: no column {', '.join(missing)} (need {', '.join(REQUIRED)}; optional type, score, "
                           "emotion)")
    return rows


def resolve_video(name: str, videos: dict[str, tuple[int, int]]) -> str | None:
    """The manifest video id a file names: the id itself, or the id without its dataset prefix when that is unique."""
    if name in videos:
        return name
    hits = [v for v in videos if v.split("/", 1)[-1] == name]
    return hits[0] if len(hits) == 1 else None


def _one(path: Path, n: int, cells: dict, videos: dict[str, tuple[int, int]]) -> Prediction:
    """One row checked: a known video, whole frame numbers inside the video, onset <= offset, a known type."""
    where = f"{path} row {n}"
    name = str(cells.get("video") or "").strip()
    video = resolve_video(name, videos)
    if video is None:
        raise MerDataError(f"{where}: video {name!r} is not in the manifest")
    onset, why_on = to_int(cells.get("onset"))
    offset, why_off = to_int(cells.get("offset"))
    if why_on or why_off:
        raise MerDataError(f"{where}: onset/offset {why_on or why_off}")
    if offset < onset:
        raise MerDataError(f"{where}: interval {onset}..{offset} is inverted")
    first, last = videos[video]
    if onset < first or offset > last:
        raise MerDataError(f"{where}: interval {onset}..{offset} is outside video {video} (frames {first}..{last})")
    kind = str(cells.get("type") or "").strip().casefold() or None
    if kind is not None and kind not in TYPES:
        raise MerDataError(f"{where}: type {cells.get('type')!r} is not macro or micro")
    score = cells.get("score")
    score = None if score in (None, "") else float(score)
    if score is not None and math.isnan(score):
        score = None
    emotion = str(cells.get("emotion") or "").strip() or None
    return Prediction(video, onset, offset, kind, score, emotion, n)


def read_predictions(path: Path, videos: dict[str, tuple[int, int]]) -> list[Prediction]:
    """Every row of a prediction file, validated against `videos` (video id → (first, last) frame); the first bad row is
    a MerDataError naming it."""
    path = Path(path)
    try:
        return [_one(path, n, cells, videos) for n, cells in _raw_rows(path)]
    except ValueError as exc:  # a score that is not a number
        raise MerDataError(f"{path}: {exc}") from None
