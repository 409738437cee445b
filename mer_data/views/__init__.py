"""Named views of a stored labeled sample (the inputs MER models train on), one file per view, made by name.

| view | shape | recipe |
|---|---|---|
| `pair` | (2, C, H, W) | onset, apex; FaceSleuth's training jitter (`jitter=0.0375`) |
| `sequence` | (T, C, H, W) | T frames uniform over onset..offset (FDP: `frames=8, color=False, size=64`) |
| `diff` | (C, H, W) | apex − onset (MMNet) |
| `dynamic` | (C, H, W) | approximate rank pooling over T frames (Bilen et al.; FDP's target) |
| `flow` | (C, H, W) | TV-L1 u, v, optical strain, magnitude (STSTNet / HTNet: `channels="uvs", size=28`) |
"""

from __future__ import annotations

from dataclasses import fields

from mer_data import MerDataError
from mer_data.views.base import StoredSample, View
from mer_data.views.diff import Diff
from mer_data.views.dynamic import Dynamic
from mer_data.views.flow import Flow
from mer_data.views.pair import Pair
from mer_data.views.sequence import Sequence

VIEWS: dict[str, type[View]] = {v.name: v for v in (Pair, Sequence, Diff, Dynamic, Flow)}

__all__ = ["VIEWS", "StoredSample", "View", "make_view"]


def make_view(name: str, **options) -> View:
    """The view `name` with `options` (see each view's fields); an unknown name or option, or a bad value, is a
    one-line MerDataError naming it."""
    if name not in VIEWS:
        raise MerDataError(f"unknown view {name!r}: expected one of {', '.join(VIEWS)}")
    cls = VIEWS[name]
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise MerDataError(f"view {name}: unknown option {unknown[0]!r}: expected one of {', '.join(known)}")
    return cls(**options)
