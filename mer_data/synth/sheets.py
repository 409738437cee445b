"""Synthetic annotation sheets in the official formats (CASME II, SAMM, CAS(ME)^3, CASME, MMEW, 4DME, CAS(ME)^3 Part C,
CAS(ME)^2, SAMM Long Videos), saved byte-for-byte reproducibly.

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


def casme_sheet(path: Path, episodes: Sequence[Episode]) -> None:
    """`casme.xlsx` (CASME v1, as MEB reads it): header row 1 with blank columns C and H, `Subject` as an int,
    `ApexF1` the apex and `ApexF2` a second apex that is mostly empty (here: filled for the first row only)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "AU", "Emotion"])
    for k, ep in enumerate(episodes):
        second = ep.apex + 1 if k == 0 and ep.apex < ep.offset else None
        ws.append([int(ep.subject), ep.clip, None, ep.onset, ep.apex, second, ep.offset, None, _number_or_text(ep.au),
                   ep.emotion])
    save_workbook(wb, path)


def mmew_sheet(path: Path, episodes: Sequence[Episode]) -> None:
    """`MMEW_Micro_Exp.xlsx`: `Subject` as an int, OnsetFrame always 1, an empty `remarks` column."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
               "remarks"])
    for ep in episodes:
        ws.append([int(ep.subject), ep.clip, ep.onset, ep.apex, ep.offset, _number_or_text(ep.au), ep.emotion, None])
    save_workbook(wb, path)


FOURDME_COUNTS = ("Positive", "Negative", "Surprise", "Repression", "Others")  # per-class 0/1 columns of the 4DME sheet


def fourdme_sheet(path: Path, episodes: Sequence[Episode], emotions: Sequence[str]) -> None:
    """`4DME_Labelling_Micro_release v1.xlsx`: `sub_ID`, `fold_name`, frames, `AUs`, `Emotion` (`emotions`, which may
    join two labels with "+"), then the eye-blink flag and the per-class 0/1 columns with their `Total`."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sub_ID", "fold_name", "fold", "Onset", "Apex", "Offset", "AUs", "Emotion", "eye blink",
               *FOURDME_COUNTS, "Total"])
    for k, (ep, emotion) in enumerate(zip(episodes, emotions)):
        flags = [int(name.casefold() in emotion.casefold().split("+")) for name in FOURDME_COUNTS]
        ws.append([ep.subject, ep.clip, 1 + k % 5, ep.onset, ep.apex, ep.offset, ep.au, emotion, 0, *flags, sum(flags)])
    save_workbook(wb, path)


def casme3c_sheet(path: Path, episodes: Sequence[Episode], counts: Sequence[int]) -> None:
    """`CAS(ME)3_part_C_ME.xlsx`: `sub` and `count` as ints, no apex column, AUs joined by commas (the second row by
    the full-width "，", as one real cell is)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sub", "count", "onset", "offset", "au", "emotion"])
    for k, (ep, count) in enumerate(zip(episodes, counts)):
        au = ep.au.replace("+", "，" if k == 1 else ",")
        ws.append([int(ep.subject), count, ep.onset, ep.offset, au, ep.emotion])
    save_workbook(wb, path)


@dataclass(frozen=True)
class LongRow:
    """One row of a long-video sheet: an expression, its type, and the cells written for its frames."""

    episode: Episode
    micro: bool  # a micro-expression (else a macro-expression)
    cells: tuple[object, object, object]  # onset, apex, offset as written (a float, an offset 0 or an apex -1)


SELF_REPORT = {"negative": "disgust", "positive": "happyiness", "surprise": "surprise", "others": "confused"}  # the
# real sheet's self-reported emotions include the typo 'happyiness'


def casme_sq_sheet(path: Path, rows: Sequence[LongRow], folders: dict[str, int], codes: dict[str, str]) -> None:
    """`CAS(ME)^2code_final.xlsx`: a first worksheet `CASMEcode_final` without header (subject id, `<video>_<k>`, onset,
    apex, offset, AU, emotion class, type, self-report), `naming rule1` (folder number, folder, subject id: one row
    per data row) and `naming rule2` (video code as text, video name). `folders`: subject id → folder number."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "CASMEcode_final"
    rules = wb.create_sheet("naming rule1")
    for row in rows:
        ep = row.episode
        kind = "micro-expression" if row.micro else "macro-expression"
        ws.append([int(ep.subject), ep.clip, *row.cells, _number_or_text(ep.au), ep.emotion, kind, SELF_REPORT[ep.emotion]])
        rules.append([folders[ep.subject], f"s{folders[ep.subject]}", int(ep.subject)])
    videos = wb.create_sheet("naming rule2")
    for r, (code, name) in enumerate(sorted(codes.items()), start=1):
        _text(videos, f"A{r}", code)
        videos[f"B{r}"] = name
    save_workbook(wb, path)


SAMM_LV_NOTES = {  # (row, column) → note text above the SAMM Long Videos header (wording our own)
    (1, "A"): "SAMM Long Videos Dataset - FACS Codes (synthetic miniature written by mer-data synth)",
    (3, "A"): "Symbol Key:",
    (4, "A"): '"/" = or',
    (6, "A"): "AU Help:",
    (7, "A"): '"L2 or R2" = AU 2 on the left / right side of the face only',
    (7, "F"): "NOTE: an apex that was not annotated is written -1.",
    (8, "A"): '"A2" = asymmetric AU 2, stronger on one side',
}
SAMM_LV_HEADER_ROW = 10  # Excel row of the header: 9 note rows above it


def samm_lv_sheet(path: Path, rows: Sequence[LongRow], inducements: Sequence[int]) -> None:
    """`SAMM_LongVideos_V2_Release.xlsx`: sheet `FACS_Movement_Only`, 9 note rows, header on row 10, text subject ids,
    `Duration` as a formula with its cached value, `Type` `Macro` or `Micro - 1/2`."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "FACS_Movement_Only"
    for (row, col), text in SAMM_LV_NOTES.items():
        ws[f"{col}{row}"] = text
    header = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type", "Action Units",
              "Notes"]
    for col, name in enumerate(header, start=1):
        ws.cell(SAMM_LV_HEADER_ROW, col, name)
    cached = {}
    for k, (row, code) in enumerate(zip(rows, inducements)):
        r, ep = SAMM_LV_HEADER_ROW + 1 + k, row.episode
        _text(ws, f"A{r}", ep.subject)
        values = [ep.clip, code, *row.cells, f"=SUM(F{r}-D{r})+1", "Micro - 1/2" if row.micro else "Macro",
                  _number_or_text(ep.au), None]
        for col, value in enumerate(values, start=2):
            ws.cell(r, col, value)
        cached[f"G{r}"] = row.cells[2] - row.cells[0] + 1
    save_workbook(wb, path, cached)


def save_workbook(wb: openpyxl.Workbook, path: Path, cached: dict[str, float] | None = None) -> None:
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


def _fill_cached(xml: bytes, cached: dict[str, float]) -> bytes:
    """Put cached values into formula cells: `<c r="G15"><f>…</f><v /></c>` → `…<v>71</v></c>`."""

    def fill(match: re.Match[bytes]) -> bytes:
        coord = match.group(1).decode()
        if coord not in cached:
            return match.group(0)
        return match.group(0).replace(b"<v />", b"<v>" + str(cached[coord]).encode() + b"</v>")

    return re.sub(rb'<c r="([A-Z]+\d+)"[^>]*><f>[^<]*</f><v />', fill, xml)
