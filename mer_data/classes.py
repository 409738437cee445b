"""Class mappings as data (tables/classes.json): raw emotion labels (or objective classes) → class names and label ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from mer_data import MerDataError
from mer_data.records import STATUS_OK
from mer_data.sheets import to_text

ALIASES = {"other": "others"}  # SAMM writes 'Other', CAS(ME)^3 once 'Others'
OBJECTIVE = "objective"  # the --classes value selecting the objective classes (Davison et al.) instead of emotions
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")  # objective classes as CAS(ME)^3 writes them; CASME II / SAMM write 1-7


def normalize_emotion(raw: str) -> str:
    """Case-folded, stripped label with the known spelling variants merged ('Other' → 'others')."""
    key = " ".join(str(raw).split()).casefold()
    return ALIASES.get(key, key)


def normalize_objective(raw: object) -> str:
    """An objective class cell as its Roman numeral: 3 / '3' / 'III' / 'iii' → 'III'; '' when it is not one of I-VII."""
    text = to_text(raw).upper()
    if text.isdigit() and 1 <= int(text) <= len(ROMAN):
        return ROMAN[int(text) - 1]
    return text if text in ROMAN else ""


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(resources.files("mer_data").joinpath("tables/classes.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ClassMapping:
    """One class mapping; `maps[source_dataset]` sends a normalised raw value to a class name."""

    dataset: str  # the dataset the mapping was chosen for ("megc2019" for the composite)
    name: str  # the --classes value: "5", "3", ..., or "objective"
    classes: tuple[str, ...]  # label_id = position in this tuple
    maps: dict[str, dict[str, str]]  # source dataset → normalised raw value → class
    vocabulary: dict[str, frozenset[str]]  # source dataset → every value it is known to use
    exclude: dict[str, str]  # composite only: sample_id → why the official list leaves it out
    field: str = "emotion"  # the sample column the classes come from: "emotion" or "objective_class"

    @property
    def n(self) -> int:
        """The number of classes."""
        return len(self.classes)

    def assign(self, dataset: str, value: str) -> tuple[str | None, int | None, str, str]:
        """(label, label_id, status, reason) of a raw emotion (or objective class) of a sample from `dataset`."""
        what = "objective class" if self.field == "objective_class" else "emotion"
        key = normalize_emotion(value)
        if not key:
            return None, None, "no_label", f"the sheet gives this row no {what}"
        label = self.maps.get(dataset, {}).get(key)
        if label is not None:
            return label, self.classes.index(label), STATUS_OK, ""
        known = self.vocabulary.get(dataset, frozenset())
        if key in known:
            return None, None, "excluded_class", f"{value!r} is not one of the {self.n} classes {list(self.classes)}"
        if "+" in key and all(normalize_emotion(part) in known for part in key.split("+")):
            return None, None, "excluded_class", f"{value!r} names several emotions; a class mapping takes one"
        return None, None, "unknown_label", f"{value!r} is not a {dataset} {what}"

    def as_metadata(self) -> dict:
        """JSON-ready description for the manifest metadata."""
        return {"dataset": self.dataset, "name": self.name, "n": self.n, "field": self.field,
                "classes": list(self.classes), "map": self.maps, "exclude": self.exclude}


def available(dataset: str) -> list[str]:
    """The --classes values defined for a dataset: class counts in increasing order, then 'objective' if it has them."""
    entry = _entry(dataset)
    counts = sorted(entry["mappings"], key=int)
    return counts + ([OBJECTIVE] if entry.get(OBJECTIVE) else [])


def default_classes(dataset: str) -> int:
    """The default class count of a dataset (casme2 5, samm 5, smic 3, casme3 7, megc2019 3, ...)."""
    return int(_entry(dataset)["default"])


def _entry(dataset: str) -> dict:
    """The table's entry for a dataset; `same_as` takes another's entry, the dataset's own keys overriding it."""
    table = _table()
    if dataset not in table or dataset.startswith("_"):
        known = ", ".join(k for k in table if not k.startswith("_"))
        raise MerDataError(f"no class mappings for dataset {dataset!r} (known: {known})")
    own = table[dataset]
    return {**table[own["same_as"]], **own} if "same_as" in own else own


def load_mapping(dataset: str, classes: int | str | None = None) -> ClassMapping:
    """The mapping of a dataset for a --classes value (a count, 'objective', or None for the default); an undefined
    value is a MerDataError naming --classes."""
    entry = _entry(dataset)
    name = str(default_classes(dataset) if classes is None else classes)
    if name == OBJECTIVE and entry.get(OBJECTIVE):
        roman = _table()["_objective"]["classes"]
        maps = {dataset: {c.casefold(): c for c in roman}}
        return ClassMapping(dataset, name, tuple(roman), maps, {dataset: frozenset(maps[dataset])}, {}, "objective_class")
    spec = entry["mappings"].get(name)
    if spec is None:
        raise MerDataError(f"--classes {name} is not defined for {dataset} (choose from {', '.join(available(dataset))})")
    if "from" in spec:  # a composite: each source dataset through its own table
        parts = {src: load_mapping(src, k) for src, k in spec["from"].items()}
        maps = {src: m.maps[src] for src, m in parts.items()}
        vocab = {src: m.vocabulary[src] for src, m in parts.items()}
    else:
        maps = {dataset: dict(spec["map"])}
        vocab = {dataset: frozenset(entry["vocabulary"])}
    return ClassMapping(dataset, name, tuple(spec["classes"]), maps, vocab, dict(spec.get("exclude", {})))
