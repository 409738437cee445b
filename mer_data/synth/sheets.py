"""Synthetic annotation sheets in the official formats (CASME II, SAMM, CAS(ME)^3), saved byte-for-byte reproducibly.

Each writer takes the episodes (one annotated micro-expression each) and reproduces the real sheet's shape: sheet names,
header row position, blank spacer columns, text vs number cells, formulas (with their cached values, as Excel saves
them). Cell *values* are synthetic; no row of a real sheet is used.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import openpyxl
from openpyxl.worksheet.worksheet import Worksheet

FIXED_TIME = datetime(2020, 1, 1)  # stamped into docProps/core.xml so two runs give the same bytes
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip member timestamps (the earliest a zip can hold)
TEXT_FORMAT = "@"  # Excel's "Text" number format, as on the real sheets' id columns


@dataclass(frozen=True)
class Episode:
    """One annotated micro-expression as the sheet (or folder) states it."""

    subject: str  # the sheet's subject cell: "01", "006", "s1", "spNO.1"
    clip: str  # the sheet's Filename: "EP02_01f", "006_1_2", "s1_ne_01", "a"
    emotion: str  # raw label in the dataset's own spelling
    onset: int  # frame numbers in the dataset's own numbering
    apex: int
    offset: int
    au: str  # FACS action units, e.g. "12", "4+7", "R12"
    objective: int  # objective class 1..7


# Per raw emotion (case-folded): plausible AU codes and objective class (I happiness, II surprise, III AU4-type,
# IV AU14-type, V AU17/24-type, VI sadness/fear, VII others).
EMOTION_CODES = {
    "happiness": ("12", 1), "happy": ("6+12", 1), "positive": ("12", 1),
    "surprise": ("1+2", 2), "disgust": ("9", 3), "negative": ("4+9", 3), "anger": ("4+7", 3),
    "repression": ("14+24", 5), "contempt": ("R14", 4), "sadness": ("15", 6), "sad": ("1+15", 6),
    "fear": ("5", 6), "others": ("17", 7), "other": ("17", 7),
}

ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


def _number_or_text(au: str) -> int | str:
    """AU cells hold an int where the code is a bare number (12) and text otherwise ('4+7'), as in the real sheets."""
    return int(au) if au.isdigit() else au


def _text(ws: Worksheet, coord: str, value: str) -> None:
    cell = ws[coord]
    cell.value = value
    cell.number_format = TEXT_FORMAT


def casme2_sheet(path: Path, episodes: Sequence[Episode]) -> None:
    """`CASME2-coding-20140508.xlsx`: `Sheet1` with header row 1, blank columns C and G, text subject ids; empty
    `Sheet2` and `Sheet3`."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
               "Estimated Emotion"])
    ws["A1"].number_format = TEXT_FORMAT
    for row, ep in enumerate(episodes, start=2):
        ws.append([None, ep.clip, None, ep.onset, ep.apex, ep.offset, None, _number_or_text(ep.au), ep.emotion])
        _text(ws, f"A{row}", ep.subject)
    wb.create_sheet("Sheet2")
    wb.create_sheet("Sheet3")
    save_workbook(wb, path)


SAMM_NOTES = {  # (row, column) → note text above SAMM's header, in the real sheet's places (wording our own)
    (1, "A"): "SAMM Dataset - Master FACS Codes (synthetic miniature written by mer-data synth)",
    (1, "E"): "(Synthetic data: frames rendered from the scikit-image astronaut photograph, not from SAMM.)",
    (3, "A"): "Emotional and Objective Classes columns follow the published SAMM sheet layout.",
    (3, "I"): "See the SAMM objective classes paper.",
    (4, "E"): "(Values in this sheet are generated; cite the SAMM papers when using the real dataset.)",
    (6, "A"): "Symbol Key:",
    (7, "A"): '"/" = or',
    (8, "A"): '"?" = an AU continues for a while and its offset is unclear',
    (10, "A"): "AU Help:",
    (11, "A"): '"L2 or R2" = AU 2 on the left / right side of the face only',
    (12, "A"): '"A2" = asymmetric AU 2, stronger on one side',
}
SAMM_HEADER_ROW = 14  # Excel row of SAMM's header: 13 note rows above it


def samm_sheet(path: Path, episodes: Sequence[Episode], inducements: Sequence[int], notes: Sequence[str]) -> None:
    """`SAMM_Micro_FACS_Codes_v2.xlsx`: sheet `MICRO_ONLY`, 13 note rows, header on row 14, text subject ids,
    `Duration` as the formula `=SUM(Fn-Dn)+1` (with its cached value), `Micro` always 'Micro - 1/2'."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "MICRO_ONLY"
    for (row, col), text in SAMM_NOTES.items():
        ws[f"{col}{row}"] = text
    header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
              "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
    for col, name in enumerate(header, start=1):
        ws.cell(SAMM_HEADER_ROW, col, name)
    ws.cell(SAMM_HEADER_ROW, 1).number_format = TEXT_FORMAT
    cached = {}
    for k, (ep, code, note) in enumerate(zip(episodes, inducements, notes)):
        r = SAMM_HEADER_ROW + 1 + k
        _text(ws, f"A{r}", ep.subject)
        values = [ep.clip, code, ep.onset, ep.apex, ep.offset, f"=SUM(F{r}-D{r})+1", "Micro - 1/2",
                  _number_or_text(ep.au), ep.emotion, ep.objective, note or None]
        for col, value in enumerate(values, start=2):
            ws.cell(r, col, value)
        cached[f"G{r}"] = ep.offset - ep.onset + 1
    save_workbook(wb, path, cached)


def casme3_sheet(path: Path, episodes: Sequence[Episode], int_cells: Sequence[str] = ()) -> None:
    """`cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`: sheet `label` (plus an empty `Sheet1`); frame numbers and AUs stored
    as text ('355') except the cells named in `int_cells` (e.g. "D3"), which hold ints as a few real cells do."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "label"
    ws.append(["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"])
    for ep in episodes:
        ws.append([ep.subject, ep.clip, str(ep.onset), str(ep.apex), str(ep.offset), ep.au, ROMAN[ep.objective - 1],
                   ep.emotion])
    for coord in int_cells:
        ws[coord].value = int(ws[coord].value)
    wb.create_sheet("Sheet1")
    save_workbook(wb, path)


def save_workbook(wb: openpyxl.Workbook, path: Path, cached: dict[str, int] | None = None) -> None:
    """Save `wb` to `path` reproducibly: fixed document times and zip timestamps, and formula cells given the cached
    values in `cached` (coordinate → value) as Excel itself would store them. Writes a temp name, then renames."""
    wb.properties.creator = "mer-data synth"
    wb.properties.created = FIXED_TIME
    buffer = io.BytesIO()
    wb.save(buffer)
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + stamp.encode() + rb"\g<2>", data)
            elif name.startswith("xl/worksheets/") and cached:
                data = _fill_cached(data, cached)
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            dst.writestr(info, data)
    tmp.replace(path)


def _fill_cached(xml: bytes, cached: dict[str, int]) -> bytes:
    """Put cached values into formula cells: `<c r="G15"><f>…</f><v /></c>` → `…<v>71</v></c>`."""

    def fill(match: re.Match[bytes]) -> bytes:
        coord = match.group(1).decode()
        if coord not in cached:
            return match.group(0)
        return match.group(0).replace(b"<v />", b"<v>" + str(cached[coord]).encode() + b"</v>")

    return re.sub(rb'<c r="([A-Z]+\d+)"[^>]*><f>[^<]*</f><v />', fill, xml)
