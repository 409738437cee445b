"""The spotting metric on hand-built intervals: each count below is worked out by hand per convention."""

from __future__ import annotations

import pytest

from mer_data import MerDataError
from mer_data.spot.intervals import Interval, iou
from mer_data.spot.metric import GroundTruth, SpotMetric
from mer_data.spot.predictions import Prediction, read_predictions, write_predictions

FPS = {"d": 30.0, "e": 30.0}  # 0.5 s = 15 frames: at most 15 frames is micro
V = "d/s1/v1"


def gt(onset, offset, kind="micro", video=V, emotion=None, name=None):
    return GroundTruth(video, video.split("/")[0], onset, offset, kind, emotion, name or f"{video}/{onset}")


def pred(onset, offset, row, kind="micro", score=None, video=V, emotion=None):
    return Prediction(video, onset, offset, kind, score, emotion, row)


def counts(convention, truths, preds, kind="overall", dataset="d"):
    report = SpotMetric(convention)(truths, preds, {t.video: t.video.split("/")[0] for t in truths + preds}, FPS)
    c = report.counts[(dataset, kind)]
    return (c["tp"], c["fp"], c["fn"]), report


def test_iou_counts_inclusive_frames():
    assert iou(Interval(10, 19), Interval(10, 29)) == 0.5  # 10 shared of 20
    assert iou(Interval(10, 19), Interval(19, 28)) == 1 / 19  # touching: one frame shared, 19 in either
    assert iou(Interval(0, 4), Interval(5, 9)) == 0.0
    with pytest.raises(ValueError):
        Interval(5, 4)


# one prediction 10..29 over two ground truths 10..19 and 20..29, IoU 0.5 with each
OVER_TWO = ([gt(10, 19), gt(20, 29)], [pred(10, 29, 2)])


@pytest.mark.parametrize("convention, expected, f1", [
    ("megc2020", (2, 0, 0), 4 / 3),  # both found; precision = found / predictions = 2 (result_helper's
    # precision_small), recall 1, F1 = 2·2·1/3
    ("strs", (2, 0, 0), 1.0),  # every pair at IoU >= 0.5 is a TP
    ("lgsnet", (2, 0, 0), 1.0),  # each ground truth takes its best prediction, the same one twice
])
def test_a_prediction_over_two_ground_truths(convention, expected, f1):
    got, report = counts(convention, *OVER_TWO)
    assert got == expected
    assert report.counts[("d", "overall")]["f1"] == pytest.approx(f1)


@pytest.mark.parametrize("convention", ["megc2020", "strs", "lgsnet"])
def test_touching_intervals_do_not_hit(convention):
    assert counts(convention, [gt(10, 19)], [pred(19, 28, 2)])[0] == (0, 1, 1)


@pytest.mark.parametrize("convention", ["megc2020", "strs", "lgsnet"])
def test_iou_exactly_half_is_a_hit(convention):
    assert counts(convention, [gt(0, 9)], [pred(0, 4, 2)])[0] == (1, 0, 0)  # 5 of 10 frames
    assert counts(convention, [gt(0, 9)], [pred(0, 3, 2)])[0] == (0, 1, 1)  # 4 of 10


def test_two_predictions_on_one_ground_truth():
    truths, preds = [gt(0, 9)], [pred(1, 9, 2, score=0.5), pred(0, 9, 3, score=0.9)]
    megc, report = counts("megc2020", truths, preds)
    assert megc == (1, 0, 0)  # found once; neither prediction found nothing
    c = report.counts[("d", "overall")]
    assert (c["predictions"], c["precision"], c["f1"]) == (2, 0.5, pytest.approx(2 / 3))
    assert [(m.prediction, m.outcome) for m in report.matches] == [(3, "TP"), (2, "TP")]  # higher score first
    assert counts("strs", truths, preds)[0] == (2, 0, 0)
    assert counts("lgsnet", truths, preds)[0] == (1, 1, 0)  # the best (IoU 1) is the TP, the other an FP


def test_megc2020_gives_one_frame_intervals_no_overlap():
    assert counts("megc2020", [gt(5, 5)], [pred(5, 5, 2)])[0] == (0, 1, 1)  # its calc_iou: offset <= onset → 0
    assert counts("strs", [gt(5, 5)], [pred(5, 5, 2)])[0] == (1, 0, 0)


def test_macro_micro_by_prediction_length_or_ground_truth():
    truths = [gt(0, 15, "macro")]  # 16 frames
    short = [pred(0, 14, 2, kind=None)]  # 15 frames, untyped: micro by its length (<= 15)
    got, report = counts("megc2020", truths, short, "macro")
    assert got == (0, 0, 1) and report.counts[("d", "micro")]["fp"] == 1  # compared with micro ground truths only
    got, report = counts("lgsnet", truths, short, "macro")
    assert got == (1, 0, 0)  # LGSNet: the ground truth's type; IoU 15/16
    assert counts("megc2020", truths, [pred(0, 15, 2, kind=None)], "macro")[0] == (1, 0, 0)  # 16 frames: macro


def test_counts_pool_over_videos_and_datasets():
    other = "e/s2/v9"
    truths = [gt(0, 9), gt(50, 59, video="d/s1/v2"), gt(0, 9, video=other)]
    preds = [pred(0, 9, 2), pred(100, 109, 3, video="d/s1/v2"), pred(0, 9, 4, video=other)]
    _, report = counts("megc2020", truths, preds)
    assert (report.counts[("d", "overall")]["tp"], report.counts[("d", "overall")]["fp"]) == (1, 1)
    assert report.counts[("e", "overall")]["f1"] == 1.0
    pooled = report.counts[("all", "overall")]
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (2, 1, 1)
    assert pooled["f1"] == pytest.approx(2 / 3)  # one F1 of the pooled counts, not a mean of per-video F1s


def test_str_analysis_f1_and_strs():
    truths = [gt(0, 9, emotion="negative"), gt(20, 29, emotion="positive"), gt(40, 49)]
    preds = [pred(0, 9, 2, emotion="negative"), pred(20, 29, 3, emotion="negative")]
    _, report = counts("megc2020", truths, preds)
    # spotting: TP 2, FP 0, FN 1 → F1 0.8; analysis: negative TP1 FP1 → F1 2/3, positive FN1 → 0; mean 1/3
    assert report.analysis["d"]["f1"] == pytest.approx(1 / 3)
    assert report.analysis["d"]["strs"] == pytest.approx(0.8 / 3)


def test_unknown_convention_is_a_one_line_error():
    with pytest.raises(MerDataError, match="convention 'megc'"):
        SpotMetric("megc")


VIDEOS = {"casme_sq/s15/15_0401": (1, 100)}


@pytest.mark.parametrize("line, message", [
    ("casme_sq/s15/15_9999,1,5", "row 2: video 'casme_sq/s15/15_9999' is not in the manifest"),
    ("casme_sq/s15/15_0401,9,5", "row 2: interval 9..5 is inverted"),
    ("casme_sq/s15/15_0401,90,101", "row 2: interval 90..101 is outside video casme_sq/s15/15_0401 (frames 1..100)"),
    ("casme_sq/s15/15_0401,a,5", "row 2: onset/offset 'a' is not a frame number"),
])
def test_bad_predictions_name_the_row(tmp_path, line, message):
    path = tmp_path / "p.csv"
    path.write_text(f"video,onset,offset\n{line}\n")
    with pytest.raises(MerDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_predictions(path, VIDEOS)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_prediction_files_round_trip(tmp_path, suffix):
    rows = [{"video": "s15/15_0401", "onset": 3, "offset": 9, "score": 0.25, "emotion": "negative"},
            {"video": "casme_sq/s15/15_0401", "onset": 1, "offset": 100, "type": "macro"}]
    back = read_predictions(write_predictions(rows, tmp_path / f"p{suffix}"), VIDEOS)
    assert [(p.video, p.onset, p.offset, p.type, p.score, p.emotion) for p in back] == [
        ("casme_sq/s15/15_0401", 3, 9, None, 0.25, "negative"), ("casme_sq/s15/15_0401", 1, 100, "macro", None, None)]
