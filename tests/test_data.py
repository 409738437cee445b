"""Shard loading for pretraining: determinism, exact resume positions, corrupt shards, no pickle, device conversion."""

from __future__ import annotations

import io
import json
import logging
import pickle
import signal
import tarfile
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import webdataset as wds
from skimage import data as skdata

from mer_data import MerDataError
from mubert import data


def write_shards(out: Path, shards: int = 3, per_shard: int = 12, size: int = 32, seed: int = 0) -> Path:
    """Shards in the ingest format: crops of the astronaut photo (I_t) and the same crop shifted by 1-3 px (I_{t+δ})."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photo = skdata.astronaut()  # (512, 512, 3) uint8 RGB
    for s in range(shards):
        with wds.TarWriter(str(out / f"{s:06d}.tar")) as tar:
            for i in range(per_shard):
                y, x = rng.integers(0, 512 - 2 * size, size=2)
                dy, dx = rng.integers(1, 4, size=2)
                crops = [photo[y:y + 2 * size, x:x + 2 * size], photo[y + dy:y + dy + 2 * size, x + dx:x + dx + 2 * size]]
                f0, f1 = (cv2.imencode(".jpg", cv2.resize(c, (size, size))[:, :, ::-1])[1].tobytes() for c in crops)
                meta = {"dataset": "synth", "subject": f"synth/s{s}", "clip": f"c{i}", "t0": 0, "t1": 5, "delta": 5,
                        "crop": [[1, 0, 0], [0, 1, 0]], "source": "astronaut"}
                tar.write({"__key__": f"s{s}_{i:03d}", "f0.jpg": f0, "f1.jpg": f1, "json": meta})
        (out / f"{s:06d}_stats.json").write_text(json.dumps({"shard": s, "written": per_shard}))
    return out


@contextmanager
def deadline(seconds: int):
    """Turn a hang into a test failure."""
    def fail(*_):
        raise TimeoutError(f"no result within {seconds} s")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def keys_of(loader, n: int | None = None) -> list[list[str] | None]:
    """Per batch: the sample keys, or None for a skip marker."""
    out = []
    for i, batch in enumerate(loader):
        if n is not None and i >= n:
            break
        out.append([m["key"] for m in batch["meta"]] if "f0" in batch else None)
    return out


def pretrain(shards, workers: int, epoch: int = 0, skip: int = 0, batch: int = 4, per_worker: int = 6):
    pipe = data.pretrain_pipeline(shards, batch_size=batch, batches_per_worker=per_worker, seed=7, epoch=epoch,
                                  skip_batches=skip, shuffle_buffer=8)
    return data.make_loader(pipe, workers=workers, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[str]:
    return data.list_shards(write_shards(tmp_path_factory.mktemp("shards")))


def test_list_shards_needs_the_done_marker(tmp_path):
    root = write_shards(tmp_path / "s", shards=2, per_shard=2)
    (root / "000001_stats.json").unlink()
    assert [Path(s).name for s in data.list_shards(root)] == ["000000.tar"]
    assert data.count_samples(data.list_shards(root)) == 2
    with pytest.raises(MerDataError, match="no complete shard"):
        data.list_shards(tmp_path)
    with pytest.raises(MerDataError, match="no such folder"):
        data.list_shards(tmp_path / "missing")


def test_batches_are_uint8_pairs_and_epoch_length_is_fixed(shards):
    batches = list(pretrain(shards, workers=2))
    assert len(batches) == 2 * 6  # with_epoch: 6 batches in each of the 2 workers
    b = batches[0]
    assert b["f0"].dtype == torch.uint8 and b["f0"].shape == (4, 32, 32, 3) and b["f1"].shape == (4, 32, 32, 3)
    assert not torch.equal(b["f0"], b["f1"])  # I_{t+δ} is the shifted crop
    assert b["meta"][0]["delta"] == 5 and b["skipped"] == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_is_a_function_of_seed_and_epoch(shards, workers):
    first, again, next_epoch = keys_of(pretrain(shards, workers)), keys_of(pretrain(shards, workers)), \
        keys_of(pretrain(shards, workers, epoch=1))
    assert first == again
    assert first != next_epoch
    assert len({k for batch in first for k in batch}) > 8  # the resampled stream mixes shards and samples


@pytest.mark.parametrize("workers,skip", [(0, 5), (2, 5), (2, 4)])
def test_resume_skip_reproduces_the_rest_of_the_epoch(shards, workers, skip):
    full = keys_of(pretrain(shards, workers))
    resumed = keys_of(pretrain(shards, workers, skip=skip))
    assert resumed[:skip] == [None] * skip  # the consumed batches come back as undecoded markers
    assert resumed[skip:] == full[skip:]


def test_finite_loader_reads_every_sample_once(shards):
    loader = data.make_loader(data.finite_pipeline(shards, batch_size=5), workers=2, device=torch.device("cpu"))
    keys = [k for batch in keys_of(loader) for k in batch]
    assert sorted(keys) == sorted(f"s{s}_{i:03d}" for s in range(3) for i in range(12))


def test_corrupt_shard_is_skipped_with_a_counted_warning(tmp_path, caplog):
    root = write_shards(tmp_path / "s", shards=3, per_shard=6)
    (root / "000001.tar").write_bytes(b"this is not a tar archive" * 100)
    blob = bytearray((root / "000002.tar").read_bytes())
    (root / "000002.tar").write_bytes(bytes(blob[: len(blob) // 2]))  # truncated mid-sample
    shards = data.list_shards(root)
    with caplog.at_level(logging.WARNING, logger="mubert.data"), deadline(60):
        batches = list(pretrain(shards, workers=0, per_worker=10))
    assert len(batches) == 10 and all("f0" in b for b in batches)
    skipped = sum(b["skipped"] for b in batches)
    warnings = [r.getMessage() for r in caplog.records if "skipped unreadable" in r.getMessage()]
    assert skipped > 0 and len(warnings) == skipped
    assert f"({skipped} so far in this worker)" in warnings[-1]
    with deadline(60):  # in worker processes too: counts travel with the batches
        assert sum(b["skipped"] for b in pretrain(shards, workers=2, per_worker=5)) > 0


def test_only_corrupt_shards_raise_instead_of_hanging(tmp_path):
    (tmp_path / "000000.tar").write_bytes(b"garbage" * 50)
    (tmp_path / "000000_stats.json").write_text("{}")
    pipe = data.pretrain_pipeline(data.list_shards(tmp_path), batch_size=2, batches_per_worker=3, seed=0, epoch=0,
                                  error_limit=20)
    with deadline(60), pytest.raises(MerDataError, match="20 unreadable shards or samples in a row"):
        list(data.make_loader(pipe, workers=0, device=torch.device("cpu")))


class Boom:
    def __reduce__(self):  # unpickling this would raise: it must never be unpickled
        return (exec, ("raise RuntimeError('pickle member was decoded')",))


def test_pickle_members_are_never_loaded_and_bad_images_are_counted(tmp_path):
    root = write_shards(tmp_path / "s", shards=1, per_shard=4)
    with tarfile.open(root / "000000.tar", "a") as tar:
        for name, payload in (("s0_000.evil.pyd", pickle.dumps(Boom())), ("s0_009.f0.jpg", b"not a jpeg"),
                              ("s0_009.f1.jpg", b"not a jpeg either")):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    loader = data.make_loader(data.finite_pipeline(data.list_shards(root), batch_size=10), workers=0,
                              device=torch.device("cpu"))
    batches = list(loader)
    assert len(batches) == 1 and batches[0]["f0"].shape[0] == 4 and batches[0]["skipped"] == 1
    assert all(set(m) >= {"key", "dataset"} for m in batches[0]["meta"])


def test_to_device_converts_and_resizes():
    frames = torch.full((2, 16, 16, 3), 255, dtype=torch.uint8)
    frames[:, :, :, 1] = 0
    x = data.to_device(frames, torch.device("cpu"))
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32
    assert x[:, 0].eq(1).all() and x[:, 1].eq(0).all()
    y = data.to_device(frames, torch.device("cpu"), size=32)
    assert y.shape == (2, 3, 32, 32) and torch.allclose(y[:, 0], torch.ones(2, 32, 32))
