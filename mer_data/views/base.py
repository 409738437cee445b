"""What every view shares: the stored labeled sample it reads, option checking, and frames as float arrays."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, fields

import cv2
import numpy as np

from mer_data import MerDataError


@dataclass(frozen=True)
class StoredSample:
    """One labeled sample as the shards hold it: its json, its encoded aligned frames by number, its stored flow."""

    key: str  # WebDataset key
    meta: dict  # the sample's json (sample_id, onset, apex, offset, frames, crop, size, …)
    images: dict  # frame number → encoded jpg/png bytes
    flow: np.ndarray | None = None  # (2, H, W) float32 onset→apex TV-L1 (u, v), where the ingest stored it

    @classmethod
    def from_members(cls, key: str, members: dict[str, bytes]) -> StoredSample:
        """From a sample's tar members (extension → bytes), the layout `pipelines/samples.py` writes; shards of the
        older layout (f0, f1 only, no `frames` in the json) read as a two-frame sample."""
        meta = json.loads(members["json"])
        onset, apex = meta["onset"], meta["apex"]
        numbers = meta.get("frames") or sorted({onset, apex})
        images = {}
        for n in numbers:
            name = "f0" if n == onset else "f1" if n == apex else f"t{n}"
            data = members.get(f"{name}.{meta.get('format', 'jpg')}")
            if data is None:
                raise MerDataError(f"sample {key}: frame {n} ({name}) is not in the shard")
            images[n] = data
        flow = np.load(io.BytesIO(members["flow.npy"]), allow_pickle=False) if "flow.npy" in members else None
        return cls(key, meta, images, flow)

    @property
    def numbers(self) -> list[int]:
        return sorted(self.images)

    @property
    def onset(self) -> int:
        return self.meta["onset"]

    @property
    def apex(self) -> int:
        return self.meta["apex"]

    @property
    def end(self) -> int:
        """The last stored frame (the offset, or the apex where the sheet gives no usable offset)."""
        return self.numbers[-1]

    def nearest(self, n: int) -> int:
        """The stored frame number closest to n (the earlier one on a tie)."""
        return min(self.images, key=lambda m: (abs(m - n), m))

    def image(self, n: int, color: bool) -> np.ndarray:
        """Frame n decoded: RGB (H, W, 3) or grayscale (H, W) uint8."""
        bgr = cv2.imdecode(np.frombuffer(self.images[n], np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB if color else cv2.COLOR_BGR2GRAY)  # gray as the ingest makes it


def resize(image: np.ndarray, side: int) -> np.ndarray:
    """A square image or (H, W) field resized to side×side (area averaging down, bilinear up); side 0 keeps it."""
    if side == 0 or image.shape[0] == side:
        return image
    mode = cv2.INTER_AREA if side < image.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (side, side), interpolation=mode)


def frame_array(sample: StoredSample, n: int, color: bool, side: int) -> np.ndarray:
    """Frame n as float32 (C, H, W) in [0, 1], C = 3 (RGB) or 1 (gray), resized to `side` (0 = as stored)."""
    image = resize(sample.image(n, color), side).astype(np.float32) / 255.0
    return image.transpose(2, 0, 1) if image.ndim == 3 else image[None]


def uniform_numbers(first: int, last: int, count: int) -> list[int]:
    """`count` frame numbers spread uniformly over first..last, both included (rounded to the nearest frame)."""
    return np.rint(np.linspace(first, last, count)).astype(int).tolist()


def check_options(view) -> None:
    """Each option of a view has its default's type (an int is accepted for a float); MerDataError naming it."""
    for f in fields(view):
        value, default = getattr(view, f.name), f.default
        kind = type(default)
        ok = (isinstance(value, bool) if kind is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
              isinstance(value, int) and not isinstance(value, bool) if kind is int else isinstance(value, kind))
        if not ok:
            raise MerDataError(f"view {view.name}: option {f.name}={value!r}: expected {kind.__name__}")


def require(view, ok: bool, option: str, expected: str) -> None:
    """One value check: MerDataError naming the view, the option, its value and what is expected."""
    if not ok:
        raise MerDataError(f"view {view.name}: option {option}={getattr(view, option)!r}: expected {expected}")


@dataclass(frozen=True)
class View:
    """A named input of MER models: `view(sample, rng)` → float32 array. `rng` None is evaluation (deterministic);
    a `np.random.Generator` allows training-time augmentation. Subclasses set `name`, `frames_used` and `render`."""

    name = "view"

    def __post_init__(self) -> None:
        check_options(self)
        self.check()

    def check(self) -> None:
        """Value checks beyond the type (subclasses)."""

    def frames_used(self, sample: StoredSample, rng: np.random.Generator | None) -> list[int]:
        raise NotImplementedError

    def render(self, sample: StoredSample, numbers: list[int]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, sample: StoredSample, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.render(sample, self.frames_used(sample, rng))
