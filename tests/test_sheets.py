"""Sheet reading: header found by scanning, text ids kept, cell coercion with reasons, clear errors for bad files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from openpyxl import Workbook

from mer_data import MerDataError
from mer_data.sheets import read_sheet, sha256_file, to_int, to_text

SAMM_REAL = Path("/work/shared/me-annotations/samm/SAMM_Micro_FACS_Codes_v2.xlsx")


def _write(path: Path, rows: list[list], title: str = "MICRO_ONLY") -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def test_header_found_below_note_rows_and_text_ids_kept(tmp_path):
    notes = [["SAMM Dataset - Master FACS Codes"], [], ["Symbol Key:"]] + [[] for _ in range(10)]
    header = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Estimated Emotion"]
    path = _write(tmp_path / "s.xlsx", notes + [header, ["006", "006_1_2", 5562, 5588, 5632, "Anger"], [],
                                                 ["007", "007_3_1", "10", "/", 20, "Other"]])
    sheet = read_sheet(path, ["Subject", "Onset Frame", "Estimated Emotion"], "MICRO_ONLY")
    assert sheet.header_row == 14
    assert [r.row for r in sheet.rows] == [15, 17]  # the empty row 16 is skipped
    assert sheet.rows[0].cells == {"Subject": "006", "Onset Frame": 5562, "Estimated Emotion": "Anger"}
    assert sheet.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)


def test_header_names_match_despite_spacing_and_case(tmp_path):
    path = _write(tmp_path / "c.xlsx", [["subject", None, "Onset  Frame"], ["01", None, 3]], "Sheet1")
    sheet = read_sheet(path, ["Subject", "OnsetFrame"])
    assert sheet.rows[0].cells == {"Subject": "01", "OnsetFrame": 3}


def test_missing_column_names_file_row_and_column(tmp_path):
    path = _write(tmp_path / "m.xlsx", [["Subject", "Filename", "OnsetFrame"], ["01", "EP01", 3]], "Sheet1")
    with pytest.raises(MerDataError, match=r"m\.xlsx.*row 1 lacks column\(s\) ApexFrame"):
        read_sheet(path, ["Subject", "OnsetFrame", "ApexFrame"], "Sheet1")


def test_no_header_at_all(tmp_path):
    path = _write(tmp_path / "n.xlsx", [[1, 2, 3]], "Sheet1")
    with pytest.raises(MerDataError, match="no header row with columns Subject"):
        read_sheet(path, ["Subject"], "Sheet1")


def test_wrong_sheet_name_lists_the_sheets(tmp_path):
    path = _write(tmp_path / "w.xlsx", [["Subject"]], "Sheet9")
    with pytest.raises(MerDataError, match=r"no worksheet 'label' \(it has 'Sheet9'\)"):
        read_sheet(path, ["Subject"], "label")


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04truncated"])
def test_corrupt_xlsx_is_one_clear_error(tmp_path, content):
    path = tmp_path / "bad.xlsx"
    path.write_bytes(content)
    with pytest.raises(MerDataError, match=r"cannot read .*bad\.xlsx as an xlsx workbook"):
        read_sheet(path, ["Subject"])


def test_missing_file(tmp_path):
    with pytest.raises(MerDataError, match="does not exist"):
        read_sheet(tmp_path / "nope.xlsx", ["Subject"])


@pytest.mark.parametrize("cell, expected", [
    (355, (355, "")), ("355", (355, "")), (" 12 ", (12, "")), (46.0, (46, "")), (0, (0, "")), ("-1", (-1, "")),
])
def test_to_int_accepts_numbers_and_digit_text(cell, expected):
    assert to_int(cell) == expected


@pytest.mark.parametrize("cell, why", [
    ("/", "'/' is not a frame number"), (None, "empty cell"), (46.5, "not a whole frame number"),
    (True, "not a frame number"), ("MISSING <-426679", "is not a frame number"),
])
def test_to_int_rejects_with_reason(cell, why):
    value, reason = to_int(cell)
    assert value is None and why in reason


def test_to_text():
    assert (to_text(None), to_text(" 006 "), to_text(6.0), to_text(12), to_text("4+L10")) == ("", "006", "6", "12", "4+L10")


@pytest.mark.skipif(not SAMM_REAL.is_file(), reason="the real SAMM sheet is not available")
def test_real_samm_sheet_formula_gives_cached_duration():
    sheet = read_sheet(SAMM_REAL, ["Subject", "Filename", "Onset Frame", "Offset Frame", "Duration"], "MICRO_ONLY")
    assert sheet.header_row == 14 and len(sheet.rows) == 159
    first = sheet.rows[0].cells
    assert (first["Subject"], first["Filename"], first["Duration"]) == ("006", "006_1_2", 71)
    assert first["Duration"] == first["Offset Frame"] - first["Onset Frame"] + 1
