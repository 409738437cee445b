"""The adapter shape shared by the sheet-labelled clip datasets (CASME II, SAMM, CAS(ME)^3, ...): a declarative SheetSpec."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mer_data import MerDataError
from mer_data.datasets.locate import (VIDEO_EXTENSIONS, Labels, check_root, find_dirs, find_sheet, frame_fields,
                                      locate_clip, mark_duplicates, sample_from_row)
from mer_data.quirks import MIDDLE
from mer_data.records import Clip, Sample
from mer_data.sheets import Sheet, SheetRow, read_sheet, to_int, to_text


@dataclass(frozen=True)
class SheetSpec:
    """Where a dataset's sheet and frames are and how a row names its frames."""

    dataset: str  # registry name
    what: str  # the sheet in words, for errors
    sheet_files: tuple[str, ...]  # known file names, in order of preference
    sheet_name: str | None  # the worksheet holding the rows (None: the first one)
    columns: dict[str, str]  # subject, clip, onset, [apex,] offset, emotion → header as spelled in the sheet
    # (no apex column: the middle frame is used, apex_policy "middle")
    optional: dict[str, tuple[str, ...]]  # au, objective → the headers they may have; read where the sheet has one
    frame_dirs: tuple[str, ...]  # known frame folder names below the root (relative paths), in order of preference
    pattern: str  # regex of a frame file name, group 1 the frame number
    subject_folder: Callable[[str], str]  # subject cell text → subject folder name
    clip_name: Callable[[str], str]  # clip cell text → clip id (folder or video name)
    rel_path: Callable[[str, str], str]  # (subject folder, clip) → frame folder / video stem below a frame dir
    key: Callable[[str, str, str], str]  # (subject folder, clip, onset cell text) → sample id without the dataset prefix
    video_starts_at_onset: bool  # True: a video's first frame is the row's onset (CASME II, SAMM); False: frame 0
    spans_me: bool = True  # a clip folder holds this expression only (False: a whole video holding several)


def annotation_file(spec: SheetSpec, root: Path, annotations: Path | None = None) -> Path:
    """The sheet used for this root: `annotations`, else the first known name found under it."""
    return find_sheet(check_root(root, spec.dataset), spec.sheet_files, annotations, spec.what)


def read_rows(spec: SheetSpec, root: Path, annotations: Path | None = None) -> Sheet:
    """The spec's sheet under the root (or `annotations`), its required and optional columns read."""
    optional = [name for names in spec.optional.values() for name in names]
    return read_sheet(annotation_file(spec, root, annotations), list(spec.columns.values()), spec.sheet_name, optional)


def iter_samples(spec: SheetSpec, root: Path, annotations: Path | None, apply_fixes: bool) -> Iterator[Sample]:
    """Every sheet row as a Sample (bad rows with a status), its frames located and checked under the root."""
    root = check_root(root, spec.dataset)
    sheet = read_rows(spec, root, annotations)
    bases = find_dirs(root, spec.frame_dirs)
    optional = {field: next((n for n in names if n in sheet.columns), None) for field, names in spec.optional.items()}
    yield from mark_duplicates(_sample(spec, row, bases, apply_fixes, optional) for row in sheet.rows)


def _sample(spec: SheetSpec, row: SheetRow, bases: list[Path], apply_fixes: bool,
            optional: dict[str, str | None]) -> Sample:
    col = spec.columns
    subject_text, clip_text = to_text(row.cells[col["subject"]]), to_text(row.cells[col["clip"]])
    subject = spec.subject_folder(subject_text) if subject_text else ""
    clip = spec.clip_name(clip_text) if clip_text else ""
    named = bool(subject and clip)
    key = spec.key(subject, clip, to_text(row.cells[col["onset"]])) if named else f"row{row.row}"
    cells = {f: row.cells[col[f]] if f in col else MIDDLE for f in ("onset", "apex", "offset")}
    headers = {f: col.get(f, "(no apex column: middle frame)") for f in cells}  # named in the reasons
    frames = frame_fields(spec.dataset, key, cells, headers, apply_fixes)
    if not named and frames.status == "ok":
        frames = dataclasses.replace(frames, status="bad_row", reason=f"{col['subject']} or {col['clip']} is empty")
    template = Clip(spec.dataset, f"{spec.dataset}/{subject}", clip, source="", pattern=spec.pattern)
    found = locate_clip(bases, spec.rel_path(subject, clip), template) if named else None
    if found is not None and found.kind == "video" and spec.video_starts_at_onset and frames.onset is not None:
        found = dataclasses.replace(found, first=frames.onset)
    where = f"{spec.what} row {row.row}; searched {', '.join(str(b) for b in bases)}"
    au, objective = optional.get("au"), optional.get("objective")
    said = Labels(to_text(row.cells[col["emotion"]]), to_text(row.cells[au]) if au else None,
                  to_text(row.cells[objective]) if objective else "")
    return sample_from_row(template, key, frames, said, row.row, found, where, spec.spans_me)


def clip_for(spec: SheetSpec, sample: Sample) -> Clip:
    """The Clip holding a sample's frames (a CASME II/SAMM video is numbered from the sample's onset)."""
    kind = "video" if sample.source.lower().endswith(VIDEO_EXTENSIONS) else "frames"
    first = sample.onset if kind == "video" and spec.video_starts_at_onset and sample.onset is not None else 0
    return Clip(spec.dataset, sample.subject, sample.clip, sample.source, kind, spec.pattern, first)


def sheet_onsets(spec: SheetSpec, root: Path) -> dict[tuple[str, str], int]:
    """(subject folder, clip) → first onset in the sheet, when a readable sheet is there (else empty)."""
    try:
        sheet = read_rows(spec, root)
    except MerDataError:  # unlabelled use: without a readable sheet, videos count from 0
        return {}
    onsets: dict[tuple[str, str], int] = {}
    for row in sheet.rows:
        onset, _ = to_int(row.cells[spec.columns["onset"]])
        subject, clip = to_text(row.cells[spec.columns["subject"]]), to_text(row.cells[spec.columns["clip"]])
        if onset is not None and subject and clip:
            onsets.setdefault((spec.subject_folder(subject), spec.clip_name(clip)), onset)
    return onsets


def iter_clip_entries(spec: SheetSpec, root: Path, subject_glob: str) -> Iterator[tuple[str, Path]]:
    """(subject folder, clip entry) for every entry of every subject folder under the first frame dir that has any."""
    for base in find_dirs(root, spec.frame_dirs):
        subjects = sorted(p for p in base.glob(subject_glob) if p.is_dir())
        if subjects:
            for sub in subjects:
                for entry in sorted(sub.iterdir()):
                    yield sub.name, entry
            return


def iter_clips(spec: SheetSpec, root: Path, subject_glob: str) -> Iterator[Clip]:
    """Every clip folder or video `<subject>/<clip>[.avi|.mp4]` on disk, labelled or not, in sorted order."""
    root = check_root(root, spec.dataset)
    onsets = sheet_onsets(spec, root) if spec.video_starts_at_onset else {}
    for subject, entry in iter_clip_entries(spec, root, subject_glob):
        qualified = f"{spec.dataset}/{subject}"
        if entry.is_dir():
            yield Clip(spec.dataset, qualified, entry.name, str(entry), "frames", spec.pattern)
        elif entry.suffix.lower() in VIDEO_EXTENSIONS:
            first = onsets.get((subject, entry.stem), 0)
            yield Clip(spec.dataset, qualified, entry.stem, str(entry), "video", spec.pattern, first)


def bind(spec: SheetSpec, subject_glob: str) -> tuple[Callable, Callable, Callable, Callable]:
    """The adapter functions of a spec: (annotation_file, iter_samples, iter_clips, clip_for), for a module to name.

    `subject_glob` matches the subject folders under a frame dir ("sub*" for CASME II, "[0-9]*" for SAMM).
    """

    def annotation_file_(root: Path, annotations: Path | None = None) -> Path:
        """The coding sheet used for this root: `annotations`, else the first known name found under it."""
        return annotation_file(spec, root, annotations)

    def iter_samples_(root: Path, annotations: Path | None = None, *, apply_fixes: bool = True,
                      **_: object) -> Iterator[Sample]:
        """Every row of the coding sheet as a Sample (bad rows with a status), frames located under the root."""
        return iter_samples(spec, root, annotations, apply_fixes)

    def iter_clips_(root: Path) -> Iterator[Clip]:
        """Every clip folder `<subject>/<clip>/` or video on disk, labelled or not, in sorted order."""
        return iter_clips(spec, root, subject_glob)

    def clip_for_(sample: Sample) -> Clip:
        """The Clip holding a sample's frames."""
        return clip_for(spec, sample)

    return annotation_file_, iter_samples_, iter_clips_, clip_for_
