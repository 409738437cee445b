"""Spotting micro- and macro-expressions in long videos: intervals, prediction files and the interval metric.

The API the spotters code against (kept stable):

- `mer_data.spot.intervals.Interval(onset, offset)`: an inclusive frame range in the dataset's own numbering;
  `Interval.length`, `iou(a, b)` (inclusive frame counts, as the MEGC2020 scorer).
- `mer_data.spot.predictions.PREDICTION_COLUMNS` = video, onset, offset, type, score, emotion; `write_predictions(rows,
  path)` writes a CSV or parquet (by suffix, temp name then rename) of dicts with those keys (`type`, `score`,
  `emotion` optional: None); `read_predictions(path, videos)` reads one back, validated against the manifest's video
  rows (unknown video, inverted or out-of-range interval → a one-line MerDataError naming the row).
- `manifests.spot.build_spot_manifest(SpotConfig(dataset, root=...))` → `SpotManifest` with `intervals` (one row per
  ground-truth expression: video, onset, apex, offset, type macro|micro, emotion, objective_class, status) and
  `videos` (one row per long video: video, subject, fold, source, first_frame, last_frame, frames, fps, status);
  written to one parquet by `write_spot_manifest` (a `kind` column: interval | video), read by `read_spot_manifest`.
  A video id is `<dataset>/<subject folder>/<video>`: casme_sq/s15/15_0401, samm_lv/006/006_1, casme3/spNO.1/a.
- `mer_data.spot.metric.SpotMetric(convention="megc2020")`: `metric(ground_truth, predictions)` → `SpotReport` with
  `counts[(dataset, type)]` (TP/FP/FN/precision/recall/F1; type macro | micro | overall; dataset "all" = pooled) and
  `matches` (per prediction and ground truth: which hit which). Conventions: CONVENTIONS in metric.py.
"""
