"""Frame decoding: a video read in late chunks seeks instead of decoding from the start, with the same pixels."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from mer_data import frames
from mer_data.frames import ClipReader, FrameError, iter_frames, to_rgb
from mer_data.records import Clip

_OPENED = cv2.VideoCapture


class CountingCapture:
    """Wraps a VideoCapture and counts grab() calls (each one decodes a frame the caller skips).

    A wrapper, not a subclass: subclassing the OpenCV 5 binding type crashes the interpreter during collection.
    """

    grabs = 0

    def __init__(self, *args):
        self._cap = _OPENED(*args)

    def grab(self):
        CountingCapture.grabs += 1
        return self._cap.grab()

    def __getattr__(self, name):
        return getattr(self._cap, name)


class DriftingCapture(CountingCapture):
    """A capture whose seeks report landing one frame off, as a file with broken timestamps can."""

    def get(self, prop):
        value = self._cap.get(prop)
        return value + 1 if prop == cv2.CAP_PROP_POS_FRAMES else value


def _video(root: Path, suffix: str) -> Path:
    return sorted(root.rglob(f"*{suffix}"), key=lambda p: (-cv2.VideoCapture(str(p)).get(cv2.CAP_PROP_FRAME_COUNT), p))[0]


def _every_frame(path: Path) -> list[np.ndarray]:
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = cap.read()
        if not ok:
            return out
        out.append(to_rgb(image))


@pytest.fixture(params=[("casme2", ".avi"), ("casme3", ".mp4")], ids=["mjpg-avi", "mp4v-mp4"])
def video(request, synth_root):
    dataset, suffix = request.param
    path = _video(synth_root(dataset, video=True), suffix)
    fourcc = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().upper()
    assert fourcc in {".avi": {"MJPG"}, ".mp4": {"MP4V", "FMP4"}}[suffix]  # MPEG-4 part 2 reads back as FMP4
    return path


def test_seeking_gives_the_pixels_of_a_sequential_decode(video, monkeypatch):
    reference = _every_frame(video)
    n = len(reference)
    assert n >= 20
    first = 7  # frame numbers are first + position, as for a dataset whose video starts at the onset
    clip = Clip("x", "x/s", "c", str(video), kind="video", first=first)
    monkeypatch.setattr(ClipReader, "SEEK_AHEAD", 2)
    monkeypatch.setattr(frames.cv2, "VideoCapture", CountingCapture)
    CountingCapture.grabs = 0
    late = [first + n - 4, first + n - 2]
    chunks = [late, [first + 1, first + 3], [first + n // 2, first + n // 2 + 1], [first + n, first - 1]]
    with ClipReader(clip) as reader:
        got = {k: v for chunk in chunks for k, v in reader.frames(chunk)}
    for number in late + chunks[1] + chunks[2]:
        assert np.array_equal(got[number], reference[number - first]), number
    assert isinstance(got[first + n], FrameError) and isinstance(got[first - 1], FrameError)
    assert CountingCapture.grabs <= 2  # seeks, not a fast-forward over n - 4 frames from the start


def test_a_seek_that_lands_elsewhere_falls_back_to_decoding(video, monkeypatch):
    reference = _every_frame(video)
    target = len(reference) - 3
    clip = Clip("x", "x/s", "c", str(video), kind="video")
    monkeypatch.setattr(ClipReader, "SEEK_AHEAD", 2)
    monkeypatch.setattr(frames.cv2, "VideoCapture", DriftingCapture)
    CountingCapture.grabs = 0
    with ClipReader(clip) as reader:
        (number, image), = reader.frames([target])
        assert np.array_equal(image, reference[target])
        assert CountingCapture.grabs == target  # reopened and decoded forward from frame 0
        (_, image), = reader.frames([1])  # backwards after a failed seek: decoded again from the start
        assert np.array_equal(image, reference[1])


def test_iter_frames_native_order_matches_rgb(video):
    clip = Clip("x", "x/s", "c", str(video), kind="video")
    with ClipReader(clip, native=True) as reader:
        native = dict(reader.frames([0, 5]))
    rgb = dict(iter_frames(clip, [0, 5]))
    for n in (0, 5):
        assert np.array_equal(to_rgb(native[n]), rgb[n])


def test_frame_window_decodes_each_frame_once_and_holds_only_what_is_unreleased(video):
    from mer_data.frame_window import FrameWindow

    reference = _every_frame(video)
    clip = Clip("x", "x/s", "c", str(video), kind="video")
    with FrameWindow(clip) as window:
        assert np.array_equal(to_rgb(window.get(9)), reference[9])  # reads 0..9 on the way and keeps them
        assert window.decoded == 10 and window.held == 10
        assert np.array_equal(to_rgb(window.get(3)), reference[3]) and window.decoded == 10  # held: no decode
        window.release(8)
        assert window.held == 2
        for n in range(8, 15):
            assert np.array_equal(to_rgb(window.get(n)), reference[n])
        assert window.decoded == 15  # every frame decoded exactly once
        assert isinstance(window.get(len(reference) + 5), FrameError)


def test_frame_span_scans_a_folder(tmp_path):
    from mer_data.frames import frame_span

    for n in (12, 3, 40):
        cv2.imwrite(str(tmp_path / f"img{n}.jpg"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    assert frame_span(Clip("x", "x/s", "c", str(tmp_path), pattern=r"img(\d+)\.jpg")) == (3, 40, 3)
    with pytest.raises(OSError):
        frame_span(Clip("x", "x/s", "c", str(tmp_path / "none")))


def test_keep_freed_frames_sets_glibc_thresholds_once():
    """On glibc the allocator setting is applied (and stays applied); elsewhere it reports that it could not be."""
    import platform

    from mer_data.frames import keep_freed_frames

    expected = platform.libc_ver()[0] == "glibc"
    assert keep_freed_frames() is expected
    assert keep_freed_frames() is expected
