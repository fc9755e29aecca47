"""``DayFiles``: one append handle per day, a header only in a new file, at most a few open."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from consumers.day_files import MAX_OPEN_FILES, DayFiles

DAY = date(2026, 11, 20)


def test_header_once_per_file_and_evicted_days_reopened_for_appending(tmp_path: Path) -> None:
    def path_for(day: date) -> Path:
        return tmp_path / day.isoformat() / "x.csv"

    files = DayFiles(path_for, b"h\n")
    days = [DAY + timedelta(days=k) for k in range(MAX_OPEN_FILES + 2)]
    for day in days:
        files.handle(day).write(b"a\n")
    assert len(files._handles) == MAX_OPEN_FILES
    files.handle(days[0]).write(b"b\n")  # closed when the others came, reopened
    files.close()
    again = DayFiles(path_for, b"h\n")  # a restarted recorder
    again.handle(days[1]).write(b"c\n")
    again.close()
    assert path_for(days[0]).read_bytes() == b"h\na\nb\n"
    assert path_for(days[1]).read_bytes() == b"h\na\nc\n"
    assert [path_for(d).read_bytes() for d in days[2:]] == [b"h\na\n"] * (len(days) - 2)
    assert files.files == {day: path_for(day) for day in days}
