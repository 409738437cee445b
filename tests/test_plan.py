"""The ingest layout: rows made by any shard equal the clip's pairs, the driver lists lazily and holds O(clips)."""

import tracemalloc

import pytest

from mer_data.pairs import plan_pairs
from mer_data.records import STATUS_OK, Clip
from pipelines import plan
from pipelines.plan import ClipSpan, PairOptions, layout_labeled, layout_unlabeled, segment_rows


def _fake_listing(monkeypatch, lengths: dict[str, int], log: list | None = None):
    """Clips whose listing says they run 0..length-1 (no files needed)."""
    def list_clip(clip: Clip) -> ClipSpan:
        if log is not None:
            log.append(("list", clip.clip))
        n = lengths[clip.clip]
        return ClipSpan(clip, 0, n - 1, n, 30.0) if n else ClipSpan(clip, status="no_frames", reason="empty")

    monkeypatch.setattr(plan, "list_clip", list_clip)
    return [Clip("casme3", f"casme3/spNO.{i % 3}", name, f"/nowhere/{name}") for i, name in enumerate(lengths)]


def test_rows_of_every_shard_are_the_clips_pairs_in_order(monkeypatch):
    clips = _fake_listing(monkeypatch, {"a": 40, "b": 3, "c": 130, "d": 0})
    opts = PairOptions(delta=(5, 11), pairs_per_frame=2, stride=3, seed=7)
    specs = list(layout_unlabeled(clips, opts, shard_size=17))
    rows = [r for s in specs for seg in s.segments for r in segment_rows(seg, opts)]
    assert [r["index"] for r in rows] == list(range(len(rows)))
    assert all(len([r for seg in s.segments for r in segment_rows(seg, opts)]) == 17 for s in specs[:-1])
    for clip in clips:
        mine = [r for r in rows if r["clip"] == clip.clip]
        pairs = plan_pairs(0, {"a": 39, "b": 2, "c": 129, "d": -1}[clip.clip], clip.key, delta=(5, 11),
                           pairs_per_frame=2, stride=3, seed=7)
        if pairs:
            assert [(r["t0"], r["t1"]) for r in mine] == [(p.t0, p.t1) for p in pairs]
        else:  # one failure row: too short, or no frames
            assert [r["status"] for r in mine] == [{"b": "clip_too_short", "d": "no_frames"}[clip.clip]]
    assert sum(s.clips_finished for s in specs) == len(clips)


def test_first_shard_is_handed_out_before_later_clips_are_listed(monkeypatch):
    log: list = []
    clips = _fake_listing(monkeypatch, {f"v{i:03d}": 100 for i in range(50)}, log)
    specs = layout_unlabeled(clips, PairOptions(), shard_size=200)
    first = next(specs)
    assert first.index == 0 and len(log) <= 3  # 200 rows need three clips of 89 pairs, not fifty


@pytest.mark.parametrize("frames_per_clip", [10_000, 100_000])
def test_driver_memory_does_not_grow_with_pairs(monkeypatch, frames_per_clip):
    """10 clips of 10k or 100k frames: 100k or 1M pairs planned into shards while holding about the same memory."""
    clips = _fake_listing(monkeypatch, {f"v{i}": frames_per_clip for i in range(10)})
    tracemalloc.start()
    count = 0
    for spec in layout_unlabeled(clips, PairOptions(), shard_size=1000):
        count += sum(seg.size for seg in spec.segments)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 10 * (frames_per_clip - 5)
    assert peak < 200_000  # bytes: a few specs, never a list of pairs (a pair row is ~1 kB as a dict)


def test_labeled_layout_keeps_bad_rows_and_marks_missing_clips(monkeypatch):
    from mer_data.records import Sample

    clips = _fake_listing(monkeypatch, {"a": 60})
    samples = [Sample("casme3/spNO.0/a/30", "casme3", "casme3/spNO.0", "a", 30, 35, 40, "happy"),
               Sample("casme3/spNO.0/a/5", "casme3", "casme3/spNO.0", "a", 5, 9, 12, "sad"),
               Sample("casme3/spNO.0/a/7", "casme3", "casme3/spNO.0", "a", 7, None, 12, "sad", status="bad_apex",
                      reason="apex is '/'"),
               Sample("casme3/spNO.9/z/1", "casme3", "casme3/spNO.9", "z", 1, 2, 3, "fear")]
    specs = list(layout_labeled(clips, samples, shard_size=3))
    rows = [r for s in specs for seg in s.segments for r in segment_rows(seg, PairOptions())]
    assert [r["sample_id"] for r in rows] == ["casme3/spNO.0/a/5", "casme3/spNO.0/a/7", "casme3/spNO.0/a/30",
                                             "casme3/spNO.9/z/1"]
    assert [r["status"] for r in rows] == [STATUS_OK, "bad_apex", STATUS_OK, "missing_clip"]
    assert (rows[0]["t0"], rows[0]["t1"]) == (5, 9) and [s.index for s in specs] == [0, 1]


def test_a_folder_that_cannot_be_listed_is_a_row(tmp_path, monkeypatch):
    import os

    from pipelines.plan import list_clip

    folder = tmp_path / "sub01" / "EP01"
    folder.mkdir(parents=True)
    clip = Clip("casme2", "casme2/sub01", "EP01", str(folder), pattern=r"img(\d+)\.jpg")
    assert list_clip(clip).status == "no_frames"
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p: (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
                        if str(p) == str(folder) else real(p))
    span = list_clip(clip)
    assert span.status == "unreadable_folder" and "Permission denied" in span.reason
    assert list_clip(Clip("casme2", "casme2/sub01", "gone", str(tmp_path / "gone"))).status == "unreadable_folder"


class _FakeRay:
    """Just enough of `ray` for the driver loop: tasks run when submitted; records the most ever in flight."""

    class exceptions:  # noqa: N801 (mirrors ray.exceptions)
        RayError = RuntimeError

    def __init__(self, initialized: bool = True):
        self.in_flight, self.most, self.initialized = set(), 0, initialized

    def is_initialized(self):
        return self.initialized

    def init(self, **_):
        self.initialized = True

    def shutdown(self):
        self.initialized = False

    def remote(self, **_):
        fake = self

        class Task:
            def __init__(self, fn):
                self.fn = fn

            def remote(self, *args):
                ref = object()
                fake.results = getattr(fake, "results", {})
                fake.results[ref] = self.fn(*args)
                fake.in_flight.add(ref)
                fake.most = max(fake.most, len(fake.in_flight))
                return ref

        return Task

    def wait(self, refs, num_returns=1):
        return refs[:1], refs[1:]

    def get(self, ref):
        self.in_flight.discard(ref)
        return self.results.pop(ref)

    def get_runtime_context(self):
        return type("Ctx", (), {"get_node_id": lambda self: "node-0"})()


@pytest.mark.parametrize("joined", [True, False])
def test_the_ray_driver_keeps_a_bounded_number_of_tasks_in_flight(monkeypatch, tmp_path, joined):
    """A session of its own queues IN_FLIGHT × workers tasks (Ray runs `workers` of them); a joined session, which may
    have more CPUs and would run every queued task at once, gets exactly `workers` in flight."""
    import sys

    from pipelines import ingest

    fake = _FakeRay(initialized=joined)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(ingest, "run_shard", lambda spec, opts: {"rows": 1, "written": 1, "failures_by_reason": {},
                                                               "frames_encoded": 2})
    clips = _fake_listing(monkeypatch, {f"v{i}": 30 for i in range(40)})
    specs = layout_unlabeled(clips, PairOptions(), shard_size=10)
    cfg = ingest.IngestConfig(out=str(tmp_path), workers=3)
    tally = ingest.Tally(tmp_path, 0.0)
    bar = type("Bar", (), {"update": lambda self, n: None, "set_postfix": lambda self, **kw: None})()
    ingest._run_ray(specs, set(), None, cfg, bar, tally)
    assert tally.shards == tally.shards_run == 100 and fake.most == (1 if joined else ingest.IN_FLIGHT) * 3
    assert tally.nodes == {"node-0"}
