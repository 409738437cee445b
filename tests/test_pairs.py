"""Pair planning: δ range, per-clip seeded draws, stride and pairs-per-frame, short clips, keys."""

import pytest

from mer_data.pairs import ANCHOR_BLOCK, anchor_count, clip_seed, pairs_in, parse_delta, plan_pairs, sample_key


def test_delta_in_range_and_pairs_point_forward():
    numbers = list(range(100, 160))
    pairs = plan_pairs(100, 159, "casme2/sub01/EP01", delta=(5, 11))
    assert pairs and all(5 <= p.delta <= 11 and p.t1 == p.t0 + p.delta for p in pairs)
    assert all(p.t1 <= numbers[-1] for p in pairs)
    assert [p.t0 for p in pairs] == numbers[: len(pairs)]  # every frame is an anchor while δ ≥ 5 fits
    assert pairs[-1].t0 == numbers[-1] - 5  # the last anchors draw δ from a shrinking range
    assert len({p.delta for p in pairs}) > 3  # really drawn, not constant


def test_draws_are_per_clip_and_reproducible():
    a = plan_pairs(0, 49, "samm/006/006_1_2", seed=0)
    assert a == plan_pairs(0, 49, "samm/006/006_1_2", seed=0)
    assert a != plan_pairs(0, 49, "samm/006/006_1_3", seed=0)
    assert a != plan_pairs(0, 49, "samm/006/006_1_2", seed=1)
    assert clip_seed(0, "x") == clip_seed(0, "x") != clip_seed(0, "y")


def test_stride_and_pairs_per_frame():
    pairs = plan_pairs(0, 39, "k", delta=(3, 6), pairs_per_frame=3, stride=4)
    anchors = sorted({p.t0 for p in pairs})
    assert anchors == list(range(0, 37, 4))
    assert all(sum(p.t0 == a for p in pairs) == 3 for a in anchors)


def test_short_clip_gives_no_pairs():
    assert plan_pairs(0, 4, "k", delta=(5, 11)) == []  # 5 frames: largest gap is 4
    assert len(plan_pairs(0, 5, "k", delta=(5, 11))) == 1
    assert anchor_count(0, 4, (5, 11)) == 0 and anchor_count(0, 5, (5, 11)) == 1 and anchor_count(0, 40, (5, 11), 4) == 9


def test_missing_frame_is_still_planned_by_number():
    pairs = plan_pairs(0, 29, "k", delta=(5, 5))  # the folder may lack frame 12: only first and last matter
    assert any(p.t0 == 12 for p in pairs)  # the gap is an anchor: it surfaces as a bad_frame row, not a silent shift
    assert all(p.delta == 5 for p in pairs)


@pytest.mark.parametrize("ppf,stride", [(1, 1), (3, 2)])
def test_any_range_of_pairs_is_drawn_alone(ppf, stride):
    """A shard draws its rows without drawing the rows before them: ranges agree with the whole, across blocks."""
    last = 3 * ANCHOR_BLOCK * stride + 17
    whole = plan_pairs(0, last, "casme3/spNO.1/a", pairs_per_frame=ppf, stride=stride, seed=4)
    assert len(whole) == anchor_count(0, last, (5, 11), stride) * ppf
    for lo, hi in [(0, 5), (ANCHOR_BLOCK * ppf - 3, ANCHOR_BLOCK * ppf + 4), (len(whole) - 7, len(whole)), (9, 9)]:
        assert pairs_in(0, last, "casme3/spNO.1/a", lo, hi, pairs_per_frame=ppf, stride=stride, seed=4) == whole[lo:hi]


@pytest.mark.parametrize("text,expected", [("5:11", (5, 11)), ("7", (7, 7)), ("1:1", (1, 1))])
def test_parse_delta(text, expected):
    assert parse_delta(text) == expected


@pytest.mark.parametrize("text", ["11:5", "0:3", "a:b", "5:", "1:2:3", "-1:4"])
def test_parse_delta_rejects(text):
    with pytest.raises(ValueError):
        parse_delta(text)


def test_sample_key_has_no_dots_and_sorts_by_index():
    key = sample_key(7, "casme3/spNO.1", "a", 355)
    assert "." not in key and key.startswith("000000007-") and "spNO_1" in key
    assert sample_key(10, "z") > sample_key(9, "z")
