"""The views against their references: TV-L1 recovers a known sub-pixel shift, strain equals its closed form, the
dynamic image's weights are Bilen et al.'s, sequences are uniform and inclusive, bad options are one-line errors."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from mer_data import MerDataError
from mer_data.flow import remove_head_motion, strain, tvl1
from mer_data.views import StoredSample, make_view
from mer_data.views.dynamic import rank_pool_weights

SHIFT = (0.35, -0.6)  # (x, y) px: sub-pixel, both signs


def texture(side: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture, uint8 (side, side): TV-L1 needs gradients everywhere."""
    noise = np.random.default_rng(seed).random((side, side)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return cv2.normalize(smooth, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """image moved by (dx, dy): out(x) = image(x − d), bicubic."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, image.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def stored(frames: dict[int, np.ndarray], onset: int, apex: int, flow: np.ndarray | None = None) -> StoredSample:
    """A StoredSample of gray uint8 frames by number, encoded as PNG (lossless)."""
    images = {n: cv2.imencode(".png", cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))[1].tobytes() for n, f in frames.items()}
    meta = {"onset": onset, "apex": apex, "offset": max(frames), "frames": sorted(frames), "format": "png"}
    return StoredSample("k", meta, images, flow)


def test_tvl1_recovers_a_known_subpixel_shift():
    first = texture(96)
    flow = tvl1(first, shifted(first, *SHIFT))
    inner = flow[:, 12:-12, 12:-12]  # away from the reflected border
    error = np.hypot(inner[0] - SHIFT[0], inner[1] - SHIFT[1])
    assert error.mean() < 0.1


def test_flow_view_of_a_shifted_pair_and_its_variants():
    first = texture(96, seed=1)
    sample = stored({0: first, 5: shifted(first, *SHIFT), 9: first}, onset=0, apex=5)
    uv = make_view("flow", channels="uv")(sample)
    assert uv.shape == (2, 96, 96)
    assert abs(np.median(uv[0]) - SHIFT[0]) < 0.1 and abs(np.median(uv[1]) - SHIFT[1]) < 0.1
    still = make_view("flow", channels="uvm", gap=4, start=5)(sample)  # any pair: frames 5 → 9 moves back
    assert np.median(still[0]) == pytest.approx(-SHIFT[0], abs=0.1)
    small = make_view("flow", channels="uvs", size=28, norm="clip15")(sample)
    assert small.shape == (3, 28, 28) and small.min() >= 0 and small.max() <= 1
    assert np.median(small[0]) == pytest.approx(np.rint((SHIFT[0] + 15) / 30 * 255) / 255, abs=2 / 255)
    scaled = make_view("flow", norm="minmax")(sample)
    assert np.allclose(scaled.min(axis=(1, 2)), 0) and np.allclose(scaled.max(axis=(1, 2)), 1)
    head = make_view("flow", channels="uv", nose=True)(sample)  # a uniform shift is all head motion
    assert np.abs(np.median(head, axis=(1, 2))).max() < 0.05


def test_stored_flow_is_read_only_for_the_onset_apex_pair_at_its_side():
    first = texture(64, seed=2)
    marker = np.full((2, 64, 64), 7.0, np.float32)  # not a flow TV-L1 would give: shows where it was read
    sample = stored({0: first, 3: shifted(first, *SHIFT), 4: first}, onset=0, apex=3, flow=marker)
    assert np.array_equal(make_view("flow", channels="uv")(sample), marker)
    assert not np.array_equal(make_view("flow", channels="uv", compute=32)(sample)[:, :4, :4], marker[:, :4, :4])
    assert np.abs(make_view("flow", channels="uv", start=3, gap=1)(sample)).max() < 7


def _field(side: int):
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    a, b, c, d, e, f = 0.02, -0.01, 0.003, 0.015, -0.025, 0.002
    u, v = a * x + b * y + c * x ** 2, d * x + e * y + f * y ** 2
    return x, y, u, v, (a, b, c, d, e, f)


def test_strain_equals_the_closed_form_of_an_analytic_field():
    x, y, u, v, (a, b, c, d, e, f) = _field(40)
    # ε = ½(∇w + ∇wᵀ): |ε| = sqrt(ε_xx² + ε_yy² + 2 ε_xy²); Sobel/8 is the central difference here (exact: quadratic)
    exy = 0.5 * (b + d)
    central = np.sqrt((a + 2 * c * x) ** 2 + (e + 2 * f * y) ** 2 + 2 * exy ** 2)
    got = strain(u.astype(np.float32), v.astype(np.float32), "sobel")
    assert np.allclose(got[1:-1, 1:-1], central[1:-1, 1:-1], atol=1e-5)
    # forward differences are the derivative half a pixel on: a + c(2x + 1), e + f(2y + 1)
    forward = np.sqrt((a + c * (2 * x + 1)) ** 2 + (e + f * (2 * y + 1)) ** 2 + 2 * exy ** 2)
    got = strain(u.astype(np.float32), v.astype(np.float32), "forward")
    assert np.allclose(got[:-1, :-1], forward[:-1, :-1], atol=1e-5)


def test_head_motion_removal_keeps_the_motion_relative_to_the_nose():
    flow = np.zeros((2, 64, 64), np.float32)
    flow[0] += 2.0
    flow[1, :10] += 1.0  # brows move up against the head: kept
    out = remove_head_motion(flow)
    assert np.allclose(out[0], 0) and np.allclose(out[1, :10], 1) and np.allclose(out[1, 30:], 0)


@pytest.mark.parametrize("count", range(2, 17))
def test_rank_pool_weights_are_the_closed_form(count):
    h = [Fraction(0)]
    for i in range(1, count + 1):
        h.append(h[-1] + Fraction(1, i))
    expect = [2 * (count - t + 1) - (count + 1) * (h[count] - h[t - 1]) for t in range(1, count + 1)]
    assert np.allclose(rank_pool_weights(count), [float(w) for w in expect], atol=1e-12)
    assert sum(expect) == 0  # so a still sequence pools to nothing


def test_dynamic_image_of_a_constant_sequence_is_zero_and_of_a_ramp_is_not():
    still = texture(32)
    sample = stored({n: still for n in range(10, 21)}, onset=10, apex=15)
    assert np.abs(make_view("dynamic", frames=8, color=False)(sample)).max() < 1e-5
    ramp = stored({n: np.full((32, 32), 10 * (n - 10), np.uint8) for n in range(10, 21)}, onset=10, apex=15)
    image = make_view("dynamic", frames=8, color=False)(ramp)
    assert image.shape == (1, 32, 32) and image.min() > 0  # brightening over time: a positive dynamic image


def test_sequence_frames_are_uniform_and_inclusive():
    frames = {n: texture(16, n) for n in range(100, 131)}
    sample = stored(frames, onset=100, apex=112)
    view = make_view("sequence", frames=8, color=False, size=8)
    used = view.frames_used(sample, None)
    assert used[0] == 100 and used[-1] == 130 and len(used) == 8
    steps = np.diff(used)
    assert steps.max() - steps.min() <= 1 and abs(steps.mean() - 30 / 7) < 1e-9
    x = view(sample)
    assert x.shape == (8, 1, 8, 8) and x.dtype == np.float32


def test_pair_jitter_draws_within_the_faceSleuth_window():
    frames = {n: texture(16, n) for n in range(0, 81)}
    sample = stored(frames, onset=0, apex=80)
    view = make_view("pair", jitter=0.0375, color=False)
    assert view.frames_used(sample, None) == [0, 80]
    draws = np.array([view.frames_used(sample, np.random.default_rng(s)) for s in range(200)])
    assert draws[:, 0].min() == 0 and draws[:, 0].max() == 3  # ⌊0.0375 · 80⌋ = 3 frames
    assert draws[:, 1].min() == 77 and draws[:, 1].max() == 80
    assert view(sample).shape == (2, 1, 16, 16)


def test_diff_is_apex_minus_onset():
    a, b = np.full((8, 8), 40, np.uint8), np.full((8, 8), 100, np.uint8)
    out = make_view("diff", color=True)(stored({0: a, 2: b}, onset=0, apex=2))
    assert out.shape == (3, 8, 8) and np.allclose(out, 60 / 255)


@pytest.mark.parametrize("name, options, words", [
    ("flw", {}, "unknown view 'flw'"),
    ("flow", {"sise": 28}, "unknown option 'sise'"),
    ("flow", {"norm": "log"}, "norm='log'"),
    ("flow", {"channels": "uvx"}, "channels='uvx'"),
    ("flow", {"strain": "central"}, "strain='central'"),
    ("sequence", {"frames": 1}, "frames=1"),
    ("pair", {"jitter": 2.0}, "jitter=2.0"),
    ("pair", {"color": "yes"}, "color='yes'"),
    ("dynamic", {"size": -1}, "size=-1"),
])
def test_bad_view_options_are_one_line_errors(name, options, words):
    with pytest.raises(MerDataError) as info:
        make_view(name, **options)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_sample_of_the_two_frame_layout_reads_as_onset_and_apex():
    """Shards written before whole expressions hold f0, f1 and a json without `frames`."""
    import json

    a, b = texture(16, 3), texture(16, 4)
    members = {"f0.jpg": cv2.imencode(".jpg", a)[1].tobytes(), "f1.jpg": cv2.imencode(".jpg", b)[1].tobytes(),
               "json": json.dumps({"onset": 3, "apex": 9, "offset": 12, "format": "jpg"}).encode()}
    sample = StoredSample.from_members("k", members)
    assert sample.numbers == [3, 9] and sample.end == 9 and sample.flow is None
    assert make_view("sequence", frames=3, color=False).frames_used(sample, None) == [3, 3, 9]
    del members["f1.jpg"]
    with pytest.raises(MerDataError, match="frame 9"):
        StoredSample.from_members("k", members)
