"""The synthetic dataset generator: layouts, sheet quirks, determinism, the local movement, face detection, videos."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest
from typer.testing import CliRunner

from cli import data_app
from mer_data import MerDataError
from mer_data.synth import TRUTH_FILE, generate, render
from mer_data.synth.layouts import VOCAB, Face

MEGC3 = {"happiness": "positive", "disgust": "negative", "repression": "negative", "surprise": "surprise",
         "anger": "negative", "contempt": "negative", "negative": "negative", "positive": "positive"}


def truth(root: Path) -> list[dict]:
    return json.loads((root / TRUTH_FILE).read_text())["truth"]


def numbers(folder: Path, pattern: str) -> list[int]:
    """Frame numbers of the files in `folder`, all of which must fully match `pattern` (group 1 the number)."""
    names = sorted(os.listdir(folder))
    matches = [re.fullmatch(pattern, name) for name in names]
    assert all(matches), f"unexpected names in {folder}: {names[:5]}"
    return sorted(int(m.group(1)) for m in matches)


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_casme2_layout_and_sheet(synth_root):
    root = synth_root("casme2")
    wb = openpyxl.load_workbook(root / "CASME2-coding-20140508.xlsx")
    assert wb.sheetnames == ["Sheet1", "Sheet2", "Sheet3"]
    ws = wb["Sheet1"]
    header = [c.value for c in ws[1]]
    assert header == ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                      "Estimated Emotion"]
    rows = list(ws.iter_rows(min_row=2))
    assert len(rows) == 12
    au_kinds = set()
    for row in rows:
        subject, clip, blank_c, onset, apex, offset, blank_g, au, emotion = (c.value for c in row)
        assert isinstance(subject, str) and re.fullmatch(r"\d\d", subject) and row[0].data_type == "s"
        assert blank_c is None and blank_g is None
        assert re.fullmatch(r"EP\d\d(_\d{1,2})?f?", clip)
        assert 1 < onset < apex < offset and offset - onset + 1 >= 12
        assert emotion in VOCAB["casme2"]
        au_kinds.add(type(au))
        found = numbers(root / "CASME2_RAW_selected" / f"sub{subject}" / clip, r"img(\d+)\.jpg")
        assert found == list(range(onset, offset + 1))
    assert au_kinds == {int, str}  # AU cells mix numbers and text, as in the real sheet


def test_samm_layout_and_sheet(synth_root):
    root = synth_root("samm")
    path = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    ws = openpyxl.load_workbook(path)["MICRO_ONLY"]
    cached = openpyxl.load_workbook(path, data_only=True)["MICRO_ONLY"]
    assert [ws.cell(r, 1).value for r in range(1, 15)].index("Subject") == 13  # header on Excel row 14
    assert ws["A1"].value and ws["A6"].value == "Symbol Key:"
    assert [c.value for c in ws[14]] == ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
                                          "Offset Frame", "Duration", "Micro", "Action Units", "Estimated Emotion",
                                          "Objective Classes", "Notes"]
    for r in range(15, ws.max_row + 1):
        subject, clip, _, onset, apex, offset, duration, micro = (ws.cell(r, c).value for c in range(1, 9))
        assert re.fullmatch(r"\d{3}", subject) and ws.cell(r, 1).data_type == "s"
        assert clip.startswith(subject + "_") and micro == "Micro - 1/2"
        assert duration == f"=SUM(F{r}-D{r})+1" and ws.cell(r, 7).data_type == "f"
        assert cached.cell(r, 7).value == offset - onset + 1  # the formula's cached value, as Excel saves it
        assert onset > 1 and onset < apex < offset
        assert ws.cell(r, 10).value in VOCAB["samm"]
        folder = root / "SAMM" / subject / clip
        assert numbers(folder, subject + r"_(\d{5})\.jpg") == list(range(onset, offset + 1))
        assert cv2.imread(str(folder / f"{subject}_{onset:05d}.jpg"), cv2.IMREAD_UNCHANGED).ndim == 2  # grayscale
    assert ws.max_row == 14 + 12


def test_smic_layout_labels_only_in_folders(synth_root):
    root = synth_root("smic")
    assert not list(root.glob("*.xlsx"))
    hs = root / "SMIC_all_raw" / "HS"
    micro = sorted(hs.glob("s*/micro/*/*"))
    assert len(micro) == 12 and len(list(hs.glob("s*/non_micro/*/*"))) == 3
    codes = {"negative": "ne", "positive": "po", "surprise": "sur"}
    for clip in micro:
        subject, emotion = clip.parts[-4], clip.parts[-2]
        assert re.fullmatch(r"s[1-9]\d*", subject)
        assert re.fullmatch(rf"{subject}_{codes[emotion]}_\d\d", clip.name)
        found = numbers(clip, r"image(\d{6})\.bmp")
        assert found == list(range(found[0], found[-1] + 1)) and len(found) >= 12
    labelled = {(t["subject"], t["clip"]) for t in truth(root)}
    assert labelled == {(c.parts[-4], c.name) for c in micro}  # non_micro clips are not micro-expressions
    assert all("non_micro" not in t["source"] for t in truth(root))


def test_casme3_layout_and_sheet(synth_root):
    root = synth_root("casme3")
    wb = openpyxl.load_workbook(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
    assert wb.sheetnames == ["label", "Sheet1"] and wb["Sheet1"].max_row == 1 and wb["Sheet1"]["A1"].value is None
    ws = wb["label"]
    assert [c.value for c in ws[1]] == ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class",
                                        "emotion"]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    frame_cells = [v for row in rows for v in row[2:5]]
    assert sum(isinstance(v, str) for v in frame_cells) == len(frame_cells) - 1  # text, except one int cell
    assert sum(r[1].isupper() for r in rows) == 1 and "Others" in {r[7] for r in rows}
    videos = defaultdict(list)
    for subject, letter, onset, apex, offset, *_ in rows:
        assert re.fullmatch(r"spNO\.\d+", subject)
        videos[subject, letter.lower()].append((int(onset), int(apex), int(offset)))
    for (subject, letter), mes in videos.items():
        assert len(mes) >= 2  # one video holds several micro-expressions
        folder = root / "part_A" / "data" / "part_A" / subject / letter
        found = numbers(folder / "color", r"(\d+)\.jpg")
        assert found == list(range(len(found))) and numbers(folder / "depth", r"(\d+)\.png") == found
        mes.sort()
        assert mes[0][0] > 0 and mes[-1][2] < found[-1]  # neutral frames before the first and after the last
        assert all(a[2] < b[0] for a, b in zip(mes, mes[1:]))  # and between consecutive MEs


@pytest.mark.parametrize("dataset,most", [("casme2", 2), ("samm", 2), ("smic", 3), ("casme3", 1)])
def test_emotions_cycle_over_subjects(synth_root, dataset, most):
    per_subject = defaultdict(set)
    for t in truth(synth_root(dataset)):
        per_subject[t["subject"]].add(t["emotion"].lower())
    assert len(per_subject) == 3 and all(len(classes) >= 3 for classes in per_subject.values())
    for emotion in VOCAB[dataset]:  # every class; for 5 classes on 2 of 3 subjects, SMIC's 3 on all
        assert sum(emotion.lower() in classes for classes in per_subject.values()) >= most, emotion


def test_megc2019_composite_has_three_classes_per_dataset(tmp_path):
    root = generate("megc2019", tmp_path / "data", subjects=1, clips_per_subject=4)
    assert sorted(p.name for p in root.iterdir()) == ["casme2", "samm", "smic"]
    for dataset in ("casme2", "samm", "smic"):
        labels = {MEGC3.get(t["emotion"].lower()) for t in truth(root / dataset)}
        assert {"negative", "positive", "surprise"} <= labels, dataset
    for t in truth(root / "smic"):
        assert re.fullmatch(r"s\d+_(ne|po|sur)_\d\d", t["clip"])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dataset,video", [("samm", False), ("casme3", False), ("casme3", True), ("casme2", True)])
def test_same_seed_same_bytes(tmp_path, dataset, video):
    kwargs = dict(subjects=1, clips_per_subject=2, video=video)
    first = tree_bytes(generate(dataset, tmp_path / "a", seed=7, **kwargs))
    second = tree_bytes(generate(dataset, tmp_path / "b", seed=7, **kwargs))
    other = tree_bytes(generate(dataset, tmp_path / "c", seed=8, **kwargs))
    assert first == second
    assert first.keys() != other.keys() or first != other


def region_masks(look: render.Look, emotion: str) -> tuple[np.ndarray, np.ndarray]:
    """(inside, outside): within 2σ of the movement's anchors, and on the face farther than 5σ from them."""
    ys, xs = np.mgrid[0 : render.FRAME_SHAPE[0], 0 : render.FRAME_SHAPE[1]]
    distance = np.full(xs.shape, np.inf)
    for px, py in render.anchor_points(look, emotion):
        distance = np.minimum(distance, np.hypot(xs - px, ys - py))
    sigma = render.SIGMA_PX * look.scale
    fx, fy, fw, fh = render.FACE_BOX
    (x0, y0), (x1, y1) = render.photo_to_frame(look, np.array([[fx, fy], [fx + fw, fy + fh]]))
    face = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return distance < 2 * sigma, face & (distance > 5 * sigma)


@pytest.mark.parametrize("emotion", sorted({e for vocab in VOCAB.values() for e in vocab}))
def test_movement_is_local_and_peaks_at_apex(emotion):
    look = render.subject_look(np.random.default_rng(3))
    canvas, field = render.face_canvas(look), render.movement_field(look, emotion)
    onset, apex, offset = 0, 6, 14
    noise = render.sensor_noise(np.random.default_rng(0), offset + 1)
    frames = {n: render.render_frame(canvas, field, render.amplitude(n, onset, apex, offset), next(noise))
              for n in range(onset, offset + 1)}
    frames = {n: f.astype(np.float32) for n, f in frames.items()}
    inside, outside = region_masks(look, emotion)
    diff = {n: np.abs(frames[n] - frames[onset]).mean(axis=2) for n in frames}  # (H, W) grey levels
    noise = {n: d[outside].mean() for n, d in diff.items()}  # the still rest of the face: noise only
    signal = {n: d[inside].mean() - noise[n] for n, d in diff.items()}
    assert max(signal, key=signal.get) in (apex - 1, apex, apex + 1)
    assert signal[apex] > 3.0  # grey levels above the noise, averaged over the whole region
    assert signal[onset + 1] < 0.25 * signal[apex] and signal[offset] < 0.25 * signal[apex]
    expected_noise = 2 * render.NOISE_SIGMA / np.sqrt(np.pi)  # E|a - b| for two N(0, σ²) samples
    assert noise[apex] < 1.2 * expected_noise


def test_amplitude_profile():
    values = [render.amplitude(n, 5, 12, 25) for n in range(0, 31)]
    assert values[5] == 0.0 and values[12] == 1.0 and values[25] == 0.0 and values[0] == values[30] == 0.0
    assert all(a < b for a, b in zip(values[5:12], values[6:13]))
    assert all(a > b for a, b in zip(values[12:25], values[13:26]))


def test_written_clip_peaks_at_apex(synth_root):
    root = synth_root("casme2")
    for t in truth(root)[:4]:
        inside, outside = region_masks(Face(0, "casme2", t["subject"]).look, t["emotion"])
        folder = root / t["source"]
        frames = {n: read_rgb(folder / f"img{n}.jpg").astype(np.float32) for n in range(t["onset"], t["offset"] + 1)}
        diff = {n: np.abs(f - frames[t["onset"]]).mean(axis=2) for n, f in frames.items()}
        signal = {n: d[inside].mean() - d[outside].mean() for n, d in diff.items()}
        assert abs(max(signal, key=signal.get) - t["apex"]) <= 2
        assert signal[t["apex"]] > 3.0 > signal[t["onset"] + 1] and signal[t["offset"]] < 0.3 * signal[t["apex"]]


def test_face_is_detected_by_mediapipe(synth_root, face_model):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(face_model)))
    detector = vision.FaceDetector.create_from_options(options)
    try:
        for dataset, name in (("casme2", "img{}.jpg"), ("samm", None), ("smic", "image{:06d}.bmp")):
            root = synth_root(dataset)
            t = truth(root)[0]
            name = name or f"{t['subject']}_{{:05d}}.jpg"
            image = read_rgb(root / t["source"] / name.format(t["apex"]))
            result = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
            assert len(result.detections) == 1, dataset
            box = result.detections[0].bounding_box
            assert 0.3 * image.shape[0] < box.height < 0.55 * image.shape[0], dataset  # a large face
    finally:
        detector.close()


def decode(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def test_video_round_trip(synth_root):
    frames_root, video_root = synth_root("casme2"), synth_root("casme2", video=True)
    assert [t["clip"] for t in truth(frames_root)] == [t["clip"] for t in truth(video_root)]
    for k, t in enumerate(truth(video_root)):
        assert t["source"].endswith(f"sub{t['subject']}/{t['clip']}.avi")
        decoded = decode(video_root / t["source"])
        assert len(decoded) == t["offset"] - t["onset"] + 1  # the first frame is the onset
        if k == 0:  # same seed, same pictures: the video frames match the jpg frames up to compression
            folder = frames_root / truth(frames_root)[0]["source"]
            for n in (t["onset"], t["apex"]):
                jpg = cv2.imread(str(folder / f"img{n}.jpg")).astype(np.float32)
                assert np.abs(decoded[n - t["onset"]].astype(np.float32) - jpg).mean() < 4.0


def test_casme3_mp4_round_trip(tmp_path):
    root = generate("casme3", tmp_path / "c3", subjects=1, clips_per_subject=2, video=True)
    (t0, t1) = truth(root)
    assert t0["source"] == t1["source"] == "part_A/data/part_A/spNO.1/a/color.mp4"
    assert len(decode(root / t0["source"])) > t1["offset"]


def test_bad_arguments(tmp_path):
    with pytest.raises(MerDataError, match="unknown dataset"):
        generate("casme4", tmp_path / "x")
    with pytest.raises(MerDataError, match="--subjects"):
        generate("samm", tmp_path / "x", subjects=0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(MerDataError, match="not empty"):
        generate("smic", tmp_path / "full", subjects=1, clips_per_subject=1)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    root = generate("smic", tmp_path / "full", subjects=1, clips_per_subject=1, overwrite=True)
    assert not (root / "keep.txt").exists() and (root / TRUTH_FILE).is_file()
    assert not list(tmp_path.glob(".*partial"))


def test_cli_synth(tmp_path):
    runner = CliRunner()
    result = runner.invoke(data_app, ["synth", "casme2", "--out", str(tmp_path / "c2"), "--subjects", "1",
                                      "--clips-per-subject", "1"])
    assert result.exit_code == 0, result.output
    assert "subjects 1, clips 1, samples 1" in result.output and "CASME2-coding-20140508.xlsx" in result.output
    result = runner.invoke(data_app, ["synth", "casme3", "--out", str(tmp_path / "c3"), "--clips-per-subject", "1"])
    assert result.exit_code == 2 and "at least 2" in result.output and "Traceback" not in result.output
