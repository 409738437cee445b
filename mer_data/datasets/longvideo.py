"""What the long-video datasets (CAS(ME)^2, SAMM Long Videos) share: micro rows as samples in whole-video clips.

Their sheets code macro- and micro-expressions in long videos. A micro row becomes a Sample whose clip is the whole
video folder (like CAS(ME)^3 Part A), so `ingest --labeled` pairs its onset and apex and plain `ingest` pairs every
frame of every video. Macro rows are not micro-expression samples: they are left out of `iter_samples` and counted
by type in `other_rows`, which the manifest's metadata and summary report.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mer_data.datasets.locate import Labels, check_root, find_dirs, frame_fields, locate_clip, sample_from_row
from mer_data.records import Clip, Sample
from mer_data.sheets import to_text


def is_micro(type_cell: object) -> bool:
    """Whether a row's type cell names a micro-expression ('micro-expression', 'Micro - 1/2')."""
    return to_text(type_cell).casefold().startswith("micro")


def count_other(type_cells: Iterable[object]) -> dict[str, int]:
    """Rows that are not micro-expressions, counted by their type as written ('macro-expression': 300)."""
    return dict(Counter(to_text(t) or "(no type)" for t in type_cells if not is_micro(t)))


@dataclass(frozen=True)
class Where:
    """Where one sheet row's expression is: the dataset, subject folder, sample key and video folder (a glob)."""

    dataset: str  # registry name
    subject: str  # subject folder name: "s15", "006"
    key: str  # sample id without the dataset prefix
    video: str  # the video folder below a frame dir, relative, may hold wildcards: "s15/15_0401*", "006_1"
    pattern: str  # regex of a frame file name, group 1 the frame number


def video_sample(where: Where, cells: dict[str, object], columns: dict[str, str], labels: Labels, row: int,
                 bases: list[Path], apply_fixes: bool, what: str) -> Sample:
    """The Sample of one micro row: quirks and frame checks as for clips, its clip the whole video folder found."""
    frames = frame_fields(where.dataset, where.key, cells, columns, apply_fixes)
    name = where.video.rsplit("/", 1)[-1].rstrip("*")
    template = Clip(where.dataset, f"{where.dataset}/{where.subject}", name, source="", pattern=where.pattern)
    found = locate_clip(bases, where.video, template)
    if found is not None and found.kind != "frames":  # no video release of these datasets is known
        found = None
    if found is not None:
        found = dataclasses.replace(found, clip=Path(found.source).name)
    searched = f"{what} row {row}; searched {', '.join(str(b) for b in bases)}"
    return sample_from_row(found or template, where.key, frames, labels, row, found, searched)


def video_clips(root: Path, dataset: str, frame_dirs: Iterable[str], glob: str, subject_of: Callable[[Path], str],
                pattern: str) -> Iterator[Clip]:
    """Every video folder matching `glob` under the first frame dir holding any, as a whole-video Clip of the subject
    `subject_of(folder)`, in sorted order."""
    root = check_root(root, dataset)
    for base in find_dirs(root, frame_dirs):
        videos = sorted(p for p in base.glob(glob) if p.is_dir())
        if videos:
            for video in videos:
                yield Clip(dataset, f"{dataset}/{subject_of(video)}", video.name, str(video), "frames", pattern)
            return


def clip_for(sample: Sample, pattern: str) -> Clip:
    """The Clip (the whole video folder) holding a sample's frames."""
    return Clip(sample.dataset, sample.subject, sample.clip, sample.source, "frames", pattern)
