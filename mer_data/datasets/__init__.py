"""Dataset adapters behind one interface, registered by name: `ADAPTERS[name].iter_samples(root)` / `.iter_clips(root)`.

Each adapter module provides `iter_samples(root, annotations=None, **options) -> Iterator[Sample]` (every annotated
micro-expression, bad rows kept with a status), `iter_clips(root) -> Iterator[Clip]` (every frame sequence on disk, in
sorted order), `annotation_file(root, annotations=None) -> Path | None`, `clip_for(sample) -> Clip` and `FPS` (the
capture rate of its frame folders, frames/s). The long-video adapters (CAS(ME)^2 `casme_sq`, SAMM Long Videos
`samm_lv`) also provide `other_rows(root, annotations=None) -> dict[str, int]`: the sheet's rows that are not
micro-expressions (left out of `iter_samples`), counted by type. The sheet and frame-folder search helpers live in
`locate.py`; the sheet-driven clip adapters share `tabular.py`, the long-video ones `longvideo.py`.
"""

from __future__ import annotations

from types import ModuleType

from mer_data import MerDataError
from mer_data.datasets import casme, casme2, casme3, casme3c, casme_sq, fourdme, mmew, samm, samm_lv, smic
from mer_data.datasets.locate import find_dirs, find_sheet
from mer_data.records import Clip, Sample

ADAPTERS: dict[str, ModuleType] = {"casme2": casme2, "samm": samm, "smic": smic, "casme3": casme3, "casme": casme,
                                   "casme_sq": casme_sq, "samm_lv": samm_lv, "mmew": mmew, "4dme": fourdme,
                                   "casme3c": casme3c}
# composite → the datasets it holds, each under ROOT/<name>/; built by manifests/composite.py
COMPOSITES: dict[str, tuple[str, ...]] = {"megc2019": ("casme2", "samm", "smic"),
                                          "cd5me": ("casme2", "samm", "smic", "casme3", "mmew")}

DEFAULT_FPS = 30.0  # frames/s assumed for a dataset whose adapter states no rate

__all__ = ["ADAPTERS", "COMPOSITES", "DEFAULT_FPS", "adapter", "clip_for", "find_dirs", "find_sheet", "nominal_fps"]


def adapter(name: str) -> ModuleType:
    """The adapter module of a dataset; an unknown name is a MerDataError listing the known ones."""
    if name not in ADAPTERS:
        raise MerDataError(f"unknown dataset {name!r} (choose from {', '.join(ADAPTERS)})")
    return ADAPTERS[name]


def clip_for(sample: Sample) -> Clip:
    """The Clip holding a sample's frames, with the right kind, file pattern and first frame number."""
    return adapter(sample.dataset).clip_for(sample)


def nominal_fps(dataset: str) -> float:
    """The capture rate (frames/s) of a dataset's frame folders; DEFAULT_FPS for an unknown name."""
    module = ADAPTERS.get(dataset)
    return float(getattr(module, "FPS", DEFAULT_FPS)) if module is not None else DEFAULT_FPS
