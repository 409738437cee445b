"""The published counts, from trees built around the real official sheets in ../shared/me-annotations (skipped without
them; see real_trees.py for how the trees are built)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from manifests.build import SplitConfig, build_manifest
from manifests.megc2019 import compare_official, read_official
from real_trees import OFFICIAL, build_trees, composite, needs_shared

pytestmark = needs_shared


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("real")
    out = build_trees(base, ["casme2", "casme2_20190701", "samm", "casme3", "smic"])
    out["megc2019"] = composite(base, "megc2019", {d: out[d] for d in ("casme2", "samm", "smic")})
    # the composite from the newer CASME II sheet must come out the same
    out["megc2019_20190701"] = composite(base, "megc2019_20190701",
                                         {"casme2": out["casme2_20190701"], "samm": out["samm"], "smic": out["smic"]})
    return out


def _ok_counts(cfg: SplitConfig) -> tuple[Counter, list[dict]]:
    rows = build_manifest(cfg).rows
    return Counter(r["label"] for r in rows if r["status"] == "ok"), rows


def test_casme2_5class_246_from_20140508(trees):
    counts, rows = _ok_counts(SplitConfig("casme2", root=trees["casme2"]))
    assert counts == {"happiness": 32, "disgust": 63, "repression": 27, "surprise": 25, "others": 99}
    assert Counter(r["status"] for r in rows) == {"ok": 246, "excluded_class": 9}
    fixed = [r for r in rows if r["fixes"]]
    assert [(r["sample_id"], r["apex"], r["apex_policy"]) for r in fixed] == [("casme2/sub04/EP12_01f", 291, "middle")]
    assert len({r["fold"] for r in rows if r["fold"]}) == 26


def test_casme2_5class_249_from_20190701(trees):
    counts, _ = _ok_counts(SplitConfig("casme2", root=trees["casme2_20190701"]))
    assert sum(counts.values()) == 249 and counts["surprise"] == 28


def test_casme2_without_fixes_keeps_the_slash_apex_as_bad_apex(trees):
    _, rows = _ok_counts(SplitConfig("casme2", root=trees["casme2"], apply_fixes=False))
    bad = [r for r in rows if r["status"] == "bad_apex"]
    assert [r["sample_id"] for r in bad] == ["casme2/sub04/EP12_01f"] and "'/'" in bad[0]["reason"]


def test_samm_5class_136_and_3class_133(trees):
    counts, rows = _ok_counts(SplitConfig("samm", root=trees["samm"]))
    assert counts == {"anger": 57, "contempt": 12, "happiness": 26, "surprise": 15, "others": 26}
    by_id = {r["sample_id"]: r for r in rows}
    assert (by_id["samm/028/028_4_1"]["apex"], by_id["samm/028/028_4_1"]["apex_policy"]) == (1102, "middle")
    assert (by_id["samm/032/032_3_1"]["apex"], by_id["samm/032/032_3_1"]["apex_policy"]) == (4930, "quirk")
    counts3, rows3 = _ok_counts(SplitConfig("samm", classes=3, root=trees["samm"]))
    assert counts3 == {"negative": 92, "positive": 26, "surprise": 15}
    assert len({r["subject"] for r in rows3 if r["status"] == "ok"}) == 28


def test_casme3_7_4_and_3_classes(trees):
    counts7, rows = _ok_counts(SplitConfig("casme3", root=trees["casme3"]))
    assert sum(counts7.values()) == 860 and counts7["others"] == 161
    assert len({r["subject"] for r in rows}) == 94
    by_id = {r["sample_id"]: r for r in rows}
    assert by_id["casme3/spNO.214/c/5"]["offset"] == 34 and by_id["casme3/spNO.214/c/5"]["fixes"]
    assert by_id["casme3/spNO.216/e/0"]["flags"] == "casme3-spNO.216-e-onset"
    assert by_id["casme3/spNO.14/j/1012"]["status"] == "ok"  # the sheet's upper-case 'J'
    counts4, _ = _ok_counts(SplitConfig("casme3", classes=4, root=trees["casme3"]))
    assert counts4 == {"negative": 457, "surprise": 187, "others": 161, "positive": 55}
    counts3, _ = _ok_counts(SplitConfig("casme3", classes=3, root=trees["casme3"]))
    assert sum(counts3.values()) == 699


@pytest.mark.parametrize("tree", ["megc2019", "megc2019_20190701"])
def test_megc2019_reproduces_the_official_list(trees, tree):
    official = read_official(OFFICIAL)
    assert len(official) == 442
    rows = build_manifest(SplitConfig("megc2019", root=trees[tree])).rows
    assert compare_official(rows, official) == {"missing": [], "extra": [], "relabelled": []}
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 442 and len({r["subject"] for r in ok}) == 68
    assert Counter(r["label"] for r in ok) == {"negative": 250, "positive": 109, "surprise": 83}
    lodo = build_manifest(SplitConfig("megc2019", protocol="lodo", root=trees[tree])).rows
    assert Counter(r["fold"] for r in lodo if r["fold"]) == {"casme2": 145, "samm": 133, "smic": 164}
