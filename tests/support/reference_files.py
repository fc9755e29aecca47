"""Reference files made by hand: a good indices and composition pair, and broken ones."""

from __future__ import annotations

from pathlib import Path

INDICES = """\
index,name,prev_close_level,weight_cap
HSI,Hang Seng Index,20000,
CAP,Capped Index,5000,0.3
"""
COMPOSITION = """\
index,security,issued_shares,faf,cap_factor,prev_close
HSI,0005.HK,1000,0.5,,10
HSI,0700.HK,500,0.8,0.5,20
HSI,0941.HK,200,0.7,,50
CAP,0005.HK,2000000,0.5,,10
CAP,A,2000000,1,,10
CAP,B,1000000,1.0,,30
CAP,D,1000000,1,,5
"""


def write(tmp_path: Path, indices: str, composition: str) -> tuple[Path, Path]:
    indices_path = tmp_path / "indices.csv"
    composition_path = tmp_path / "composition.csv"
    indices_path.write_text(indices, encoding="utf-8")
    composition_path.write_text(composition, encoding="utf-8")
    return indices_path, composition_path


def replace_line(text: str, line: int, new: str) -> str:
    """Replace 1-based ``line`` of ``text`` (a line equal to "" deletes it)."""
    lines = text.splitlines()
    lines[line - 1 : line] = [new] if new else []
    return "\n".join(lines) + "\n"


BAD_FILES = [
    ("unknown index", "composition", 3, "HSX,0700.HK,500,0.8,,20", r"unknown index 'HSX'"),
    ("duplicate row", "composition", 4, "HSI,0005.HK,1000,0.5,,10", r"duplicate row.*line 2"),
    ("duplicate index", "indices", 3, "HSI,Again,100,", r"duplicate index HSI.*line 2"),
    ("faf zero", "composition", 3, "HSI,0700.HK,500,0,,20", r"faf must be in \(0, 1\]"),
    ("faf above one", "composition", 3, "HSI,0700.HK,500,1.2,,20", r"faf must be in \(0, 1\]"),
    ("zero shares", "composition", 3, "HSI,0700.HK,0,0.8,,20", r"issued_shares must be in \(0, 1e"),
    ("negative shares", "composition", 3, "HSI,0700.HK,-5,0.8,,20", r"issued_shares must be"),
    ("zero price", "composition", 4, "HSI,0941.HK,200,0.7,,0", r"prev_close must be in \(0, 1e"),
    ("negative price", "composition", 4, "HSI,0941.HK,200,0.7,,-1", r"prev_close must be"),
    ("text shares", "composition", 3, "HSI,0700.HK,lots,0.8,,20", r"issued_shares is not a numb"),
    ("text faf", "composition", 3, "HSI,0700.HK,500,high,,20", r"faf is not a number: 'high'"),
    ("nan price", "composition", 3, "HSI,0700.HK,500,0.8,,nan", r"prev_close must be finite"),
    ("text level", "indices", 2, "HSI,Hang Seng,big,", r"prev_close_level is not a number"),
    ("text cap", "indices", 3, "CAP,Capped,5000,thirty", r"weight_cap is not a number"),
    ("conflicting prev_close", "composition", 5, "CAP,0005.HK,2000000,0.5,,10.5", r"conflicting"),
    ("wrong composition header", "composition", 1, "index,code,shares,faf,cf,px", r"header"),
    ("wrong indices header", "indices", 1, "code,name,level,cap", r"header must start with"),
    (
        "cap factor on one row of a capped index",
        "composition",
        6,
        "CAP,A,2000000,1,0.9,10",
        r"cap_factor must be given on every row of CAP or on none",
    ),
    ("weight cap above one", "indices", 3, "CAP,Capped,5000,1.5", r"weight_cap must be in \(0, 1"),
    ("weight cap zero", "indices", 3, "CAP,Capped,5000,0", r"weight_cap must be in \(0, 1\]"),
    ("short row", "composition", 3, "HSI,0700.HK,500", r"expected 6 columns, got 3"),
    ("zero cap factor", "composition", 3, "HSI,0700.HK,500,0.8,0,20", r"cap_factor must be"),
    ("extra cell", "composition", 3, "HSI,0700.HK,500,0.8,0.5,20,x", r"expected 6 columns, got 7"),
    (
        "extra index cell",
        "indices",
        2,
        "HSI,Hang Seng Index,20000,,x",
        r"expected 4 columns, got 5",
    ),
    (
        "price 1e308",
        "composition",
        3,
        "HSI,0700.HK,500,0.8,0.5,1e308",
        r"prev_close must be in \(0, 1e",
    ),
    ("shares 1e16", "composition", 3, "HSI,0700.HK,1e16,0.8,0.5,20", r"issued_shares must be in"),
    (
        "cap factor 1.5",
        "composition",
        3,
        "HSI,0700.HK,500,0.8,1.5,20",
        r"cap_factor must be in \(0, 1",
    ),
    (
        "level 1e13",
        "indices",
        2,
        "HSI,Hang Seng Index,1e13,",
        r"prev_close_level must be in \(0, 1e",
    ),
    (
        "200 KB cell",
        "composition",
        3,
        "HSI," + "9" * 200_000 + ",500,0.8,,20",
        r"not CSV: field larger",
    ),
    (
        "open quote",
        "composition",
        3,
        'HSI,"0700.HK,500,0.8,0.5,20',
        r"a quoted cell runs on to line 8",
    ),
]
