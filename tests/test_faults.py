"""Faults as one-line errors: a full disk, a read-only or vanished --out, and cut-short or garbage shards under inspect.

Tests run as root, which ignores chmod, and cannot mount a small filesystem: the disk is simulated by patching the one
`open` that every shard byte goes through (`mer_data.shards.open`) with a file whose writes fail like the system's.
"""

import builtins
import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import data_app
from mer_data import shards
from pipelines import ingest

SHARD_FILES = ("*.tar", "*.parquet", "*_stats.json")


def _bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for pattern in SHARD_FILES for p in sorted(out.glob(pattern))}


def _ingest(root: Path, out: Path):
    """`mer-data ingest` as a user types it: serial, no face detector (the faults do not depend on alignment)."""
    return CliRunner().invoke(data_app, ["ingest", "casme2", "--root", str(root), "--out", str(out), "--workers", "0",
                                         "--face-detector", "none", "--size", "64", "--shard-size", "40"])


@pytest.fixture(scope="module")
def reference(synth_root, tmp_path_factory):
    """A clean ingest of the synthetic CASME II tree: (root, out, its shard bytes)."""
    root, out = synth_root("casme2"), tmp_path_factory.mktemp("faults") / "ref"
    res = _ingest(root, out)
    assert res.exit_code == 0, res.output
    files = _bytes(out)
    assert len(files) >= 9  # three shards or more: a fault can strike after a finished one
    return root, out, files


class _Disk:
    """Files opened for writing through it share `free` bytes, then fail with `error` (ENOSPC, EROFS, ...)."""

    def __init__(self, free: int, error: int = errno.ENOSPC):
        self.free, self.error = free, error

    def open(self, path, mode="r", *args, **kwargs):
        if not any(c in mode for c in "wax"):
            return builtins.open(path, mode, *args, **kwargs)
        if self.free <= 0:
            raise OSError(self.error, os.strerror(self.error), str(path))
        return _File(builtins.open(path, mode, *args, **kwargs), self)


class _File:
    def __init__(self, file, disk: _Disk):
        self.file, self.disk = file, disk

    def write(self, data: bytes) -> int:
        if len(data) > self.disk.free:
            self.file.write(data[: self.disk.free])  # what fits, as a real disk does
            self.disk.free = 0
            raise OSError(self.disk.error, os.strerror(self.disk.error))
        self.disk.free -= len(data)
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()


def _one_line(res, *parts: str) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    error = [line for line in lines if line.startswith("error: ")]
    assert res.exit_code == 2 and len(error) == 1, res.output
    assert "Traceback" not in res.output
    for part in parts:
        assert part in error[0], error[0]
    return error[0]


def test_disk_full_is_one_line_keeps_finished_shards_and_rerun_gives_same_bytes(reference, tmp_path, monkeypatch):
    root, ref, files = reference
    out = tmp_path / "out"
    first = sum(len(files[n]) for n in ("000000.tar", "000000.parquet", "000000_stats.json"))
    disk = _Disk(free=first + 4096 + len(files["000001.tar"]) // 2)  # room for ingest.json, shard 0, half of shard 1
    monkeypatch.setattr(shards, "open", disk.open, raising=False)
    line = _one_line(_ingest(root, out), str(out / "000001.tar"), "No space left on device")
    assert line.count("\n") == 0
    assert (out / "000000_stats.json").read_bytes() == files["000000_stats.json"]  # nothing finished is lost
    assert (out / "000000.tar").read_bytes() == files["000000.tar"]
    assert not (out / "000001_stats.json").exists() and not list(out.glob("*.tmp"))  # the partial shard is gone
    monkeypatch.undo()  # space freed
    res = _ingest(root, out)
    assert res.exit_code == 0 and "1 already done" in res.output, res.output
    assert _bytes(out) == files


def test_disk_full_at_the_very_end_names_ingest_json(reference, tmp_path, monkeypatch):
    root, _, files = reference
    out = tmp_path / "out"
    disk = _Disk(free=sum(map(len, files.values())) + 2048)  # every shard fits; the final ingest.json does not
    monkeypatch.setattr(shards, "open", disk.open, raising=False)
    _one_line(_ingest(root, out), str(out / "ingest.json"), "No space left on device")
    monkeypatch.undo()
    assert _bytes(out) == files  # every shard was finished and stays
    res = _ingest(root, out)
    assert res.exit_code == 0 and f"{len(files) // 3} already done" in res.output, res.output


def test_read_only_out_is_one_line_and_changes_nothing(reference, tmp_path, monkeypatch):
    root, ref, files = reference
    out = tmp_path / "out"
    assert _ingest(root, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(shards, "open", _Disk(free=0, error=errno.EROFS).open, raising=False)
    _one_line(_ingest(root, out), str(out / "ingest.json"), "Read-only file system")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_out_vanishing_mid_run_is_one_line_and_rerun_gives_same_bytes(reference, tmp_path, monkeypatch):
    root, _, files = reference
    out = tmp_path / "out"
    real = ingest.run_shard

    def run_then_vanish(spec, opts):
        stats = real(spec, opts)
        if spec.index == 0:  # an unmounted disk, or a user's rm -r
            for p in out.iterdir():
                p.unlink()
            out.rmdir()
        return stats

    monkeypatch.setattr(ingest, "run_shard", run_then_vanish)
    _one_line(_ingest(root, out), str(out / "000001.tar"), f"the folder {out} is gone")
    monkeypatch.undo()
    assert _ingest(root, out).exit_code == 0
    assert _bytes(out) == files


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 + 100])  # mid-member, as a killed copy leaves it


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(3000))


@pytest.mark.parametrize("name, damage, why", [
    ("000001.tar", _cut, ("unexpected end of data", "cut short at")),  # tarfile's words, or ours at a member edge
    ("000001.tar", _garbage, ("could not be opened",)), ("000001.parquet", _garbage, ("Parquet",)),
    ("000001_stats.json", _garbage, ("codec can't decode", "Expecting"))],
    ids=["truncated-tar", "garbage-tar", "garbage-parquet", "garbage-stats"])
def test_inspect_reports_the_bad_shard_and_a_rerun_rewrites_it(reference, tmp_path, name, damage, why):
    root, ref, files = reference
    out = tmp_path / "out"
    assert _ingest(root, out).exit_code == 0  # its own: ingest.json records --out, a copy elsewhere is refused
    damage(out / name)
    res = CliRunner().invoke(data_app, ["inspect", str(out)])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    mismatches = [line for line in res.output.splitlines() if line.startswith("MISMATCH")]
    assert len(mismatches) == 1 and f"{out / name}: unreadable" in mismatches[0], res.output
    assert any(w in mismatches[0] for w in why), mismatches[0]
    assert f"1 of {len(files) // 3} shards have problems: 000001" in res.output
    res = _ingest(root, out)  # resume sees the damage (size, footer, stats) and writes the shard again
    assert res.exit_code == 0 and "1 redone" in res.output, res.output
    assert _bytes(out) == files
    assert CliRunner().invoke(data_app, ["inspect", str(out)]).exit_code == 0


def test_a_ray_task_that_hit_a_full_disk_is_one_line_naming_the_shard():
    """Ray raises a task's exception wrapped (RayTaskError, the original as `.cause`): the driver's line is the cause's,
    with the shard number, not the wrapper's traceback."""
    from types import SimpleNamespace

    from mer_data import MerDataError

    class RayError(Exception):
        pass

    class RayTaskError(RayError):
        cause = shards.OutputError("cannot write /x/000003.tar: No space left on device")

    def get(ref):
        raise RayTaskError("Traceback (most recent call last): ...")

    fake_ray = SimpleNamespace(wait=lambda refs, num_returns: (refs[:1], refs[1:]), get=get,
                               exceptions=SimpleNamespace(RayError=RayError))
    with pytest.raises(MerDataError, match=r"^shard 000003: cannot write /x/000003.tar: No space left on device$"):
        ingest._collect(fake_ray, {"ref": SimpleNamespace(index=3)}, None, SimpleNamespace(add=print),
                        ingest.IngestConfig())
