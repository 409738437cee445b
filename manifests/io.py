"""Parquet schema, writing (temp name, then rename) and reading of split manifests, with JSON metadata in the footer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mer_data import MerDataError
from mer_data.aus import AU_COLUMNS

METADATA_KEY = b"mer_data"  # the parquet footer key holding the JSON metadata

BASE_SCHEMA = pa.schema([
    ("sample_id", pa.string()),  # unique: casme2/sub01/EP02_01f, casme3/spNO.1/a/355
    ("dataset", pa.string()),  # the adapter's registry name: casme2 | samm | smic | casme3 | mmew | ...
    ("subject", pa.string()),  # dataset-qualified: samm/006
    ("clip", pa.string()),  # clip id within the subject (CAS(ME)^3: the video letter)
    ("onset", pa.int64()),  # frame numbers in the dataset's own numbering; null when the sheet has none usable
    ("apex", pa.int64()),
    ("offset", pa.int64()),
    ("emotion", pa.string()),  # the raw label as written in the sheet or folder
    ("label", pa.string()),  # class name under the chosen mapping; null when the mapping has no class for it
    ("label_id", pa.int64()),  # position of label in the metadata's class list
    ("fold", pa.string()),  # held-out subject (loso) or dataset (lodo) of the fold testing this sample; null unless ok
    ("status", pa.string()),  # ok, or the reason class: missing_frames, bad_apex, excluded_class, ...
    ("reason", pa.string()),  # human-readable detail when status != ok
    ("source", pa.string()),  # frame folder or video file
    ("fixes", pa.string()),  # comma-joined ids of the applied tables/quirks.csv fixes
    ("flags", pa.string()),  # comma-joined ids of flag-only quirks naming this sample
    ("apex_policy", pa.string()),  # sheet | quirk | middle | max_diff
    ("row", pa.int64()),  # 1-based row in the annotation sheet; null for folder-labelled SMIC
    ("objective_class", pa.string()),  # I..VII where the sheet has objective classes, else null
    ("warnings", pa.string()),  # "; "-joined: the clip's first/last frame on disk disagrees with onset/offset
    ("au", pa.string()),  # the sheet's Action Units cell as text; null where the dataset codes no AUs (SMIC)
    ("aus", pa.list_(pa.string())),  # normalised AU codes ("4", "L10"); an "or" is one entry "R6/R12"
    ("au_or", pa.string()),  # the rule resolving the row's "or" entries in the AU columns (null: none in the row)
    *[(name, pa.int8()) for name in AU_COLUMNS],  # AU1 ... AU43: 1 when the AU is coded (any side), null without AUs
])


def schema(extra: tuple[str, ...] = ()) -> pa.Schema:
    """The manifest schema: the base columns plus extra string columns (the composite's official ids)."""
    out = BASE_SCHEMA
    for name in extra:
        out = out.append(pa.field(name, pa.string()))
    return out


def write_manifest(rows: list[dict], metadata: dict, path: Path, extra: tuple[str, ...] = ()) -> Path:
    """Write rows as parquet with `metadata` as JSON in the footer; the file appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sch = schema(extra).with_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
    table = pa.Table.from_pylist(rows, schema=sch)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_manifest(path: Path) -> tuple[pa.Table, dict]:
    """(table, metadata) of a manifest; a file that is not one is a MerDataError naming it."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise MerDataError(f"cannot read manifest {path}: {exc}") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise MerDataError(f"{path} is not a mer-data split manifest (no {METADATA_KEY.decode()} metadata)")
    return table, json.loads(raw)
