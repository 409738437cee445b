"""Action Unit cells → a normalised AU list and multi-hot columns, with a named rule for "or" alternatives.

The sheets write AUs as FACS codes joined by "+" (CAS(ME)^3 Part C by "," or the full-width "，"): a number with an
optional side or position prefix (L left, R right, A asymmetric, U unilateral, T top / B bottom lip; MMEW writes the
side after the number, "10R"), an optional intensity (A-E, "4A/B", "4(B/C)"), SAMM's "ref(X)" and "?" marks, and
alternatives ("R12 or R14", "(R6 or R12)", "12/14", "A/L12" for a side that is one or the other). Normalising:

- a code keeps its side or position and drops the intensity: "L10B" → "L10", "10R" → "R10", "AU4" → "4";
- "ref(X)" reads as X (the SAMM key does not define it; MEB reads it as X too), a trailing "?" is dropped;
- "X or Y" / "X/Y" becomes one entry "X/Y" whose alternatives the multi-hot columns resolve by OR_RULES;
- 4DME's static AUs "AU4(k)" (held, not moving) are left out, as MEB does; parts naming no AU ("soft focus",
  "Chewing", CASME II's lone "?") are left out. Both are kept in `ParsedAUs.dropped`.

The multi-hot columns cover AU_SET by AU number (side ignored): the FACS action units of facial muscles, without the
action descriptors (19, 21, 29-37), blinks (45, 46), head and eye positions (51-64) and gross behaviours (80+), which
the sheets code rarely and not as part of an expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mer_data.sheets import to_text

AU_SET = (1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 26, 27, 28, 38, 39, 43)
AU_COLUMNS = tuple(f"AU{n}" for n in AU_SET)  # manifest column names, in AU_SET order
OR_RULES = ("union", "first", "none")  # an "or" entry marks every alternative's AUs | the first one's | none

_CODE = re.compile(r"(?:AU)?(?P<side>[LRAUTB])?(?P<num>\d{1,3})(?P<after>[LR])?[A-E]?\??")
_STATIC = re.compile(r"\(k\)", re.IGNORECASE)
_REF = re.compile(r"ref\s*\(([^()]*)\)", re.IGNORECASE)
_INTENSITY = re.compile(r"(?<=\d)(?:\(([A-E])(?:/[A-E])*\)|[A-E]/[A-E](?:/[A-E])*)")  # "4(B/C)", "10A/B" → "4", "10"
_SIDES = re.compile(r"\(?([LRAU])/([LRAU])\)?(\d{1,3})")  # "A/L12", "(L/A)12" → "A12/L12"
_OR = re.compile(r"\s*(?:\bor\b|(?<=\d)or(?=\d|[LRAUTB]\d)|/)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedAUs:
    """One AU cell, normalised."""

    aus: tuple[str, ...]  # normalised entries in sheet order: "4", "L10", or alternatives "R6/R12", "(8+25)/50"
    options: tuple[tuple[tuple[str, ...], ...], ...]  # per entry: its alternatives, each a tuple of codes
    dropped: tuple[str, ...]  # parts left out: static AUs and text naming no AU

    @property
    def has_or(self) -> bool:
        """Whether any entry is an "or" of alternatives."""
        return any(len(alternatives) > 1 for alternatives in self.options)


def parse_aus(cell: object) -> ParsedAUs:
    """Normalise one Action Units cell (an int like 12, or text like '4+7+L10', '(R6 or R12)+R15', '1，2')."""
    text = _REF.sub(r"\1", to_text(cell).replace("，", "+").replace(",", "+"))
    entries: list[str] = []
    options: list[tuple[tuple[str, ...], ...]] = []
    dropped: list[str] = []
    for part in _split_top(text, "+"):
        alternatives, rest = _alternatives(part)
        dropped += rest
        if not alternatives:
            continue
        if len(alternatives) == 1:  # plain codes: one entry each
            for code in alternatives[0]:
                if code not in entries:
                    entries.append(code)
                    options.append(((code,),))
            continue
        written = "/".join(a[0] if len(a) == 1 else f"({'+'.join(a)})" for a in alternatives)
        if written not in entries:
            entries.append(written)
            options.append(tuple(alternatives))
    return ParsedAUs(tuple(entries), tuple(options), tuple(dropped))


def _alternatives(part: str) -> tuple[list[tuple[str, ...]], list[str]]:
    """(alternatives, each a tuple of codes; the pieces naming no AU) of one top-level "+" part."""
    part = _strip_parens(part.strip())
    if not part:
        return [], []
    if _STATIC.search(part):
        return [], [part]
    part = _SIDES.sub(r"\1\3/\2\3", _INTENSITY.sub("", part))
    alternatives, dropped = [], []
    for alternative in _split_top(part, _OR):
        codes = []
        for piece in _split_top(_strip_parens(alternative.strip()), "+"):
            code = _code(piece)
            if code is None:
                dropped.append(piece.strip())
            elif code not in codes:
                codes.append(code)
        if codes and tuple(codes) not in alternatives:
            alternatives.append(tuple(codes))
    return alternatives, [d for d in dropped if d]


def _code(piece: str) -> str | None:
    """'L10B' → 'L10', '10R' → 'R10', 'AU4' → '4', '12B ?' → '12'; None for a piece naming no AU."""
    m = _CODE.fullmatch(_strip_parens(piece.replace(" ", "")))
    if m is None:
        return None
    return f"{m['side'] or m['after'] or ''}{int(m['num'])}"


def _strip_parens(text: str) -> str:
    """Remove parentheses wrapping the whole text: '((R6 or R12))' → 'R6 or R12'; '(8+25)or(50)' is kept."""
    while text.startswith("(") and text.endswith(")") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _closing(text: str, start: int) -> int:
    """Index of the parenthesis closing the one at `start` (-1 when unbalanced)."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _split_top(text: str, separator: str | re.Pattern[str]) -> list[str]:
    """Split `text` on `separator` (a string or a regex) where it is outside parentheses."""
    rx = separator if isinstance(separator, re.Pattern) else re.compile(re.escape(separator))
    parts, start, depth, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        depth += {"(": 1, ")": -1}.get(ch, 0)
        m = rx.match(text, i) if depth == 0 else None
        if m and m.end() > i:
            parts.append(text[start:i])
            start = i = m.end()
            continue
        i += 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def multi_hot(parsed: ParsedAUs, rule: str) -> dict[str, int]:
    """AU column → 0/1 over AU_SET, an "or" entry resolved by `rule` (union, first or none)."""
    if rule not in OR_RULES:
        raise ValueError(f"unknown or-rule {rule!r} (choose from {', '.join(OR_RULES)})")
    present: set[int] = set()
    for alternatives in parsed.options:
        if len(alternatives) > 1 and rule != "union":
            alternatives = alternatives[:1] if rule == "first" else ()
        present |= {_number(code) for alternative in alternatives for code in alternative}
    return {column: int(n in present) for column, n in zip(AU_COLUMNS, AU_SET)}


def _number(code: str) -> int:
    """The AU number of a normalised code: 'L10' → 10."""
    return int(code.lstrip("LRAUTB"))
