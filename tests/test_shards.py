"""Shard files: deterministic tar bytes, fixed parquet schema, stats, and verification catching mismatches."""

import hashlib
import io
import json
import tarfile

import pytest

from mer_data.shards import ROW_SCHEMA, TarShardWriter, inspect_dir, read_rows, shard_paths, shard_stats, \
    verify_shard, write_json, write_rows


def _rows(n, bad=()):
    return [{"key": f"{i:09d}-k", "shard": 0, "index": i, "dataset": "casme2", "subject": "casme2/sub01", "clip": "EP1",
             "source": "/x", "t0": i, "t1": i + 5, "delta": 5, "status": "bad_frame" if i in bad else "ok",
             "reason": "corrupt" if i in bad else "", "sample_id": "", "emotion": ""} for i in range(n)]


def _write_shard(out, rows):
    paths = shard_paths(out, 0)
    with TarShardWriter(paths["tar"]) as tar:
        for r in rows:
            if r["status"] == "ok":
                meta = json.dumps({"t0": r["t0"], "t1": r["t1"], "clip": r["clip"]}).encode()
                tar.add(r["key"], {"f0.jpg": b"\xff\xd8a", "f1.jpg": b"\xff\xd8b", "json": meta})
    write_rows(paths["parquet"], rows)
    write_json(paths["stats"], shard_stats(0, rows, {"frames_encoded": 2 * len(rows)}, paths["tar"]))
    return paths


def test_tar_bytes_are_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pa_, pb = _write_shard(a, _rows(4, bad={2})), _write_shard(b, _rows(4, bad={2}))
    for kind in ("tar", "parquet", "stats"):
        assert pa_[kind].read_bytes() == pb[kind].read_bytes(), kind
    with tarfile.open(pa_["tar"]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:3]] == ["000000000-k.f0.jpg", "000000000-k.f1.jpg", "000000000-k.json"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(0, 0, 0, "", 0o644)}
    assert not list(a.glob("*.tmp"))


def test_tar_bytes_equal_tarfile_pax_output(tmp_path):
    """The hand-built headers give exactly tarfile's PAX bytes, long and non-ASCII names (pax headers) included."""
    samples = [("000000001-sub01_EP02_01f_3_9", {"f0.jpg": b"x" * 1000, "f1.jpg": b"", "json": b"{}" * 256}),
               ("k" * 120, {"json": b"1"}), ("cl\u00e9", {"f0.png": bytes(range(256)) * 40, "json": b"z" * 513})]
    with TarShardWriter(tmp_path / "ours.tar") as ours:
        for key, files in samples:
            ours.add(key, files)
    with tarfile.open(tmp_path / "ref.tar", "w", format=tarfile.PAX_FORMAT) as ref:
        for key, files in samples:
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = \
                    len(data), 0, 0o644, 0, 0, "", ""
                ref.addfile(info, io.BytesIO(data))
    data = (tmp_path / "ours.tar").read_bytes()
    assert data == (tmp_path / "ref.tar").read_bytes()
    assert (ours.size, ours.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert shard_stats(0, [], {}, ours) == shard_stats(0, [], {}, tmp_path / "ours.tar")


def test_writer_removes_partial_file_on_error(tmp_path):
    path = tmp_path / "000000.tar"
    with pytest.raises(RuntimeError):
        with TarShardWriter(path) as tar:
            tar.add("a", {"json": b"{}"})
            raise RuntimeError("crash")
    assert not path.exists() and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="dots"):
        with TarShardWriter(path) as tar:
            tar.add("a.b", {"json": b"{}"})


def test_rows_keep_the_fixed_schema(tmp_path):
    rows = _rows(3, bad={1})
    write_rows(tmp_path / "r.parquet", rows)
    back = read_rows(tmp_path / "r.parquet")
    assert [r["status"] for r in back] == ["ok", "bad_frame", "ok"] and back[1]["reason"] == "corrupt"
    assert list(back[0]) == ROW_SCHEMA.names and back[0]["onset"] is None


def test_verify_accepts_a_sound_shard(tmp_path):
    _write_shard(tmp_path, _rows(5, bad={0, 3}))
    rep = verify_shard(tmp_path, 0)
    assert rep.problems == [] and rep.rows == 5 and rep.written == 3 and rep.failures == {"bad_frame": 2}
    totals = inspect_dir(tmp_path)
    assert totals["problems"] == [] and totals["written"] == 3 and totals["failures"] == {"bad_frame": 2}


def test_verify_reports_mismatches(tmp_path):
    paths = _write_shard(tmp_path, _rows(4))
    rows = _rows(4)
    rows[1]["status"] = "bad_frame"  # the parquet now says a written sample failed
    write_rows(paths["parquet"], rows)
    problems = verify_shard(tmp_path, 0).problems
    assert any("ok parquet rows" in p for p in problems)
    assert any("_stats.json" in p for p in problems)  # counts no longer agree either
    paths["stats"].unlink()
    assert any("unfinished" in p or "missing" in p for p in inspect_dir(tmp_path)["problems"])


def test_inspect_empty_dir_is_a_problem(tmp_path):
    assert inspect_dir(tmp_path)["problems"]
