"""DCT-scaled decoding: where libjpeg-turbo's reduced decode puts the pixels, the per-clip choice of the scale, and the
ingest's output with it (recorded, aligned against the true eyes, the same bytes however the clips are cut into shards)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mer_data import jpeg_region
from mer_data.align import EYE_DISTANCE, Face, apply, compose, decode_reduction, warp
from mer_data.frame_window import FrameWindow
from mer_data.frames import dct_scalable, open_video, read_image, reduced_to_source
from mer_data.records import Clip
from mer_data.shards import tar_samples
from mer_data.synth import generate
from pipelines.ingest import IngestConfig, run_ingest

UPSCALE = 3.5  # the generator's 320×240 faces (eyes ≈ 43 px apart) → ≈ 150 px: more than twice the output's 67 px


def _blob(path: Path, centre: tuple[float, float], shape=(240, 320)) -> None:
    """A smooth bright spot at `centre` (x, y) on a dark image, written as a high-quality JPEG (or by extension)."""
    y, x = np.mgrid[0: shape[0], 0: shape[1]].astype(np.float64)
    spot = 40 + 200 * np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * 6.0 ** 2))
    cv2.imwrite(str(path), np.repeat(spot[:, :, None], 3, axis=2).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])


def _centroid(image: np.ndarray) -> np.ndarray:
    weight = np.clip(image[:, :, 1].astype(np.float64) - 60, 0, None)
    y, x = np.mgrid[0: image.shape[0], 0: image.shape[1]]
    return np.array([(weight * x).sum(), (weight * y).sum()]) / weight.sum()


@pytest.mark.parametrize("ext", [".jpg", ".png"])
@pytest.mark.parametrize("d", [2, 4, 8])
def test_reduced_decode_puts_pixels_where_reduced_to_source_says(tmp_path, ext, d):
    centre = (131.3, 77.8)
    path = tmp_path / f"spot{ext}"
    _blob(path, centre)
    image = read_image(str(path), native=True, reduction=d)
    assert image.shape == (-(-240 // d), -(-320 // d), 3)
    found = apply(reduced_to_source(d), _centroid(image))[0]
    assert np.hypot(*(found - centre)) < 0.1 * d  # libjpeg's scaled IDCT (jpg) and the block average (png) agree


def test_warping_a_reduced_decode_matches_the_full_scale_warp(tmp_path):
    path = tmp_path / "spot.jpg"
    _blob(path, (160.0, 120.0))
    matrix = np.array([[0.5, 0.02, -34.0], [-0.02, 0.5, -9.0]])  # halves, away from the frame's edges
    full = warp(read_image(str(path), native=True), matrix, 96).astype(np.float64)
    half = warp(read_image(str(path), native=True, reduction=2), compose(matrix, reduced_to_source(2)), 96)
    assert np.abs(full - half).max() < 6  # the same picture: a misplaced spot would differ by tens of levels


def test_decode_reduction_keeps_the_face_at_the_output_resolution():
    def face(eye_px: float) -> Face:
        return Face(0.9, (0.0, 0.0, 1.0, 1.0), (100.0, 100.0), (100.0 + eye_px, 100.0))

    out_eyes = EYE_DISTANCE * 224
    assert decode_reduction(None, 224) == 1
    assert decode_reduction(face(out_eyes * 1.99), 224) == 1
    assert decode_reduction(face(out_eyes * 2.0), 224) == 2
    assert decode_reduction(face(out_eyes * 5.0), 224) == 4
    assert decode_reduction(face(out_eyes * 30.0), 224) == 8
    assert decode_reduction(face(out_eyes * 2.0), 112) == 4  # a smaller output allows more


def test_frame_window_counts_the_decodes_that_serve_a_detection_only(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for n in (1, 2, 3):
        _blob(folder / f"img{n}.jpg", (10.0 * n, 10.0))
    with FrameWindow(Clip("d", "s1", "c", str(folder), "frames", r"img(\d+)\.jpg")) as frames:
        assert frames.full(1).shape == (240, 320, 3)  # full scale: an ordinary, held decode
        frames.reduce(2)  # drops frame 1: it served the detection only
        assert frames.get(2).shape == (120, 160, 3) and frames.full(2).shape == (240, 320, 3)
        assert frames.get(2).shape == (120, 160, 3)  # held at the reduced scale; the full one was not kept
        assert (frames.decoded, frames.decoded_full) == (3, 2)


def test_dct_scaling_applies_to_jpeg_folders_only(tmp_path, synth_root):
    folder = tmp_path / "clip"
    folder.mkdir()
    _blob(folder / "img1.png", (10.0, 10.0))
    png = Clip("d", "s1", "c", str(folder), "frames", r"img(\d+)\.png")
    assert not dct_scalable(png)
    with FrameWindow(png) as frames:
        frames.reduce(2)  # a non-JPEG folder may still be read at reduced scale (decoded in full, then averaged)
        assert frames.get(1).shape == (120, 160, 3)
    video = next(iter(__import__("mer_data.datasets", fromlist=["ADAPTERS"]).ADAPTERS["casme3"].iter_clips(
        synth_root("casme3", video=True))))
    assert not dct_scalable(video)
    with FrameWindow(video) as frames, pytest.raises(ValueError, match="full scale only"):
        frames.reduce(2)
    cap = open_video(video.source, threads=2)
    assert cap.isOpened() and cap.get(cv2.CAP_PROP_N_THREADS) == 2
    cap.release()


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A drifting synthetic CASME II (one subject, two clips) enlarged UPSCALE times."""
    root = generate("casme2", tmp_path_factory.mktemp("large") / "casme2", subjects=1, clips_per_subject=2,
                    motion="drift")
    for path in sorted(root.rglob("*.jpg")):
        image = cv2.imread(str(path))
        cv2.imwrite(str(path), cv2.resize(image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC))
    return root


def _samples(out: Path) -> dict[str, tuple[dict, bytes, bytes]]:
    return {key: (json.loads(m["json"]), m["f0.jpg"], m["f1.jpg"])
            for path in sorted(out.glob("*.tar")) for key, m in tar_samples(path).items()}


def test_ingest_decodes_large_faces_at_half_scale_with_the_crops_of_full_scale(large, tmp_path):
    root = large
    runs, summaries = {}, {}
    for scale, shard_size in (("full", 1000), ("auto", 1000), ("auto", 7)):  # 7: every clip cut across shards
        out = tmp_path / f"{scale}{shard_size}"
        summaries[scale, shard_size] = run_ingest(IngestConfig(dataset="casme2", root=str(root), out=str(out),
                                                               workers=0, decode_scale=scale, shard_size=shard_size))
        runs[scale, shard_size] = _samples(out)
    full, auto = runs["full", 1000], runs["auto", 1000]
    assert {m["decode_scale"] for m, _, _ in full.values()} == {1.0}
    assert {m["decode_scale"] for m, _, _ in auto.values()} == {0.5}
    assert sorted(auto) == sorted(full)
    assert auto == runs["auto", 7]  # the scale and everything after it do not depend on the shard cut
    # faces are detected on full-scale decodes either way: the crops (hence the alignment error) are full's to the bit
    assert all(auto[k][0]["crop"] == full[k][0]["crop"] and auto[k][0]["eyes"] == full[k][0]["eyes"] for k in full)
    assert any(auto[k][1] != full[k][1] for k in full)  # while the pixels come from the half-scale decode
    # a detection's own full-scale decode is counted apart, so the per-frame figures are full's
    s_full, s_auto = summaries["full", 1000], summaries["auto", 1000]
    assert s_full["decoded_full"] == 0 and s_auto["decoded_full"] == 2  # each clip's first frame, before reduce()
    assert s_auto["detections"] == s_full["detections"]
    assert s_auto["decoded"] - s_auto["decoded_full"] == s_full["decoded"]
    assert s_auto["detections_per_frame"] == s_full["detections_per_frame"]


@pytest.mark.skipif(not jpeg_region.available(), reason="the JPEG region decoder (mer_data._jpeg) is not built here")
def test_region_decoding_writes_the_bytes_of_whole_frames(large, tmp_path):
    """Frames not detected on decode only the box their warps read, at full and at half scale; the shards are those
    of whole-frame decoding to the byte (a cut shard too: a segment starting inside a clip)."""
    for scale in ("full", "auto"):
        runs, summaries = {}, {}
        for regions, shard_size in ((False, 1000), (True, 1000), (True, 7)):
            out = tmp_path / f"{scale}-{regions}-{shard_size}"
            summaries[regions, shard_size] = run_ingest(IngestConfig(
                dataset="casme2", root=str(large), out=str(out), workers=0, decode_scale=scale, shard_size=shard_size,
                decode_regions=regions))
            runs[regions, shard_size] = _samples(out)
        assert runs[True, 1000] == runs[False, 1000] == runs[True, 7]
        whole, part = summaries[False, 1000], summaries[True, 1000]
        assert whole["decoded_regions"] == 0 and part["decoded_regions"] > 0.7 * part["frames_encoded"]
        assert part["detections"] == whole["detections"]
    labeled = {}
    for regions in (False, True):  # whole expressions: one matrix over onset..offset, the flow view from the warps
        out = tmp_path / f"labeled-{regions}"
        summary = run_ingest(IngestConfig(dataset="casme2", root=str(large), out=str(out), workers=0, labeled=True,
                                          views=("flow",), decode_regions=regions))
        assert summary["ok"] and (summary["decoded_regions"] > 0) == regions
        labeled[regions] = [tar_samples(p) for p in sorted(out.glob("*.tar"))]
    assert labeled[True] == labeled[False]
