"""Class mappings as data (tables/classes.json): raw emotion labels → class names and label ids, per dataset and N."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from mer_data import MerDataError
from mer_data.records import STATUS_OK

ALIASES = {"other": "others"}  # SAMM writes 'Other', CAS(ME)^3 once 'Others'


def normalize_emotion(raw: str) -> str:
    """Case-folded, stripped label with the known spelling variants merged ('Other' → 'others')."""
    key = " ".join(str(raw).split()).casefold()
    return ALIASES.get(key, key)


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(resources.files("mer_data").joinpath("tables/classes.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ClassMapping:
    """One N-class mapping; `maps[source_dataset]` sends a normalised raw label to a class name."""

    dataset: str  # the dataset the mapping was chosen for ("megc2019" for the composite)
    n: int
    classes: tuple[str, ...]  # label_id = position in this tuple
    maps: dict[str, dict[str, str]]  # source dataset → normalised raw label → class
    vocabulary: dict[str, frozenset[str]]  # source dataset → every label it is known to use
    exclude: dict[str, str]  # composite only: sample_id → why the official list leaves it out

    def assign(self, dataset: str, emotion: str) -> tuple[str | None, int | None, str, str]:
        """(label, label_id, status, reason) of a raw emotion of a sample from `dataset`."""
        key = normalize_emotion(emotion)
        label = self.maps.get(dataset, {}).get(key)
        if label is not None:
            return label, self.classes.index(label), STATUS_OK, ""
        if key in self.vocabulary.get(dataset, frozenset()):
            return None, None, "excluded_class", f"{emotion!r} is not one of the {self.n} classes {list(self.classes)}"
        return None, None, "unknown_label", f"{emotion!r} is not a {dataset} label"

    def as_metadata(self) -> dict:
        """JSON-ready description for the manifest metadata."""
        return {"dataset": self.dataset, "n": self.n, "classes": list(self.classes), "map": self.maps,
                "exclude": self.exclude}


def available(dataset: str) -> list[int]:
    """The class counts defined for a dataset."""
    return sorted(int(n) for n in _entry(dataset)["mappings"])


def default_classes(dataset: str) -> int:
    """The default class count of a dataset (casme2 5, samm 5, smic 3, casme3 7, megc2019 3)."""
    return int(_entry(dataset)["default"])


def _entry(dataset: str) -> dict:
    table = _table()
    if dataset not in table:
        known = ", ".join(k for k in table if not k.startswith("_"))
        raise MerDataError(f"no class mappings for dataset {dataset!r} (known: {known})")
    return table[dataset]


def load_mapping(dataset: str, n: int | None = None) -> ClassMapping:
    """The N-class mapping of a dataset (its default when n is None); an undefined N is a MerDataError naming --classes."""
    entry = _entry(dataset)
    n = default_classes(dataset) if n is None else n
    spec = entry["mappings"].get(str(n))
    if spec is None:
        raise MerDataError(f"--classes {n} is not defined for {dataset} (choose from {available(dataset)})")
    if "from" in spec:  # a composite: each source dataset through its own table
        parts = {src: load_mapping(src, k) for src, k in spec["from"].items()}
        maps = {src: m.maps[src] for src, m in parts.items()}
        vocab = {src: m.vocabulary[src] for src, m in parts.items()}
    else:
        maps = {dataset: dict(spec["map"])}
        vocab = {dataset: frozenset(entry["vocabulary"])}
    return ClassMapping(dataset, n, tuple(spec["classes"]), maps, vocab, dict(spec.get("exclude", {})))
