"""Shard files: a byte-deterministic tar writer, the per-pair parquet rows, the stats file, and verification.

A shard `{i:06d}` is three files: `.tar` (WebDataset samples `KEY.f0.jpg`, `KEY.f1.jpg`, `KEY.json`, adjacent),
`.parquet` (one row per planned pair, failures included with status and reason) and `_stats.json`, written last, whose
existence marks the shard finished. Each file is written under a `.tmp` name and renamed when complete; a write that
fails (disk full, read-only or vanished folder) removes its `.tmp` and raises `OutputError`, one line naming the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mer_data import MerDataError
from mer_data.facemodel import sha256_file
from mer_data.records import STATUS_OK

ROW_SCHEMA = pa.schema([
    ("key", pa.string()),  # WebDataset key (no dots); also the member prefix in the tar
    ("shard", pa.int32()),
    ("index", pa.int64()),  # position in the global row sequence of the ingest
    ("dataset", pa.string()),
    ("subject", pa.string()),  # dataset-qualified
    ("clip", pa.string()),
    ("source", pa.string()),  # frame folder or video file
    ("t0", pa.int64()),  # frame numbers of I_t and I_{t+δ} (null for a clip-level failure)
    ("t1", pa.int64()),
    ("delta", pa.int64()),
    ("status", pa.string()),  # "ok" or the failure class
    ("reason", pa.string()),  # human-readable explanation when status != "ok"
    ("sample_id", pa.string()),  # labeled mode: the split manifest's id ("" for unlabeled pairs)
    ("emotion", pa.string()),
    ("onset", pa.int64()),
    ("apex", pa.int64()),
    ("offset", pa.int64()),
])


def shard_name(index: int) -> str:
    return f"{index:06d}"


def shard_paths(out: Path, index: int) -> dict[str, Path]:
    """The three files of shard `index` under `out`: tar, parquet and stats."""
    stem = shard_name(index)
    return {"tar": out / f"{stem}.tar", "parquet": out / f"{stem}.parquet", "stats": out / f"{stem}_stats.json"}


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


class OutputError(MerDataError):
    """An output file could not be written (disk full, read-only or vanished folder); the message names the path."""


def describe_os_error(path: Path, exc: OSError) -> str:
    """One line for an OSError met writing `path`: the path, and the system's reason (a vanished folder said so)."""
    path = Path(path)
    why = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError) and not path.parent.is_dir():
        why = f"the folder {path.parent} is gone"
    return f"cannot write {path}: {why}"


@contextmanager
def output_errors(path: Path) -> Iterator[None]:
    """Turn an OSError raised in the block into an OutputError naming `path`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(describe_os_error(path, exc)) from exc


def _discard(file, tmp: Path) -> None:
    """Close and remove a partial file after a failure; errors here would only hide the first one."""
    with suppress(OSError):  # a close that cannot flush (disk full) or an unlink on a read-only disk
        if file is not None:
            file.close()
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via its `.tmp` name (renamed when complete); OutputError naming the path on failure."""
    tmp, file = _tmp(Path(path)), None
    try:
        with output_errors(path):
            file = open(tmp, "wb")
            file.write(data)
            file.close()
            os.replace(tmp, path)
    except OutputError:
        _discard(file, tmp)
        raise


_BLOCK, _RECORD = 512, 10240  # tar block and record sizes (tarfile pads the archive to whole records, like tar -b20)


_PADDING = [bytes(n) for n in range(_BLOCK)]  # zeros filling a member's last block
_HEAD_IDS = b"0000644\0" + b"0000000\0" * 2  # mode, uid, gid
_HEAD_MTIME = b"00000000000\0"
_HEAD_TAIL = tarfile.REGTYPE + bytes(100) + tarfile.POSIX_MAGIC  # type, link name, magic and version
_HEAD_PAD = bytes(_BLOCK - 100 - len(_HEAD_IDS) - 12 - len(_HEAD_MTIME) - 8 - len(_HEAD_TAIL))  # names, dev, prefix
_HEAD_SUM = sum(_HEAD_IDS + _HEAD_MTIME + b" " * 8 + _HEAD_TAIL)  # the checksum counts its own field as spaces


def _member_header(name: str, size: int) -> bytes:
    """The header tarfile (PAX format) writes for a regular file with mtime 0, uid/gid 0, mode 0644, no user names.

    Built directly for short ASCII names (every key `sample_key` makes, in practice): tarfile's general path costs
    about 100 µs a member. Anything else goes through `TarInfo.tobuf`, which adds a pax header as needed.
    """
    if len(name) > 100 or not name.isascii() or size >= 8 ** 11:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    raw, size_field = name.encode("ascii"), b"%011o\0" % size
    checksum = b"%06o\0 " % (_HEAD_SUM + sum(raw) + sum(size_field))  # the byte sum of the header
    return b"".join((raw.ljust(100, b"\0"), _HEAD_IDS, size_field, _HEAD_MTIME, checksum, _HEAD_TAIL, _HEAD_PAD))


class TarShardWriter:
    """Context manager writing one tar with fixed member metadata (mtime 0, uid/gid 0, mode 0644, no names).

    Written to `<path>.tmp` and renamed on a clean exit; removed if the block raises. The bytes equal what `tarfile`
    writes in PAX format; `sha256` (hex) and `size` of the finished file are known after the block without reading
    it back.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._tmp = _tmp(self.path)
        self._file = None
        self._hash = hashlib.sha256()
        self.members = 0
        self.size = 0  # bytes written so far
        self.sha256 = ""  # set when the tar is complete

    def __enter__(self) -> TarShardWriter:
        with output_errors(self.path):
            self._file = open(self._tmp, "wb")
        return self

    def _write(self, data: bytes) -> None:
        try:  # not `output_errors`: a context manager per sample costs more than the rest of this method
            self._file.write(data)
        except OSError as exc:
            raise OutputError(describe_os_error(self.path, exc)) from exc
        self._hash.update(data)
        self.size += len(data)

    def add(self, key: str, files: dict[str, bytes]) -> None:
        """Add one sample: `files` maps extension (e.g. "f0.jpg", "json") → bytes, written in the given order."""
        if "." in key:
            raise ValueError(f"WebDataset keys must not contain dots: {key!r}")
        parts = []
        for ext, data in files.items():
            parts += (_member_header(f"{key}.{ext}", len(data)), data, _PADDING[-len(data) % _BLOCK])
        self.members += len(files)
        self._write(b"".join(parts))

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            _discard(self._file, self._tmp)
            return
        try:
            self._write(bytes(2 * _BLOCK))  # end-of-archive marker, then pad to a whole record
            self._write(bytes(-self.size % _RECORD))
            with output_errors(self.path):  # close flushes: a full disk may only show here
                self._file.close()
                os.replace(self._tmp, self.path)
        except OutputError:
            _discard(self._file, self._tmp)
            raise
        self.sha256 = self._hash.hexdigest()


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write pair rows as parquet with the fixed ROW_SCHEMA (missing columns null), via a temp name."""
    table = pa.Table.from_pylist([{k: row.get(k) for k in ROW_SCHEMA.names} for row in rows], schema=ROW_SCHEMA)
    buffer = pa.BufferOutputStream()  # in memory, then one write: every output byte goes through `write_bytes`
    pq.write_table(table, buffer, compression="zstd", write_statistics=False)
    write_bytes(path, buffer.getvalue().to_pybytes())


def read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


STAT_COUNTS = ("encodes", "frames_encoded", "anchors_tracked", "anchors_lost")
WORK_COUNTS = ("decoded", "decoded_full", "decoded_regions", "detections")


def shard_stats(index: int, rows: list[dict], counts: dict, tar: Path | TarShardWriter) -> dict:
    """The content of `_stats.json`: counts only (no timings), so it is identical for any number of workers.

    `counts` holds the task's counts; the stats keep those that follow from the shard's rows alone (STAT_COUNTS: frame
    encodes, distinct frames encoded, anchor frames with and without a face track). Decodes and face detections
    (WORK_COUNTS) are left out: a process that ran the clip's previous segment hands its detections on
    (`pipelines/worker.py`), so they depend on which worker ran what; the run's summary reports them. `tar` is the
    finished tar's path, or the writer that wrote it (which already knows its size and sha256).
    """
    failures = Counter(r["status"] for r in rows if r["status"] != STATUS_OK)
    written = sum(r["status"] == STATUS_OK for r in rows)
    if isinstance(tar, TarShardWriter):
        size, digest = tar.size, tar.sha256
    else:
        size, digest = Path(tar).stat().st_size, sha256_file(Path(tar))
    return {"shard": index, "rows": len(rows), "written": written, "failures": sum(failures.values()),
            "failures_by_reason": dict(sorted(failures.items())), **{k: int(counts.get(k, 0)) for k in STAT_COUNTS},
            "tar_bytes": size, "tar_sha256": digest}


def write_json(path: Path, obj: dict) -> None:
    """Write JSON (sorted keys, indented) via a temp name, so a file that exists is complete."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@dataclass
class ShardReport:
    """What `verify_shard` found: counts, and every mismatch as a line (empty when the shard is sound)."""

    index: int
    rows: int = 0
    written: int = 0
    failures: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def finished_shards(out: Path) -> list[int]:
    """Indices of the shards whose stats file exists (the done marker), sorted."""
    return sorted(int(p.name[:6]) for p in Path(out).glob("[0-9]" * 6 + "_stats.json"))


def _read(report: ShardReport, path: Path, reader: Callable[[Path], object]) -> object | None:
    """`reader(path)`, or None with a problem line naming the path when the file is truncated or not what it claims."""
    try:
        return reader(path)
    except (OSError, ValueError, EOFError, tarfile.TarError, pa.ArrowException) as exc:  # ValueError: JSON, UTF-8
        why = str(exc).strip().splitlines()[0].rstrip(":") if str(exc).strip() else type(exc).__name__
        report.problems.append(f"{path}: unreadable, truncated or not a {path.suffix[1:]} file ({why})")
        return None


def _read_stats(path: Path) -> dict:
    stats = json.loads(path.read_text())
    if not isinstance(stats, dict):
        raise ValueError(f"expected a JSON object, found {type(stats).__name__}")
    return stats


def shard_problem(out: Path, index: int) -> str:
    """Why a shard with a stats file is not to be trusted without reading it through ("" when it looks finished):
    a missing tar or parquet, an unreadable stats or parquet file, or a tar whose size is not the one recorded
    (cut short)."""
    paths = shard_paths(Path(out), index)
    missing = [p.name for p in (paths["tar"], paths["parquet"]) if not p.is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        recorded = _read_stats(paths["stats"]).get("tar_bytes")
    except (OSError, ValueError) as exc:
        return f"unreadable {paths['stats'].name} ({exc})"
    try:
        pq.read_metadata(paths["parquet"])  # the footer only: cheap
    except (OSError, pa.ArrowException) as exc:
        return f"unreadable {paths['parquet'].name} ({exc})"
    size = paths["tar"].stat().st_size
    return "" if size == recorded else f"{paths['tar'].name} has {size} bytes, its stats say {recorded}"


def verify_shard(out: Path, index: int) -> ShardReport:
    """Check a finished shard: tar members vs parquet rows vs stats, and that webdataset reads every sample.

    A file that cannot be read (truncated, garbage) is one problem naming its path; the checks that need it are skipped.
    """
    paths, report = shard_paths(Path(out), index), ShardReport(index)
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        report.problems.append(f"shard {shard_name(index)}: missing {', '.join(missing)}")
        return report
    rows = _read(report, paths["parquet"], read_rows)
    stats = _read(report, paths["stats"], _read_stats)
    tar = _read(report, paths["tar"], _tar_keys)
    if rows is None or stats is None or tar is None:
        return report
    report.rows, report.failures = len(rows), Counter(r["status"] for r in rows if r["status"] != STATUS_OK)
    ok_keys = [r["key"] for r in rows if r["status"] == STATUS_OK]
    report.written = len(ok_keys)
    tar_keys, bad = tar
    report.problems += [f"{paths['tar'].name}: {b}" for b in bad]
    if tar_keys != ok_keys:
        report.problems.append(f"{paths['tar'].name}: {len(tar_keys)} samples vs {len(ok_keys)} ok parquet rows "
                               "(or a different order)")
    expect = {"rows": len(rows), "written": len(ok_keys), "failures": sum(report.failures.values()),
              "tar_bytes": paths["tar"].stat().st_size, "tar_sha256": sha256_file(paths["tar"])}
    for name, value in expect.items():
        if stats.get(name) != value:
            report.problems.append(f"{paths['stats'].name}: {name} {stats.get(name)!r} != {value!r}")
    ok_rows = {r["key"]: r for r in rows if r["status"] == STATUS_OK}
    report.problems += _read(report, paths["tar"], lambda p: _check_webdataset(p, ok_rows)) or []
    return report


def tar_samples(path: Path) -> dict[str, dict[str, bytes]]:
    """key → {extension ("f0.jpg", "json", …) → bytes} of every sample of one shard tar, in tar order."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


def _tar_keys(path: Path) -> tuple[list[str], list[str]]:
    """Sample keys in tar order, plus problems: members of a key not adjacent, or not f0, f1 and json (plus, for a
    labeled sample, its other frames t<n> and stored flow)."""
    keys, exts, problems = [], {}, []
    with tarfile.open(path) as tar:
        for name in tar.getnames():
            key, _, ext = name.partition(".")
            if not keys or keys[-1] != key:
                if key in exts:
                    problems.append(f"members of {key} are not adjacent")
                keys.append(key)
                exts[key] = []
            exts[key].append(ext)
    size = path.stat().st_size
    with open(path, "rb") as fh:  # tarfile stops quietly at a cut inside a member: look for the end marker
        fh.seek(max(size - 2 * _BLOCK, 0))
        if size % _BLOCK or fh.read() != bytes(2 * _BLOCK):
            raise tarfile.ReadError(f"cut short at {size} bytes: no end-of-archive marker")
    for key, found in exts.items():
        kinds = [e.split(".")[0] for e in found]
        extra = sorted(set(kinds) - {"f0", "f1", "json"})  # a labeled sample's other frames t<n> and stored views
        if sorted(k for k in kinds if k in ("f0", "f1", "json")) != ["f0", "f1", "json"] or len(set(kinds)) < len(kinds) \
                or any(not (k == "flow" or k[0] == "t" and k[1:].isdigit()) for k in extra):
            problems.append(f"sample {key} has members {sorted(found)}")
    return keys, problems


def _check_webdataset(path: Path, ok_rows: dict[str, dict]) -> list[str]:
    """Read the tar with webdataset.WebDataset and compare each sample's json with its parquet row."""
    import webdataset as wds

    problems, seen = [], 0
    for sample in wds.WebDataset(str(path), shardshuffle=False, empty_check=False):
        seen += 1
        row = ok_rows.get(sample["__key__"])
        if "json" not in sample:  # a tar cut short inside a sample
            problems.append(f"{path.name}: webdataset sample {sample['__key__']} has no json member")
            continue
        meta = json.loads(sample["json"])
        if row is None:
            problems.append(f"{path.name}: webdataset sample {sample['__key__']} has no ok parquet row")
        elif (meta.get("t0"), meta.get("t1"), meta.get("clip")) != (row["t0"], row["t1"], row["clip"]):
            problems.append(f"{path.name}: json of {sample['__key__']} disagrees with its parquet row")
    if seen != len(ok_rows):
        problems.append(f"{path.name}: webdataset read {seen} samples, parquet has {len(ok_rows)} ok rows")
    return problems


def inspect_dir(out: Path) -> dict:
    """Verify every shard under `out`; totals plus the list of problems (empty when all is consistent)."""
    out = Path(out)
    indices = sorted(set(finished_shards(out)) | {int(p.stem) for p in out.glob("[0-9]" * 6 + ".tar")})
    totals = {"shards": len(indices), "rows": 0, "written": 0, "failures": Counter(), "problems": [],
              "bad_shards": []}
    for index in indices:
        rep = verify_shard(out, index)
        totals["rows"] += rep.rows
        totals["written"] += rep.written
        totals["failures"] += rep.failures
        totals["problems"] += rep.problems
        totals["bad_shards"] += [index] if rep.problems else []
    if not indices:
        totals["problems"].append(f"{out}: no shards")
    totals["failures"] = dict(sorted(totals["failures"].items()))
    return totals
