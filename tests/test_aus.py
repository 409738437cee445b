"""Action Unit cells: normalisation of the notations the sheets use, the "or" rules, and the manifest's AU columns."""

from __future__ import annotations

import pytest

from manifests.columns import au_columns
from mer_data.aus import AU_COLUMNS, AU_SET, OR_RULES, multi_hot, parse_aus


@pytest.mark.parametrize("cell, aus, dropped", [
    (12, ("12",), ()),  # CASME II stores a lone AU as an int
    ("4+7+L10", ("4", "7", "L10"), ()),
    ("R6+R12", ("R6", "R12"), ()),
    ("?", (), ("?",)),  # CASME II: AU not coded
    ("(R6 or R12)+R15", ("R6/R12", "R15"), ()),  # SAMM "or"
    ("R14A or 17A or 24A", ("R14/17/24",), ()),  # SAMM: intensities dropped inside alternatives
    ("A/L12", ("A12/L12",), ()),  # SAMM: the side is one or the other
    ("10A/B", ("10",), ()),  # an intensity alternative is not an AU alternative
    ("4(B/C)+7B", ("4", "7"), ()),  # SAMM Long Videos intensity notation
    ("ref(7B)+43C", ("7", "43"), ()),  # SAMM "ref(X)" read as X
    ("R14+17+soft focus", ("R14", "17"), ("soft focus",)),
    ("12B ?", ("12",), ()),
    ("T28+14", ("T28", "14"), ()),  # CAS(ME)^3 top lip
    ("10R+4R", ("R10", "R4"), ()),  # MMEW writes the side after the number
    ("AU4(k)+L7", ("L7",), ("AU4(k)",)),  # 4DME static AU left out, as MEB does
    ("1，2,4", ("1", "2", "4"), ()),  # CAS(ME)^3 Part C commas, once full-width
    ("((8+25)or(50))", ("(8+25)/50",), ()),  # SAMM Long Videos: an alternative of two AUs
    ("4+4", ("4",), ()),
    (None, (), ()),
])
def test_parse_normalises_the_sheets_notations(cell, aus, dropped):
    parsed = parse_aus(cell)
    assert (parsed.aus, parsed.dropped) == (aus, dropped)


def _on(columns: dict[str, int]) -> set[str]:
    return {name for name, value in columns.items() if value}


def test_or_rules():
    parsed = parse_aus("(R6 or R12)+R15")
    assert parsed.has_or and not parse_aus("4+7").has_or
    assert _on(multi_hot(parsed, "union")) == {"AU6", "AU12", "AU15"}
    assert _on(multi_hot(parsed, "first")) == {"AU6", "AU15"}
    assert _on(multi_hot(parsed, "none")) == {"AU15"}
    two = parse_aus("((8+25)or(50))")  # AU50 (speech) is outside AU_SET
    assert [_on(multi_hot(two, rule)) for rule in OR_RULES] == [{"AU8", "AU25"}, {"AU8", "AU25"}, set()]
    with pytest.raises(ValueError, match="unknown or-rule"):
        multi_hot(parsed, "any")


def test_columns_cover_the_au_set_side_ignored_and_others_left_out():
    assert len(AU_COLUMNS) == len(AU_SET) and AU_COLUMNS[0] == "AU1" and "AU45" not in AU_COLUMNS
    columns = multi_hot(parse_aus("L2+R2+45+61+AU12"), "union")
    assert set(columns) == set(AU_COLUMNS) and _on(columns) == {"AU2", "AU12"}  # blink 45, eyes 61: no column


def test_manifest_columns_name_the_rule_only_where_the_row_has_an_or():
    row = au_columns("(R6 or R12)+R15", "first")
    assert (row["au"], row["aus"], row["au_or"], row["AU6"], row["AU12"]) == ("(R6 or R12)+R15", ["R6/R12", "R15"],
                                                                               "first", 1, 0)
    assert au_columns("4+7", "first")["au_or"] is None
    smic = au_columns(None, "union")  # no AU coding at all: unknown, not absent
    assert smic["aus"] is None and all(smic[c] is None for c in AU_COLUMNS)
    assert au_columns("?", "union")["aus"] == [] and au_columns("?", "union")["AU4"] == 0
