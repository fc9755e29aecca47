"""Malformed input files of every kind, generated into a folder, for the offline commands.

Each ``Case`` is one file that replaces one valid file of a small universe (indices,
composition, calendar, variants, FX, events or ticks) and says where the problem is, when the
file is bad at a known line.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

INDICES = "index,name,prev_close_level,weight_cap\nIDX,Test index,1000,\nCAP,Capped,500,0.6\n"
COMPOSITION = (
    "index,security,issued_shares,faf,cap_factor,prev_close\n"
    "IDX,AAA,1000000,1.0,,10.0\n"
    "IDX,BBB,2000000,0.5,,20.0\n"
    "CAP,AAA,1000000,1.0,,10.0\n"
    "CAP,BBB,2000000,0.5,,20.0\n"
    "CAP,CCC,3000000,0.8,,5.0\n"
)
CALENDAR = "date,kind\n2026-12-25,holiday\n2026-12-24,half_day\n"
VARIANTS = (
    "index,base_index,currency,fx_pair,prev_close_level,fx_prev_close\n"
    "IDX_USD,IDX,USD,HKDUSD,128.5,0.1285\n"
)
FX_CSV = "ts,pair,rate\n1000,HKDUSD,0.1285\n3000,HKDUSD,0.1286\n"
EVENTS = '{"type":"stock_split","effective":1500,"security":"AAA","ratio":2}\n'
TICKS_CSV = "ts,security,price\n1000,AAA,10.5\n2000,BBB,20.1\n3000,CCC,5.2\n4000,AAA,10.6\n"
TICKS_JSONL = "".join(
    f'{{"ts":{ts},"security":"{code}","price":{price}}}\n'
    for ts, code, price in ((1000, "AAA", 10.5), (2000, "BBB", 20.1), (3000, "CCC", 5.2))
)

HUGE_CELL = "9" * 200_000
DEEP_JSON = "[" * 1000 + "]" * 1000


@dataclass(frozen=True)
class Case:
    """One malformed file.

    Attributes
    ----------
    name : str
        What is wrong, for the test id.
    role : str
        Which file it replaces: indices, composition, calendar, variants, fx, events, ticks.
    path : Path
        The file written.
    line : int | None
        The line a strict reader must name, when the problem is at a known line.
    fatal : bool
        True when even the lenient default must stop (a reference file, a broken file).
    """

    name: str
    role: str
    path: Path
    line: int | None
    fatal: bool


def write_valid_files(folder: Path) -> dict[str, Path]:
    """The valid files of the small universe, by role."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "indices": (folder / "indices.csv", INDICES),
        "composition": (folder / "composition.csv", COMPOSITION),
        "calendar": (folder / "calendar.csv", CALENDAR),
        "variants": (folder / "variants.csv", VARIANTS),
        "fx": (folder / "fx.csv", FX_CSV),
        "events": (folder / "events.jsonl", EVENTS),
        "ticks": (folder / "ticks.csv", TICKS_CSV),
    }
    for path, text in files.values():
        path.write_text(text)
    return {role: path for role, (path, _) in files.items()}


def _replace_cell(text: str, line: int, column: int, value: str) -> str:
    lines = text.splitlines(keepends=True)
    cells = lines[line - 1].rstrip("\n").split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells) + "\n"
    return "".join(lines)


def _replace_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[line - 1] = new + "\n"
    return "".join(lines)


def _bytes_at_line(text: str, line: int, junk: bytes) -> bytes:
    lines = text.encode().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].rstrip(b"\n") + junk + b"\n"
    return b"".join(lines)


MAYBE_VALID = ("nul bytes", "bom and crlf", "lone carriage return")
"""Structural variations a reference file may well survive."""
MAYBE_ACCEPTED_ROWS = ("price 1e308", "price huge int", "vertical tab")
"""Tick rows the reader itself may pass on (the engine's screening bounds prices)."""

BAD_NUMBERS = ("1e308", "inf", "-inf", "nan", "-1", "0", "1e400", "abc", "", HUGE_CELL[:400])


def _structural(text: str, width: int) -> Iterator[tuple[str, bytes, int | None]]:
    """(name, content, line) of problems any CSV file can have; line None: the file."""
    yield "invalid utf-8", _bytes_at_line(text, 2, b"\xff\xfe"), 2
    yield "invalid utf-8 in header", _bytes_at_line(text, 1, b"\xc3\x28"), 1
    yield "extra cell", _bytes_at_line(text, 2, b",surplus"), 2
    yield "missing cells", _replace_line(text, 2, "A").encode(), 2
    yield "200 KB cell", _replace_line(text, 2, HUGE_CELL + "," * (width - 1)).encode(), 2
    yield "unterminated quote", _replace_line(text, 2, '"open' + "," * (width - 1)).encode(), 2
    yield "missing header", "\n".join(text.splitlines()[1:]).encode(), 1
    yield "empty", b"", None
    yield "binary junk", random.Random(len(text)).randbytes(3000), None
    yield "nul bytes", text.replace(",", ",\x00", 1).encode(), None
    yield "bom and crlf", ("\ufeff" + text.replace("\n", "\r\n")).encode(), None
    yield "lone carriage return", text.replace("\n", "\r", 2).encode(), None


def reference_cases(folder: Path) -> Iterator[Case]:
    """Bad indices, composition, calendar, variants and events files (always fatal)."""
    numeric = {
        "indices": (INDICES, 2, (2, 3)),
        "composition": (COMPOSITION, 2, (2, 3, 5)),
        "variants": (VARIANTS, 2, (4, 5)),
    }
    counter = 0
    folder.mkdir(parents=True, exist_ok=True)

    def case(
        name: str, role: str, content: bytes, line: int | None, suffix: str, *, fatal: bool = True
    ) -> Case:
        nonlocal counter
        counter += 1
        path = folder / f"{role}-{counter}{suffix}"
        path.write_bytes(content)
        return Case(name, role, path, line, fatal)

    for role, (text, line, columns) in numeric.items():
        for column in columns:
            for value in BAD_NUMBERS:
                if value == "" and (role, column) == ("indices", 3):
                    continue  # an empty weight cap is an uncapped index
                content = _replace_cell(text, line, column, value).encode()
                yield case(f"{role} col {column} = {value[:12]!r}", role, content, line, ".csv")
        yield case(f"{role} extra cells", role, _bytes_at_line(text, 2, b",x,y"), 2, ".csv")
    for value in ("1.5", "0", "nan", "-1"):
        content = _replace_cell(COMPOSITION, 4, 4, value).encode()
        yield case(f"cap factor {value}", "composition", content, 4, ".csv")
    texts = {
        "indices": (INDICES, 4),
        "composition": (COMPOSITION, 6),
        "calendar": (CALENDAR, 2),
        "variants": (VARIANTS, 6),
    }
    for role, (text, width) in texts.items():
        for name, content, where in _structural(text, width):
            fatal = name not in MAYBE_VALID
            yield case(f"{role} {name}", role, content, where, ".csv", fatal=fatal)
    for name, content in (
        ("bad date", _replace_cell(CALENDAR, 2, 0, "25/12/2026").encode()),
        ("bad kind", _replace_cell(CALENDAR, 2, 1, "party").encode()),
        ("far date", _replace_cell(CALENDAR, 2, 0, "99999-01-01").encode()),
    ):
        yield case(f"calendar {name}", "calendar", content, 2, ".csv")
    for name, content, fatal in (
        ("invalid utf-8", EVENTS.encode()[:-2] + b"\xff}\n", True),
        ("deep json", (DEEP_JSON + "\n").encode(), True),
        # The events reader and its validation belong to the control-events work; these two
        # may be accepted today, they must only never give a traceback.
        ("effective 2**64", EVENTS.replace("1500", str(2**64)).encode(), False),
        ("ratio 1e308", EVENTS.replace('"ratio":2', '"ratio":1e308').encode(), False),
        ("ratio 1e400", EVENTS.replace('"ratio":2', '"ratio":1e400').encode(), True),
        ("binary junk", random.Random(7).randbytes(2000), True),
        ("not an object", b"[1, 2, 3]\n", True),
        ("empty line and junk", b"\n\n{\n", True),
    ):
        yield case(f"events {name}", "events", content, None, ".jsonl", fatal=fatal)


def _tick_rows_csv() -> Iterator[tuple[str, str]]:
    """(name, bad row) for a ts,security,price CSV."""
    yield "ts 2**63", f"{2**63},AAA,10"
    yield "ts 2**64", f"{2**64},AAA,10"
    yield "ts negative", "-5,AAA,10"
    yield "ts huge digits", "9" * 5000 + ",AAA,10"
    yield "ts float", "1.5e3,AAA,10"
    yield "ts year 9999", "9999-12-31T23:59:59+00:00,AAA,10"
    yield "ts year 1", "0001-01-01T00:00:00+08:00,AAA,10"
    yield "ts no offset", "2026-11-20T09:30:00,AAA,10"
    yield "price 1e308", "1500,AAA,1e308"
    yield "price inf", "1500,AAA,inf"
    yield "price nan", "1500,AAA,nan"
    yield "price negative", "1500,AAA,-3"
    yield "price zero", "1500,AAA,0"
    yield "price 1e400", "1500,AAA,1e400"
    yield "price text", "1500,AAA,ten"
    yield "unknown security", "1500,ZZZ,10"
    yield "200 KB security", f"1500,{HUGE_CELL},10"
    yield "200 KB price", f"1500,AAA,{HUGE_CELL}"
    yield "wrong column count", "1500,AAA"
    yield "extra cells", "1500,AAA,10,11,12"
    yield "unterminated quote", '1500,"AAA,10'
    yield "nul byte", "1500,AA\x00A,10"
    yield "vertical tab", "1500,AAA\x0b,10"


def _tick_rows_jsonl() -> Iterator[tuple[str, str]]:
    yield "ts 2**63", f'{{"ts":{2**63},"security":"AAA","price":10}}'
    yield "ts 2**70", f'{{"ts":{2**70},"security":"AAA","price":10}}'
    yield "ts negative", '{"ts":-5,"security":"AAA","price":10}'
    yield "ts float", '{"ts":1.5,"security":"AAA","price":10}'
    yield "ts nested", '{"ts":' + DEEP_JSON + ',"security":"AAA","price":10}'
    yield "deep unknown key", '{"x":' + DEEP_JSON + ',"ts":1500,"security":"AAA","price":10}'
    yield "deep line", DEEP_JSON
    yield "price 1e308", '{"ts":1500,"security":"AAA","price":1e308}'
    yield "price 1e400", '{"ts":1500,"security":"AAA","price":1e400}'
    yield "price string nan", '{"ts":1500,"security":"AAA","price":"nan"}'
    yield "price huge int", f'{{"ts":1500,"security":"AAA","price":{2**80}}}'
    yield "price object", '{"ts":1500,"security":"AAA","price":{"a":1}}'
    yield "unknown security", '{"ts":1500,"security":"ZZZ","price":10}'
    yield "200 KB security", f'{{"ts":1500,"security":"{HUGE_CELL}","price":10}}'
    yield "missing key", '{"ts":1500,"price":10}'
    yield "array", '[1500,"AAA",10]'
    yield "two objects", '{"ts":1,"security":"AAA","price":1} {"ts":2}'
    yield "truncated", '{"ts":1500,"security":"AA'
    yield "null", "null"


def tick_cases(folder: Path) -> Iterator[Case]:
    """Bad tick and FX files: bad rows (skipped by default) and broken files (fatal)."""
    counter = 0
    folder.mkdir(parents=True, exist_ok=True)

    def write(
        name: str, role: str, content: bytes, suffix: str, line: int | None, *, fatal: bool
    ) -> Case:
        nonlocal counter
        counter += 1
        path = folder / f"{role}-{counter}{suffix}"
        if suffix.endswith(".gz"):
            content = gzip.compress(content, mtime=0)
        path.write_bytes(content)
        return Case(name, role, path, line, fatal)

    header, *rows = TICKS_CSV.splitlines()
    for name, bad in _tick_rows_csv():
        text = "\n".join([header, rows[0], bad, *rows[1:]]) + "\n"
        for suffix in (".csv", ".csv.gz"):
            yield write(f"csv {name}", "ticks", text.encode(), suffix, 3, fatal=False)
    jsonl_rows = TICKS_JSONL.splitlines()
    for name, bad in _tick_rows_jsonl():
        text = "\n".join([jsonl_rows[0], bad, *jsonl_rows[1:]]) + "\n"
        for suffix in (".jsonl", ".jsonl.gz"):
            yield write(f"jsonl {name}", "ticks", text.encode(), suffix, 2, fatal=False)
    yield write(
        "csv invalid utf-8 row",
        "ticks",
        _bytes_at_line(TICKS_CSV, 3, b"\xff"),
        ".csv",
        3,
        fatal=False,
    )
    yield write(
        "jsonl invalid utf-8",
        "ticks",
        _bytes_at_line(TICKS_JSONL, 2, b"\xff"),
        ".jsonl",
        2,
        fatal=False,
    )
    yield write(
        "csv bom crlf",
        "ticks",
        ("\ufeff" + TICKS_CSV.replace("\n", "\r\n")).encode(),
        ".csv",
        None,
        fatal=False,
    )
    yield write(
        "jsonl bom", "ticks", ("\ufeff" + TICKS_JSONL).encode(), ".jsonl", None, fatal=False
    )
    yield write(
        "csv header invalid utf-8",
        "ticks",
        _bytes_at_line(TICKS_CSV, 1, b"\xff"),
        ".csv",
        1,
        fatal=True,
    )
    yield write(
        "csv 200 KB header", "ticks", (HUGE_CELL + "\n" + TICKS_CSV).encode(), ".csv", 1, fatal=True
    )
    yield write("csv missing header", "ticks", "\n".join(rows).encode(), ".csv", 1, fatal=True)
    yield write("csv empty", "ticks", b"", ".csv", 1, fatal=True)
    yield write("jsonl empty", "ticks", b"", ".jsonl", None, fatal=False)
    yield write(
        "csv binary junk", "ticks", random.Random(3).randbytes(5000), ".csv", None, fatal=True
    )
    yield write(
        "jsonl binary junk", "ticks", random.Random(4).randbytes(5000), ".jsonl", None, fatal=False
    )
    for suffix in (".csv.gz", ".jsonl.gz"):
        plain = TICKS_CSV if suffix == ".csv.gz" else TICKS_JSONL
        whole = gzip.compress(plain.encode() * 50, mtime=0)
        for name, content in (
            ("truncated gzip", whole[: len(whole) // 2]),
            ("not gzip", plain.encode()),
            ("gzip junk tail", whole + b"junk"),
        ):
            counter += 1
            path = folder / f"ticks-{counter}{suffix}"
            path.write_bytes(content)
            yield Case(f"{suffix} {name}", "ticks", path, None, fatal=True)
    fx_header, *fx_rows = FX_CSV.splitlines()
    for name, bad in (
        ("rate 1e308", "2000,HKDUSD,1e308"),
        ("rate nan", "2000,HKDUSD,nan"),
        ("rate zero", "2000,HKDUSD,0"),
        ("rate text", "2000,HKDUSD,x"),
        ("ts 2**64", f"{2**64},HKDUSD,0.13"),
        ("ts negative", "-1,HKDUSD,0.13"),
        ("unknown pair", "2000,EURUSD,0.13"),
        ("extra cells", "2000,HKDUSD,0.13,1"),
        ("200 KB rate", f"2000,HKDUSD,{HUGE_CELL}"),
    ):
        text = "\n".join([fx_header, fx_rows[0], bad, *fx_rows[1:]]) + "\n"
        yield write(f"fx {name}", "fx", text.encode(), ".csv", 3, fatal=False)
    yield write(
        "fx invalid utf-8", "fx", _bytes_at_line(FX_CSV, 3, b"\xfe"), ".csv", 3, fatal=False
    )
    yield write("fx missing header", "fx", "\n".join(fx_rows).encode(), ".csv", 1, fatal=True)


def missing_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """Paths that are not readable files: a directory, a path through a file, nothing."""
    directory = folder / "a-directory.csv"
    directory.mkdir(exist_ok=True)
    blocker = folder / "plain-file"
    blocker.write_text("x")
    yield "directory", directory
    yield "through a file", blocker / "ticks.csv"
    yield "missing", folder / "nothing-here.csv"


CaseSource = Callable[[Path], Iterator[Case]]
