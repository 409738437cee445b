"""The spotting metric: ground-truth intervals vs predictions → TP/FP/FN, precision, recall, F1 under a named convention.

It reads like pyannote.metrics: `SpotMetric(convention)` is called on (ground truth, predictions) and returns a
`SpotReport` holding the counts per (dataset, type) and every match, so each number traces back to its intervals.

Conventions (the issue-17 descriptions of the public scorers; see the README for where each was checked):
- `megc2020` (default; HeyingGithub/Baseline-project-for-MEGC2020_spotting, MDMD_results/result_helper.py, read at
  commit 7751490: `calc_iou`, `pred_clips_analysis`, `delete_short`/`delete_long`): every prediction is compared with
  every ground truth of its video and type; a ground truth found by any prediction at IoU >= 0.5 counts once (TP);
  precision = found ground truths / predictions (its `precision_small`, which exceeds 1 when one prediction finds
  two), recall = found / ground truths; counts pooled over the videos of a dataset, one F1. Its IoU is 0 for an
  interval of one frame (offset <= onset), kept here. Macro vs micro: the scorer drops predictions outside a length
  range per type; here the prediction's own type, else its length (micro: at most `micro_seconds` × fps frames).
  FP lists the predictions that found nothing. (The length bounds the MEGC2020 runs passed were not read.)
- `strs` (genbing99/STRS-Metric): per video every prediction is compared with every ground truth of its type; each
  pair with IoU >= 0.5 is a TP, so one prediction over two ground truths scores two. FP: predictions hitting none;
  FN: ground truths hit by none.
- `lgsnet` (LGSNet's scorer): per ground truth the best-IoU prediction of the video (any length); a TP when that IoU
  >= 0.5. Macro vs micro by the *ground truth's* type; a prediction counted as a TP takes its ground truth's type,
  the others are typed by their length. (Its selection of the best epoch/threshold on the test folds is not done.)
`overall` sums the macro and micro counts. STR: `analysis` gives, per dataset, the F1 of the emotions of the micro TPs
(unweighted over classes) and STRS = spotting F1 (overall) × analysis F1.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from mer_data import MerDataError
from mer_data.spot.intervals import Interval, iou
from mer_data.spot.predictions import Prediction

CONVENTIONS = ("megc2020", "strs", "lgsnet")
TYPES = ("macro", "micro", "overall")
POOLED = "all"  # the dataset name of counts pooled over datasets


@dataclass(frozen=True)
class GroundTruth:
    """One annotated expression of a long video."""

    video: str  # the manifest's video id
    dataset: str  # registry name
    onset: int  # inclusive frames
    offset: int
    type: str  # macro | micro
    emotion: str | None = None  # the class, for STR
    id: str = ""  # the manifest's interval id, for the report


@dataclass(frozen=True)
class Match:
    """One line of the detailed report: a prediction, a ground truth or both, and what they count as."""

    video: str
    type: str  # macro | micro: the type this line is counted under
    outcome: str  # TP | FP | FN
    prediction: int | None  # the prediction's row in its file
    truth: str | None  # the ground truth's id
    iou: float | None  # IoU of the pair (TP), None otherwise


@dataclass
class SpotReport:
    """Counts per (dataset, type) and the matches behind them."""

    convention: str
    counts: dict[tuple[str, str], dict] = field(default_factory=dict)  # (dataset|"all", type) → tp/fp/fn/p/r/f1
    matches: list[Match] = field(default_factory=list)
    analysis: dict[str, dict] = field(default_factory=dict)  # dataset|"all" → {"f1", "strs", "n"} (STR)


def scores(tp: int, fp: int, fn: int, predictions: int | None = None) -> dict:
    """TP/FP/FN with precision, recall and F1 (0 where undefined); precision is TP / predictions when those are given
    (megc2020), else TP / (TP + FP)."""
    predictions = tp + fp if predictions is None else predictions
    p = tp / predictions if predictions else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "predictions": predictions, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


@dataclass(frozen=True)
class SpotMetric:
    """The spotting metric under one convention; call it on (ground truths, predictions, fps per dataset)."""

    convention: str = "megc2020"  # megc2020 | strs | lgsnet
    threshold: float = 0.5  # IoU at or above which a pair is a hit
    micro_seconds: float = 0.5  # a prediction of at most this long (× fps frames) is a micro-expression

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise MerDataError(f"--convention {self.convention!r} is not one of {', '.join(CONVENTIONS)}")

    def type_of(self, p: Prediction, fps: float) -> str:
        """The prediction's own type, else micro when at most micro_seconds long."""
        return p.type or ("micro" if p.offset - p.onset + 1 <= round(self.micro_seconds * fps) else "macro")

    def __call__(self, truths: list[GroundTruth], predictions: list[Prediction], dataset_of: dict[str, str],
                 fps: dict[str, float]) -> SpotReport:
        """`dataset_of`: video → dataset; `fps`: dataset → frames/s."""
        by_video: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        for t in truths:
            by_video[t.video][0].append(t)
        for p in predictions:
            by_video[p.video][1].append(p)
        report = SpotReport(self.convention)
        for video in sorted(by_video):
            gts, preds = by_video[video]
            rate = fps[dataset_of[video]]
            match = self._lgsnet if self.convention == "lgsnet" else self._by_type
            report.matches += match(video, gts, sorted(preds, key=_order), rate)
        report.counts = _tally(report.matches, dataset_of, self.convention == "megc2020")
        report.analysis = _analysis(report, truths, predictions, dataset_of)
        return report

    def _by_type(self, video: str, gts: list[GroundTruth], preds: list[Prediction], fps: float) -> list[Match]:
        """megc2020 and strs: predictions against the ground truths of their type."""
        out: list[Match] = []
        for kind in ("macro", "micro"):
            g = [t for t in gts if t.type == kind]
            p = [x for x in preds if self.type_of(x, fps) == kind]
            out += _every_pair(video, kind, g, p, self.threshold, one_frame_zero=self.convention == "megc2020")
        return out

    def _lgsnet(self, video: str, gts: list[GroundTruth], preds: list[Prediction], fps: float) -> list[Match]:
        out, used = [], set()
        for t in gts:
            best = max(preds, key=lambda p: _iou(p, t), default=None)
            if best is not None and _iou(best, t) >= self.threshold:
                used.add(best.row)
                out.append(Match(video, t.type, "TP", best.row, t.id, _iou(best, t)))
            else:
                out.append(Match(video, t.type, "FN", None, t.id, None))
        out += [Match(video, self.type_of(p, fps), "FP", p.row, None, None) for p in preds if p.row not in used]
        return out


def _order(p: Prediction) -> tuple:
    """Higher score first, then file order."""
    return (-(p.score if p.score is not None else 0.0), p.row)


def _iou(p: Prediction, t: GroundTruth) -> float:
    return iou(Interval(p.onset, p.offset), Interval(t.onset, t.offset))


def _every_pair(video: str, kind: str, gts: list[GroundTruth], preds: list[Prediction], threshold: float,
                one_frame_zero: bool = False) -> list[Match]:
    """Every (prediction, ground truth) pair at IoU >= threshold is a TP line; the rest are FP / FN. `one_frame_zero`:
    a one-frame interval overlaps nothing (the MEGC2020 calc_iou)."""
    out, hit = [], set()
    for p in preds:
        pairs = [t for t in gts if _iou(p, t) >= threshold
                 and not (one_frame_zero and (p.offset <= p.onset or t.offset <= t.onset))]
        out += [Match(video, kind, "TP", p.row, t.id, _iou(p, t)) for t in pairs]
        hit |= {t.id for t in pairs}
        if not pairs:
            out.append(Match(video, kind, "FP", p.row, None, None))
    return out + [Match(video, kind, "FN", None, t.id, None) for t in gts if t.id not in hit]


def _tally(matches: list[Match], dataset_of: dict[str, str], found_once: bool) -> dict[tuple[str, str], dict]:
    """Counts per (dataset, type), overall = macro + micro, and pooled over datasets as 'all'. `found_once`
    (megc2020): TP counts each ground truth found once and precision divides by the predictions."""
    n: Counter = Counter()
    seen: set = set()
    for m in matches:
        if found_once and m.outcome == "TP":
            key = ("truth", m.truth)
            if key in seen:
                continue
            seen.add(key)
        for dataset in (dataset_of[m.video], POOLED):
            for kind in (m.type, "overall"):
                n[(dataset, kind, m.outcome)] += 1
    preds: dict[tuple[str, str], set] = {}
    for m in matches:
        if m.prediction is not None:
            for dataset in (dataset_of[m.video], POOLED):
                for kind in (m.type, "overall"):
                    preds.setdefault((dataset, kind), set()).add(m.prediction)
    datasets = sorted({dataset_of[m.video] for m in matches}) + [POOLED]
    return {(d, k): scores(n[(d, k, "TP")], n[(d, k, "FP")], n[(d, k, "FN")],
                           len(preds.get((d, k), ())) if found_once else None) for d in datasets for k in TYPES}


def _analysis(report: SpotReport, truths: list[GroundTruth], predictions: list[Prediction],
              dataset_of: dict[str, str]) -> dict[str, dict]:
    """STR: F1 over emotion classes of the micro TPs whose prediction names an emotion; STRS = spotting F1 × it."""
    emotion = {p.row: p.emotion for p in predictions}
    truth = {t.id: t.emotion for t in truths}
    pairs = [(dataset_of[m.video], truth[m.truth], emotion[m.prediction]) for m in report.matches
             if m.outcome == "TP" and m.type == "micro" and emotion.get(m.prediction)]
    out = {}
    for dataset in sorted({d for d, _, _ in pairs}) + ([POOLED] if pairs else []):
        mine = [(g, p) for d, g, p in pairs if dataset in (d, POOLED)]
        classes = sorted({g for g, _ in mine} | {p for _, p in mine})
        f1s = [scores(sum(g == c == p for g, p in mine), sum(p == c != g for g, p in mine),
                      sum(g == c != p for g, p in mine))["f1"] for c in classes]
        f1 = sum(f1s) / len(f1s)
        out[dataset] = {"n": len(mine), "f1": f1, "strs": report.counts[(dataset, "overall")]["f1"] * f1}
    return out


def ground_truths(intervals: list[dict]) -> list[GroundTruth]:
    """The ok interval rows of a spotting manifest as GroundTruths."""
    return [GroundTruth(r["video"], r["dataset"], r["onset"], r["offset"], r["type"], r["emotion"], r["id"])
            for r in intervals if r["status"] == "ok"]


def evaluate_files(manifest: str, predictions: str, metric: SpotMetric) -> SpotReport:
    """Score a prediction file against a spotting manifest's ok videos and intervals."""
    from manifests.spot import read_spot_manifest  # the manifests package builds on mer_data, not the other way
    from mer_data.spot.predictions import read_predictions

    intervals, videos, _ = read_spot_manifest(manifest)
    ok = [v for v in videos if v["status"] == "ok"]
    preds = read_predictions(predictions, {v["video"]: (v["first_frame"], v["last_frame"]) for v in ok})
    dataset_of = {v["video"]: v["dataset"] for v in ok}
    fps = {v["dataset"]: v["fps"] for v in ok}
    return metric(ground_truths(intervals), preds, dataset_of, fps)


def format_report(report: SpotReport) -> str:
    """A table: per dataset and type TP/FP/FN, precision, recall, F1; then STR where emotions were given."""
    lines = [f"convention {report.convention}",
             f"{'dataset':<12}{'type':<9}{'TP':>6}{'FP':>7}{'FN':>6}{'precision':>11}{'recall':>8}{'F1':>8}"]
    for (dataset, kind), c in report.counts.items():
        lines.append(f"{dataset:<12}{kind:<9}{c['tp']:>6}{c['fp']:>7}{c['fn']:>6}{c['precision']:>11.4f}"
                     f"{c['recall']:>8.4f}{c['f1']:>8.4f}")
    for dataset, a in report.analysis.items():
        lines.append(f"STR {dataset}: analysis F1 {a['f1']:.4f} over {a['n']} micro TPs, STRS {a['strs']:.4f}")
    return "\n".join(lines)


def matches_rows(report: SpotReport) -> list[dict]:
    """The detailed report as rows (for a CSV): video, type, outcome, prediction row, ground truth id, IoU."""
    return [dataclasses.asdict(m) for m in report.matches]
