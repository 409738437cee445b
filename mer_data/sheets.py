"""Reading the official xlsx coding sheets: header found by scanning, cells coerced with reasons, sheet sha256."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from mer_data import MerDataError, sha256_file

HEADER_SCAN_ROWS = 40  # SAMM has 13 note rows above its header; nothing real has more than a few dozen


@dataclass(frozen=True)
class SheetRow:
    """One data row: its 1-based Excel row number and its cells by header name (None for empty cells)."""

    row: int
    cells: dict[str, object]


@dataclass(frozen=True)
class Sheet:
    """The data rows of one worksheet, below the header row that was found by scanning."""

    path: Path
    name: str  # worksheet name
    header_row: int  # 1-based Excel row of the header (0: a sheet without one)
    columns: tuple[str, ...]  # the columns read (required, then the optional ones found), as asked for
    rows: tuple[SheetRow, ...]
    sha256: str  # of the whole xlsx file, recorded in manifests


def _norm(name: object) -> str:
    """Header comparison key: case, spaces and underscores do not matter ('Onset Frame' == 'OnsetFrame')."""
    return "".join(str(name).split()).replace("_", "").casefold() if name is not None else ""


def read_values(path: Path, sheet: str | None = None) -> tuple[str, list[tuple]]:
    """(worksheet name, every row's cell values) of `sheet` (default: the first worksheet).

    Raises MerDataError naming the file for an unreadable workbook or a missing worksheet. Formula cells give their
    cached values (data_only=True).
    """
    path = Path(path)
    if not path.is_file():
        raise MerDataError(f"annotation sheet {path} does not exist")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise MerDataError(f"cannot read {path} as an xlsx workbook ({type(exc).__name__}: {exc})") from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise MerDataError(f"{path} has no worksheet {sheet!r} (it has {', '.join(map(repr, wb.sheetnames))})")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        return ws.title, [tuple(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def read_sheet(path: Path, required: Sequence[str], sheet: str | None = None, optional: Sequence[str] = ()) -> Sheet:
    """Read the rows of `sheet` (default: the first worksheet) under the first row holding every `required` column.

    `optional` columns are read too where that header row names them (`Sheet.columns` lists those found). Raises
    MerDataError naming the file for an unreadable workbook, a missing worksheet or missing columns. Fully empty rows
    are skipped; formula cells give their cached values.
    """
    name, values = read_values(path, sheet)
    header_row, index = _find_header(values, required, path, name)
    header = {_norm(v): i for i, v in enumerate(values[header_row - 1])}
    index |= {col: header[_norm(col)] for col in optional if _norm(col) in header and col not in index}
    return Sheet(Path(path), name, header_row, tuple(index), _rows(values[header_row:], header_row + 1, index),
                 sha256_file(path))


def read_headerless(path: Path, names: Sequence[str], sheet: str | None = None) -> Sheet:
    """Read a worksheet without a header row (CAS(ME)^2): the n-th cell of each row is column `names[n]`."""
    name, values = read_values(path, sheet)
    index = {col: i for i, col in enumerate(names)}
    return Sheet(Path(path), name, 0, tuple(names), _rows(values, 1, index), sha256_file(path))


def _rows(values: list[tuple], first_row: int, index: dict[str, int]) -> tuple[SheetRow, ...]:
    """The non-empty rows of `values` (the first being Excel row `first_row`) as SheetRows of the indexed columns."""
    rows = []
    for offset, raw in enumerate(values, start=first_row):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in raw):
            continue
        rows.append(SheetRow(offset, {col: (raw[i] if i < len(raw) else None) for col, i in index.items()}))
    return tuple(rows)


def _find_header(values: list[tuple], required: Sequence[str], path: Path, sheet: str) -> tuple[int, dict[str, int]]:
    """(1-based header row, required column → 0-based index) of the first row naming all required columns."""
    wanted = {_norm(c): c for c in required}
    best: tuple[int, set[str]] = (0, set())
    for r, raw in enumerate(values[:HEADER_SCAN_ROWS], start=1):
        found = {_norm(v): i for i, v in enumerate(raw) if _norm(v) in wanted}
        if len(found) == len(wanted):
            return r, {wanted[k]: i for k, i in found.items()}
        if len(found) > len(best[1]):
            best = (r, set(found))
    if best[0] == 0:
        raise MerDataError(f"{path} sheet {sheet!r}: no header row with columns {', '.join(required)} "
                           f"in the first {HEADER_SCAN_ROWS} rows")
    missing = [c for k, c in wanted.items() if k not in best[1]]
    raise MerDataError(f"{path} sheet {sheet!r}: header on row {best[0]} lacks column(s) {', '.join(missing)}")


def to_text(value: object) -> str:
    """A cell as text: integral numbers without '.0' (an id saved as a number), strings stripped, empty as ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def to_int(value: object) -> tuple[int | None, str]:
    """A frame-number cell as (int, '') or (None, why): ints, integral floats and digit strings ('355') are accepted."""
    if isinstance(value, bool):
        return None, f"{value!r} is not a frame number"
    if isinstance(value, int):
        return value, ""
    if isinstance(value, float):
        return (int(value), "") if value.is_integer() else (None, f"{value!r} is not a whole frame number")
    text = to_text(value)
    if not text:
        return None, "empty cell"
    if text.lstrip("-").isdigit():
        return int(text), ""
    return None, f"{text!r} is not a frame number"
