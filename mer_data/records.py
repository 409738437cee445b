"""The records that flow between stages: a clip of frames on disk, and an annotated micro-expression sample."""

from __future__ import annotations

from dataclasses import dataclass, field

STATUS_OK = "ok"


@dataclass(frozen=True)
class Clip:
    """One sequence of frames as shipped: a folder of numbered image files, or one video file.

    Frame *numbers* are the dataset's own (CASME II `img46.jpg` is frame 46, CAS(ME)^3 `0.jpg` is frame 0);
    a video's frame at position k is number `first + k`.
    """

    dataset: str  # registry name, e.g. "casme2"
    subject: str  # dataset-qualified subject id, e.g. "casme2/sub01", "samm/006", "smic/s1", "casme3/spNO.1"
    clip: str  # clip id, unique within the subject: "EP02_01f", "006_1_2", "s1_ne_01", "a"
    source: str  # absolute path of the frame folder or the video file
    kind: str = "frames"  # "frames" (a folder of images) or "video"
    pattern: str = r"(\d+)"  # frames: regex fully matching a file name, group 1 the frame number
    first: int = 0  # video: frame number of the video's first frame

    def __post_init__(self) -> None:
        if self.kind not in ("frames", "video"):
            raise ValueError(f"Clip.kind must be 'frames' or 'video', got {self.kind!r}")

    @property
    def key(self) -> str:
        """Unique id of the clip across datasets: `<subject>/<clip>`, e.g. "casme2/sub01/EP02_01f"."""
        return f"{self.subject}/{self.clip}"


@dataclass(frozen=True)
class Sample:
    """One annotated micro-expression, valid or not: a bad row is kept with its status and reason."""

    sample_id: str  # unique across datasets, e.g. "casme2/sub01/EP02_01f", "casme3/spNO.1/a/355"
    dataset: str  # registry name
    subject: str  # dataset-qualified subject id (same as the Clip's)
    clip: str  # clip id of the Clip holding the frames (same as the Clip's)
    onset: int | None  # frame numbers, the dataset's own numbering; None where the sheet has no usable value
    apex: int | None
    offset: int | None
    emotion: str  # the raw label as written in the sheet or folder
    source: str = ""  # frame folder or video file ("" when not found on disk)
    status: str = STATUS_OK  # "ok" or the reason class, e.g. "missing_frames", "bad_apex", "unknown_label"
    reason: str = ""  # human-readable explanation when status != "ok"
    fixes: tuple[str, ...] = field(default=())  # ids of the known corrections applied to this row
    apex_policy: str = "sheet"  # where the apex came from: "sheet", "middle", "max_diff", "quirk"
    row: int | None = None  # 1-based row in the annotation sheet (None for folder-labelled datasets)
    au: str | None = None  # the sheet's Action Units cell as text ("4+L10"); None where the dataset codes no AUs
    objective: str = ""  # the sheet's objective class cell as text ("3", "III"); "" where it has none
    span: tuple[int, int] | None = None  # (first, last) frame number of the sample's own clip on disk; None where the
    # clip is a whole video holding several expressions (CAS(ME)^3 Part A, long videos) or was not found
