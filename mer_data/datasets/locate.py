"""Shared adapter helpers: finding the coding sheet and frame folders under a root, and validating a row's frames."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mer_data import MerDataError
from mer_data.frames import frame_files, video_length
from mer_data.quirks import MIDDLE, apply_quirks
from mer_data.records import STATUS_OK, Clip, Sample
from mer_data.sheets import to_int

VIDEO_EXTENSIONS = (".avi", ".mp4")
SEARCH_DEPTH = 2  # how many folder levels below the root a sheet or frame folder may sit (e.g. ROOT/CASME2/...)


def check_root(root: Path, dataset: str) -> Path:
    """The root as an absolute path; a missing, non-folder or empty root is a MerDataError naming --root."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MerDataError(f"--root {root} is not a folder (expected the unpacked {dataset} dataset)")
    if not any(root.iterdir()):
        raise MerDataError(f"--root {root} is empty (expected the unpacked {dataset} dataset)")
    return root.resolve()


def _below(root: Path, name: str) -> Iterator[Path]:
    """root/name, then root/*/name, ... down to SEARCH_DEPTH levels, in sorted order."""
    pattern = name
    for _ in range(SEARCH_DEPTH + 1):
        yield from sorted(root.glob(pattern))
        pattern = "*/" + pattern


def find_sheet(root: Path, names: Iterable[str], annotations: Path | None, what: str) -> Path:
    """The annotation sheet: `annotations` when given, else the first known file name found under the root."""
    if annotations is not None:
        path = Path(annotations).expanduser()
        if not path.is_file():
            raise MerDataError(f"--annotations {path} does not exist")
        return path.resolve()
    names = list(names)
    for name in names:
        for hit in _below(root, name):
            if hit.is_file():
                return hit
    raise MerDataError(f"no {what} ({' or '.join(names)}) under --root {root}; pass --annotations PATH")


def find_dirs(root: Path, names: Iterable[str]) -> list[Path]:
    """Every existing folder with one of the known names under the root, in the order of `names`, plus the root itself."""
    found: list[Path] = []
    for name in names:
        found += [p for p in _below(root, name) if p.is_dir() and p not in found]
    return found + [root]


def locate_clip(bases: Iterable[Path], rel: str, clip: Clip) -> Clip | None:
    """The first frame folder `base/rel` or video `base/rel.avi|.mp4`, as a copy of `clip` with source and kind set.

    `rel` may hold glob wildcards (MMEW `*/S01-01-001`: the emotion folder is not in the sheet's Filename).
    """
    for base in bases:
        for folder in (sorted(base.glob(rel)) if any(ch in rel for ch in "*?[") else [base / rel]):
            if folder.is_dir():
                return dataclasses.replace(clip, source=str(folder), kind="frames")
            for ext in VIDEO_EXTENSIONS:
                if folder.with_name(folder.name + ext).is_file():
                    return dataclasses.replace(clip, source=str(folder) + ext, kind="video")
    return None


@dataclass(frozen=True)
class Frames:
    """Onset/apex/offset of one row after quirks and coercion, and what went wrong, if anything."""

    onset: int | None
    apex: int | None
    offset: int | None
    status: str = STATUS_OK
    reason: str = ""
    fixes: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    apex_policy: str = "sheet"


def frame_fields(dataset: str, key: str, cells: dict[str, object], labels: dict[str, str],
                 apply_fixes: bool = True) -> Frames:
    """Apply the known quirks to a row's onset/apex/offset cells, coerce them to ints and check their order.

    `labels` maps each field to the sheet's column name, for the reasons. A non-numeric onset/offset gives
    `bad_frame_number`, a missing or out-of-range apex `bad_apex`.
    """
    applied = apply_quirks(dataset, key, cells, apply_fixes)
    values: dict[str, int | None] = {}
    problems: list[tuple[str, str]] = []
    for field in ("onset", "offset", "apex"):
        cell = applied.cells.get(field)
        if cell == MIDDLE:
            continue
        values[field], why = to_int(cell)
        if why:
            problems.append(("bad_apex" if field == "apex" else "bad_frame_number", f"{labels[field]} {why}"))
    onset, offset = values["onset"], values["offset"]
    policy = "sheet"
    if applied.cells.get("apex") == MIDDLE and onset is not None and offset is not None:
        values["apex"], policy = onset + (offset - onset) // 2, "middle"
    elif applied.cells.get("apex") != cells.get("apex"):
        policy = "quirk"
    apex = values.get("apex")
    if not problems and onset is not None and offset is not None:
        if onset > offset or onset < 0:
            problems.append(("bad_frame_number", f"onset {onset} / offset {offset} out of order"))
        elif apex is not None and not onset <= apex <= offset:
            problems.append(("bad_apex", f"apex {apex} outside onset..offset {onset}..{offset}"))
    status, reason = problems[0] if problems else (STATUS_OK, "")
    return Frames(onset, apex, offset, status, reason, applied.fixes, applied.flags, policy)


def check_frames(clip: Clip, onset: int, offset: int) -> tuple[str, str, tuple[int, int] | None]:
    """(status, reason, span): whether every frame onset..offset exists in the folder, or the video is long enough;
    span is the (first, last) frame number on disk (None when there is none)."""
    if clip.kind == "video":
        length = video_length(clip.source)
        last = clip.first + length - 1
        if length == 0:
            return "missing_frames", f"video {clip.source} is unreadable or empty", None
        if onset < clip.first or offset > last:
            why = f"frames {onset}..{offset} not all in video {clip.source} (frames {clip.first}..{last})"
            return "missing_frames", why, (clip.first, last)
        return STATUS_OK, "", (clip.first, last)
    have = frame_files(clip)
    span = (next(iter(have)), next(reversed(have))) if have else None
    missing = [n for n in range(onset, offset + 1) if n not in have]
    if missing:
        return "missing_frames", (f"{len(missing)} of frames {onset}..{offset} missing in {clip.source} "
                                  f"(first missing: {missing[0]})"), span
    return STATUS_OK, "", span


@dataclass(frozen=True)
class Labels:
    """What a sheet row says about the expression besides its frames."""

    emotion: str  # the raw emotion label
    au: str | None = None  # the Action Units cell as text; None where the sheet has no AU column
    objective: str = ""  # the objective class cell as text ("" where the sheet has none)


def sample_from_row(clip: Clip, key: str, frames: Frames, labels: Labels, row: int | None, found: Clip | None,
                    where: str, spans_me: bool = False) -> Sample:
    """The Sample of one sheet row: its frames checked on disk when the row itself is valid. `spans_me`: the clip on
    disk holds this expression only, so its first and last frame are kept to compare with onset and offset."""
    status, reason, span = frames.status, frames.reason, None
    if status == STATUS_OK:
        if found is None:
            status, reason = "missing_frames", f"no frame folder or video for {clip.subject}/{clip.clip} ({where})"
        else:
            status, reason, span = check_frames(found, frames.onset, frames.offset)
    return Sample(sample_id=f"{clip.dataset}/{key}", dataset=clip.dataset, subject=clip.subject, clip=clip.clip,
                  onset=frames.onset, apex=frames.apex, offset=frames.offset, emotion=labels.emotion,
                  source=found.source if found else "", status=status, reason=reason, fixes=frames.fixes,
                  apex_policy=frames.apex_policy, row=row, au=labels.au, objective=labels.objective,
                  span=span if spans_me else None)


def mark_duplicates(samples: Iterable[Sample]) -> Iterator[Sample]:
    """Later rows repeating an earlier sample_id get status `duplicate` and a row-qualified id, so ids stay unique."""
    seen: dict[str, int | None] = {}
    for s in samples:
        if s.sample_id in seen:
            yield dataclasses.replace(s, sample_id=f"{s.sample_id}~row{s.row}", status="duplicate",
                                      reason=f"repeats {s.sample_id} (row {seen[s.sample_id]})")
            continue
        seen[s.sample_id] = s.row
        yield s
