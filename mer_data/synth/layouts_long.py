"""Synthetic trees of the long-video datasets: CAS(ME)^2 (`casme_sq`) and SAMM Long Videos (`samm_lv`).

A subject's videos each hold up to two micro-expressions and one longer macro-expression, with neutral frames
before, between and after them. The sheets code both kinds, with the quirks of the real ones: CAS(ME)^2 without a
header and with offset 0 for some macro rows, SAMM Long Videos with float macro frames and an apex -1 where it was
not annotated. Only the micro-expressions are in the truth (the adapters' samples). Frame file names were not seen
for either dataset: `img<N>.jpg` from 1 (CAS(ME)^2, as MEAN reads them) and `<video>_<N:05d>.jpg` from 0 (SAMM Long
Videos) are our choice. No video release is known, so `--video` is refused.
"""

from __future__ import annotations

from pathlib import Path

from mer_data import MerDataError
from mer_data.synth.layouts import SAMM_SUBJECTS, Plan, Take, Tree, _write_takes, emotion_at, episode, ids, rng_for
from mer_data.synth.sheets import EMOTION_CODES, Episode, LongRow, casme_sq_sheet, samm_lv_sheet, samm_sheet

MACRO_FRAMES = (34, 44)  # inclusive range of a macro-expression's onset..offset length, frames
CASME_SQ_SUBJECTS = (15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 40)  # folders
CASME_SQ_VIDEOS = (("0401", "anger1", "girlcrashing"), ("0101", "disgust1", "claptrap"),
                   ("0502", "happy1", "funnyerrors"), ("0402", "anger2", "sinking"))  # code, name, folder description
SAMM_LV_SHIFTS = (2000, 100, 0, 500)  # SAMM clip frame number - long-video frame number, per video (cycled)


def _videos(plan: Plan, dataset: str, i: int, subject: str, names: list[str], first: int) -> list[Take]:
    """A subject's long videos named `names`: plan.clips_per_subject micro-expressions, two per video (the last may
    hold one), then a macro-expression closing each video; frame numbers from `first`. Micro episodes come first in
    each take's episodes, the macro one last."""
    takes, j = [], 0
    for v, name in enumerate(names):
        rng = rng_for(plan.seed, dataset, subject, name, "timing")
        position, eps = first + int(rng.integers(6, 13)), []
        for _ in range(min(2, plan.clips_per_subject - j)):
            eps.append(episode(rng, subject, name, emotion_at(dataset, i, j, plan.clips_per_subject), position))
            position, j = eps[-1].offset + 1 + int(rng.integers(8, 17)), j + 1
        emotion = emotion_at(dataset, i + 1, v, len(names))
        length = int(rng.integers(MACRO_FRAMES[0], MACRO_FRAMES[1] + 1))
        au, objective = EMOTION_CODES[emotion.casefold()]
        eps.append(Episode(subject, name, emotion, position, position + length // 3, position + length - 1, au, objective))
        takes.append(Take(subject, name, first, eps[-1].offset + int(rng.integers(4, 9)), tuple(eps)))
    return takes


def _renamed(take: Take, name: str) -> list[tuple[Episode, bool]]:
    """(episode named `<name>_<k>`, micro?) for each expression of a long video: all but the last are micro."""
    last = len(take.episodes) - 1
    return [(Episode(ep.subject, f"{name}_{k + 1}", ep.emotion, ep.onset, ep.apex, ep.offset, ep.au, ep.objective),
             k < last) for k, ep in enumerate(take.episodes)]


def _no_video(plan: Plan, name: str) -> None:
    if plan.video:
        raise MerDataError(f"--video: {name} is released as frame folders only (no video layout is known)")


def _micro_truth(truth: list[dict], rows: list[LongRow]) -> tuple[dict, ...]:
    """The truth of the micro rows only."""
    micro = {(r.episode.clip, r.episode.onset) for r in rows if r.micro}
    return tuple(t for t in truth if (t["clip"], t["onset"]) in micro)


def write_casme_sq(root: Path, plan: Plan) -> Tree:
    """`CAS(ME)^2code_final.xlsx` (no header; naming-rule worksheets) and `rawpic/s<NN>/<NN>_<code><description>/
    img<N>.jpg` (N from 1). Rows are named `<video>_<k>`; every other macro row has offset 0."""
    _no_video(plan, "CAS(ME)^2")
    if plan.clips_per_subject > 2 * len(CASME_SQ_VIDEOS):
        raise MerDataError(f"--clips-per-subject {plan.clips_per_subject}: casme_sq holds at most "
                           f"{2 * len(CASME_SQ_VIDEOS)} (2 in each of its {len(CASME_SQ_VIDEOS)} videos)")
    takes, rows, folders = [], [], {}
    videos = CASME_SQ_VIDEOS[:(plan.clips_per_subject + 1) // 2]
    for i, number in enumerate(ids(CASME_SQ_SUBJECTS, plan.subjects)):
        subject = str(i + 1)
        folders[subject] = number
        for (code, name, description), take in zip(videos, _videos(plan, "casme_sq", i, subject,
                                                                   [n for _, n, _ in videos], first=1)):
            named = _renamed(take, name)
            for ep, micro in named:
                zero = not micro and len(rows) % 2 == 0
                rows.append(LongRow(ep, micro, (ep.onset, ep.apex, 0 if zero else ep.offset)))
            take = Take(subject, name, take.first, take.last, tuple(ep for ep, _ in named))
            takes.append((take, root / "rawpic" / f"s{number}" / f"{number}_{code}{description}", "img{}.jpg", True))
    frames, truth = _write_takes(root, "casme_sq", plan, takes, gray=False)
    sheet = root / "CAS(ME)^2code_final.xlsx"
    casme_sq_sheet(sheet, rows, folders, {code: name for code, name, _ in CASME_SQ_VIDEOS})
    micro = _micro_truth(truth, rows)
    return Tree("casme_sq", root, plan.subjects, len(takes), len(micro), frames, sheet, micro)


def write_samm_lv(root: Path, plan: Plan) -> Tree:
    """`SAMM_LongVideos_V2_Release.xlsx` and grayscale `SAMM_longvideos/<sss>_<i>/<sss>_<i>_<N:05d>.jpg` (N from 0),
    plus the SAMM clip sheet `SAMM_Micro_FACS_Codes_v2.xlsx` of the micro rows (their emotions; frame numbers shifted
    by SAMM_LV_SHIFTS per video, as the real clips are). The first macro row's frames are written as floats, and the
    first micro row's apex as -1 (its movement peaks at the middle frame, where the adapter puts it)."""
    _no_video(plan, "SAMM Long Videos")
    takes, rows, inducements, clips = [], [], [], []
    for i, number in enumerate(ids(SAMM_SUBJECTS, plan.subjects)):
        subject = f"{number:03d}"
        names = [f"{subject}_{1 + v}" for v in range((plan.clips_per_subject + 1) // 2)]
        for v, take in enumerate(_videos(plan, "samm_lv", i, subject, names, first=0)):
            named = []
            for ep, micro in _renamed(take, names[v]):
                named.append(_samm_lv_row(ep, micro, rows + named))
            rows += named
            inducements += [1 + v] * len(named)
            shift = SAMM_LV_SHIFTS[v % len(SAMM_LV_SHIFTS)]
            clips += [Episode(r.episode.subject, r.episode.clip, r.episode.emotion, r.episode.onset + shift,
                              r.episode.apex + shift, r.episode.offset + shift, r.episode.au, r.episode.objective)
                      for r in named if r.micro]
            take = Take(subject, names[v], take.first, take.last, tuple(r.episode for r in named))
            takes.append((take, root / "SAMM_longvideos" / names[v], names[v] + "_{:05d}.jpg", True))
    frames, truth = _write_takes(root, "samm_lv", plan, takes, gray=True)
    sheet = root / "SAMM_LongVideos_V2_Release.xlsx"
    samm_lv_sheet(sheet, rows, inducements)
    samm_sheet(root / "SAMM_Micro_FACS_Codes_v2.xlsx", clips, [1] * len(clips), [""] * len(clips))
    micro = _micro_truth(truth, rows)
    return Tree("samm_lv", root, plan.subjects, len(takes), len(micro), frames, sheet, micro)


def _samm_lv_row(ep: Episode, micro: bool, before: list[LongRow]) -> LongRow:
    """A SAMM Long Videos row with the real sheet's quirks on the first macro row (float frame numbers) and the first
    micro row (apex -1, not annotated: the movement peaks at the middle frame, where the adapter puts the apex)."""
    if micro and not any(r.micro for r in before):
        middle = ep.onset + (ep.offset - ep.onset) // 2
        moved = Episode(ep.subject, ep.clip, ep.emotion, ep.onset, middle, ep.offset, ep.au, ep.objective)
        return LongRow(moved, True, (ep.onset, -1, ep.offset))
    if not micro and all(r.micro for r in before):
        return LongRow(ep, False, (ep.onset + 0.4, ep.apex - 0.4, ep.offset + 0.2))
    return LongRow(ep, micro, (ep.onset, ep.apex, ep.offset))
