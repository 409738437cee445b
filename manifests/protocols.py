"""Fold assignment (LOSO: one fold per subject; LODO: one per dataset) and the invariants every split must hold."""

from __future__ import annotations

from collections import defaultdict

from mer_data.records import STATUS_OK

PROTOCOLS = ("loso", "lodo")
FOLD_OF = {"loso": "subject", "lodo": "dataset"}  # the column whose value names a sample's test fold


class InvariantError(AssertionError):
    """A built manifest breaks a split invariant: a bug in the builder, never bad user input."""


def assign_folds(rows: list[dict], protocol: str) -> None:
    """Set `fold` in place: the held-out subject (loso) or dataset (lodo) for ok rows, None for excluded rows."""
    column = FOLD_OF[protocol]
    for row in rows:
        row["fold"] = row[column] if row["status"] == STATUS_OK else None


def check_invariants(rows: list[dict], protocol: str) -> None:
    """Raise InvariantError unless: sample ids are unique; each ok sample is in exactly one test fold and only ok
    samples are; within each fold no subject is on both the test and the training side."""
    ids = [r["sample_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise InvariantError("duplicate sample_id in the manifest")
    for row in rows:
        if (row["status"] == STATUS_OK) != (row["fold"] is not None):
            raise InvariantError(f"{row['sample_id']}: status {row['status']} with fold {row['fold']!r}")
        if row["fold"] is not None and row["fold"] != row[FOLD_OF[protocol]]:
            raise InvariantError(f"{row['sample_id']}: fold {row['fold']} is not its {FOLD_OF[protocol]}")
    folds_of_subject: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["fold"] is not None:
            folds_of_subject[row["subject"]].add(row["fold"])
    for subject, folds in folds_of_subject.items():
        if len(folds) != 1:  # a subject tested in two folds would also be trained on in one of them
            raise InvariantError(f"subject {subject} is in folds {sorted(folds)}")
    for fold in {r["fold"] for r in rows if r["fold"] is not None}:
        test, train = fold_subjects(rows, fold)
        if test & train:
            raise InvariantError(f"fold {fold}: subjects {sorted(test & train)} on both sides")


def fold_subjects(rows: list[dict], fold: str) -> tuple[set[str], set[str]]:
    """(test subjects, training subjects) of one fold, from ok rows."""
    test = {r["subject"] for r in rows if r["fold"] == fold}
    train = {r["subject"] for r in rows if r["fold"] is not None and r["fold"] != fold}
    return test, train
