"""Synthetic trees of the clip datasets known from others' code: CASME (v1), MMEW, 4DME and CAS(ME)^3 Part C.

Each writer lays the dataset out as its adapter's docstring describes (the layouts come from MEB and the papers, so
the file and clip names are plausible, not copied) and writes its sheet with the quirks known for it. These
datasets have no known video release, so `--video` is refused. Emotions cycle as in layouts.py; CASME's `tense`
is left out of the cycle because the renderer has no movement for it (the 4-class mapping's `others` still gets
`repression`).
"""

from __future__ import annotations

from pathlib import Path

from mer_data import MerDataError
from mer_data.synth.layouts import Plan, Take, Tree, _write_takes, emotion_at, episode, rng_for
from mer_data.synth.sheets import Episode, casme3c_sheet, casme_sheet, fourdme_sheet, mmew_sheet

EXTRA_FRAMES = 2  # frames the last CASME clip's folder holds after the sheet's offset (a sheet-vs-folder mismatch)


def _no_video(plan: Plan, name: str) -> None:
    if plan.video:
        raise MerDataError(f"--video: {name} is released as frame folders only (no video layout is known)")


def write_casme(root: Path, plan: Plan) -> Tree:
    """`casme.xlsx` and `CASME_raw_selected/subNN/<Filename>/<Filename>-<j>.jpg` (j absolute; zero-padded to 3 digits
    for the later half of the subjects, as in the real sheet's later part). The last clip's folder goes on
    EXTRA_FRAMES frames past the sheet's offset, as MEB found for a few real rows."""
    _no_video(plan, "CASME")
    episodes, takes = [], []
    for i in range(plan.subjects):
        subject = f"{i + 1:02d}"
        for j in range(plan.clips_per_subject):
            clip = f"EP{j + 1:02d}_{1 + (i + j) % 9}"
            rng = rng_for(plan.seed, "casme", subject, clip, "timing")
            ep = episode(rng, subject, clip, emotion_at("casme", i, j, plan.clips_per_subject), int(rng.integers(20, 200)))
            episodes.append(ep)
            pattern = clip + ("-{:03d}.jpg" if 2 * i >= plan.subjects else "-{}.jpg")
            takes.append((Take(subject, clip, ep.onset, ep.offset, (ep,)),
                          root / "CASME_raw_selected" / f"sub{subject}" / clip, pattern, True))
    last, target, pattern, labelled = takes[-1]
    takes[-1] = (Take(last.subject, last.name, last.first, last.last + EXTRA_FRAMES, last.episodes), target, pattern,
                 labelled)
    frames, truth = _write_takes(root, "casme", plan, takes, gray=False)
    casme_sheet(root / "casme.xlsx", episodes)
    return Tree("casme", root, plan.subjects, len(takes), len(episodes), frames, root / "casme.xlsx", tuple(truth))


def write_mmew(root: Path, plan: Plan) -> Tree:
    """`MMEW_Micro_Exp.xlsx` and `MMEW/Micro_Expression/<emotion>/S<ss>-<vv>-<nnn>/<N>.jpg` (N from 1; the onset
    is always frame 1)."""
    _no_video(plan, "MMEW")
    episodes, takes = [], []
    for i in range(plan.subjects):
        subject = str(i + 1)
        for j in range(plan.clips_per_subject):
            emotion = emotion_at("mmew", i, j, plan.clips_per_subject)
            clip = f"S{i + 1:02d}-{1 + j // 3:02d}-{1 + j % 3:03d}"
            ep = episode(rng_for(plan.seed, "mmew", subject, clip, "timing"), subject, clip, emotion, 1)
            episodes.append(ep)
            target = root / "MMEW" / "Micro_Expression" / emotion / clip
            takes.append((Take(subject, clip, ep.onset, ep.offset, (ep,)), target, "{}.jpg", True))
    frames, truth = _write_takes(root, "mmew", plan, takes, gray=False)
    sheet = root / "MMEW_Micro_Exp.xlsx"
    mmew_sheet(sheet, episodes)
    return Tree("mmew", root, plan.subjects, len(takes), len(episodes), frames, sheet, tuple(truth))


def write_4dme(root: Path, plan: Plan) -> Tree:
    """`4DME_Labelling_Micro_release v1.xlsx` and grayscale `gray_micro/S<ss>/S<ss>_1st_<vvv>_<nn>_1/img<N>.jpg`
    (N absolute). The second clip's emotion is written with two labels ("Surprise+Positive" style) and the first
    clip's AUs begin with a static one "AU4(k)", as in the real sheet."""
    _no_video(plan, "4DME")
    episodes, takes, emotions = [], [], []
    for i in range(plan.subjects):
        subject = f"S{i + 1:02d}"
        for j in range(plan.clips_per_subject):
            clip = f"{subject}_1st_{1 + j // 2:03d}_{1 + j % 2:02d}_1"
            rng = rng_for(plan.seed, "4dme", subject, clip, "timing")
            ep = episode(rng, subject, clip, emotion_at("4dme", i, j, plan.clips_per_subject), int(rng.integers(30, 900)))
            if not episodes:
                ep = Episode(ep.subject, ep.clip, ep.emotion, ep.onset, ep.apex, ep.offset, f"AU4(k)+{ep.au}",
                             ep.objective)
            episodes.append(ep)
            emotions.append(ep.emotion + ("+Positive" if len(emotions) == 1 and ep.emotion != "Positive" else ""))
            takes.append((Take(subject, clip, ep.onset, ep.offset, (ep,)), root / "gray_micro" / subject / clip,
                          "img{}.jpg", True))
    frames, truth = _write_takes(root, "4dme", plan, takes, gray=True)
    for t, emotion in zip(truth, emotions):  # the truth names the sheet's label (the movement is the first label's)
        t["emotion"] = emotion
    sheet = root / "4DME_Labelling_Micro_release v1.xlsx"
    fourdme_sheet(sheet, episodes, emotions)
    return Tree("4dme", root, plan.subjects, len(takes), len(episodes), frames, sheet, tuple(truth))


def write_casme3c(root: Path, plan: Plan) -> Tree:
    """`CAS(ME)3_part_C_ME.xlsx` (no apex column) and `part_C/ME_C/<ss>/<count>/color/<N>.jpg`, one expression per
    `<count>` folder, N absolute. The movement peaks at the middle frame, where the adapter puts the apex."""
    _no_video(plan, "CAS(ME)^3 Part C")
    episodes, takes, counts = [], [], []
    for i in range(plan.subjects):
        subject = str(i + 1)
        for j in range(plan.clips_per_subject):
            rng = rng_for(plan.seed, "casme3c", subject, str(j + 1), "timing")
            drawn = episode(rng, subject, str(j + 1), emotion_at("casme3c", i, j, plan.clips_per_subject),
                            int(rng.integers(50, 3000)))
            middle = drawn.onset + (drawn.offset - drawn.onset) // 2
            ep = Episode(subject, drawn.clip, drawn.emotion, drawn.onset, middle, drawn.offset, drawn.au, drawn.objective)
            episodes.append(ep)
            counts.append(j + 1)
            target = root / "part_C" / "ME_C" / f"{i + 1:02d}" / str(j + 1) / "color"
            takes.append((Take(subject, ep.clip, ep.onset, ep.offset, (ep,)), target, "{}.jpg", True))
    frames, truth = _write_takes(root, "casme3c", plan, takes, gray=False)
    sheet = root / "CAS(ME)3_part_C_ME.xlsx"
    casme3c_sheet(sheet, episodes, counts)
    return Tree("casme3c", root, plan.subjects, len(takes), len(episodes), frames, sheet, tuple(truth))
