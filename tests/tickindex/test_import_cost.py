"""Importing tickindex and starting the commands that touch no columnar file or DataFrame load
neither pyarrow nor pandas nor polars; a conversion or a columnar file loads them, and works.

Each case runs in a fresh interpreter: ``sys.modules`` of the test process has them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tickindex
from tests.support.paths import REPO
from tickindex.index_engine import Engine
from tickindex.replay_stream import replay_batches

HEAVY = ("pyarrow", "pandas", "polars")
START_NS = 1_795_138_200_000_000_000  # 2026-11-20 09:30 HKT


def heavy_after(code: str) -> list[str]:
    """The heavy libraries loaded once ``code`` has run in a fresh interpreter."""
    script = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    heavy: list[str] = json.loads(done.stdout.splitlines()[-1])
    return heavy


def command(module: str, argv: list[str], *, run: bool = False) -> str:
    """Code that parses ``argv`` with the parser of one command module (and runs its handler
    when ``run``), as ``tickindex.cli.main`` would."""
    return (
        "import argparse\n"
        f"from tickindex.cli import {module}\n"
        "parser = argparse.ArgumentParser(prog='tickindex')\n"
        f"{module}.register(parser.add_subparsers(dest='command', required=True))\n"
        f"args = parser.parse_args({argv!r})\n"
        + ("assert args.handler(args) == 0\n" if run else "assert callable(args.handler)\n")
    )


PARSED = {
    "run --web": command("run", ["run", "--web", "--port", "0", "--duration", "1"]),
    "run (board)": command("run", ["run", "--once", "--duration", "1"]),
    "gateway": command("gateway", ["gateway", "--port", "0"]),
    "serve": command("serve", ["serve"]),
    "simulate": command("simulate", ["simulate", "--duration", "1"]),
    "watch": command("watch", ["watch", "--once"]),
    "weights": command("weights", ["weights"]),
    "publish": command("publish", ["publish", "ticks.csv"]),
    "replay": command("replay", ["replay", "--ticks", "ticks.csv", "--out", "levels.csv"]),
    "bench": command("bench", ["bench", "--ticks", "1000"]),
    "restate": command("restate", ["restate", "--ticks", "ticks.csv", "--events", "e.jsonl"]),
    "record": command("record", ["record", "--out-dir", "levels"]),
    "record --format jsonl": command("record", ["record", "--out-dir", "d", "--format", "jsonl"]),
}


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(
            "import sys, tickindex\nassert 'tickindex.replaying' not in sys.modules\n",
            id="import tickindex",
        ),
        pytest.param("import tickindex.cli", id="import tickindex.cli"),
        pytest.param("import tickindex.cli.main", id="import tickindex.cli.main"),
        pytest.param(
            "import tickindex\n"
            "assert tickindex.Engine and tickindex.Levels and tickindex.Bars\n"
            "assert tickindex.ReplayResult and tickindex.replay\n",
            id="the public names but replay_batches",
        ),
        *(pytest.param(code, id=name) for name, code in PARSED.items()),
    ],
)
def test_neither_pyarrow_nor_pandas_nor_polars_is_imported(code: str) -> None:
    assert heavy_after(code) == []


def test_help_lists_every_command_without_them() -> None:
    code = (
        "import contextlib, io\n"
        "from tickindex.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "assert 'record' in out.getvalue() and 'replay' in out.getvalue()\n"
    )
    assert heavy_after(code) == []


def test_run_web_starts_and_stops_without_them() -> None:
    code = command("run", ["run", "--web", "--port", "0", "--duration", "1"], run=True)
    assert heavy_after(code) == []


def test_weights_runs_without_them() -> None:
    assert heavy_after(command("weights", ["weights", "--index", "HSI"], run=True)) == []


def test_bench_without_replay_io_runs_without_them() -> None:
    argv = ["bench", "--ticks", "20000", "--naive-ticks", "2000", "--all-cores"]
    assert heavy_after(command("bench", argv, run=True)) == []


def test_a_json_lines_replay_runs_without_them(tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.jsonl"
    rows = [
        {"ts": START_NS + i * 1_000_000, "security": "0700", "price": 630.0 + i} for i in (0, 1)
    ]
    ticks.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "levels.csv"
    argv = ["replay", "--ticks", str(ticks), "--out", str(out), "--no-progress"]
    assert heavy_after(command("replay", argv, run=True)) == []
    assert len(out.read_text().splitlines()) > 1


def test_the_engine_imports_none_of_them() -> None:
    modules = sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / "engine").rglob("*.py")
    )
    assert len(modules) > 50
    assert heavy_after("".join(f"import {name}\n" for name in modules)) == []


def test_levels_of_an_in_memory_replay_convert_when_asked() -> None:
    code = (
        "import sys, tickindex\n"
        f"ticks = [({START_NS}, '0700', 630.0), ({START_NS + 1}, '0005', 60.0)]\n"
        "result = tickindex.replay(ticks)\n"
        "assert len(result.levels) > 0\n"
        "assert not any(m in sys.modules for m in ('pyarrow', 'pandas'))\n"
        "frame = result.levels.to_pandas()\n"
        "assert frame['level'].tolist() == result.levels.level.tolist()\n"
        "assert frame['ts_event'].astype('int64').tolist() == result.levels.ts_event.tolist()\n"
    )
    assert {"pyarrow", "pandas"} <= set(heavy_after(code))


def test_the_lazy_names_are_the_modules_objects() -> None:
    assert tickindex.Engine is Engine
    assert tickindex.replay_batches is replay_batches
    assert {"Engine", "replay", "replay_batches"} <= set(dir(tickindex))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = tickindex.nothing
