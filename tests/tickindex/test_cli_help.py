"""The command line's surface: ``--version``, the help of every flag, the examples of every
command, and an import that works without the Unix-only ``resource`` module (as on Windows)."""

from __future__ import annotations

import argparse
import pkgutil
import re
import shlex
import subprocess
import sys
from importlib import metadata

import pytest

import tickindex.cli
from engine.live.config import ServiceConfig
from engine.live.kafka.security import SECRET_FIELDS
from tickindex.cli.command import EXAMPLES_HEADING
from tickindex.cli.kafka_security import SECURITY_HELP
from tickindex.cli.main import build_parser, main
from tickindex.cli.serve import SERVICE_HELP


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("tickindex has no sub-commands")


COMMANDS = sorted(command_parsers())
DEFAULT_NOTE = re.compile(r"\(?\s*\bdefault\b:?[^);]*\)?", re.IGNORECASE)


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert help_text(["--version"], capsys) == f"tickindex {metadata.version('tickindex')}\n"


def test_there_are_commands_to_check() -> None:
    assert {"run", "serve", "replay", "publish", "bench"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_ends_with_examples_that_parse(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text([command, "--help"], capsys)
    _, heading, examples = text.partition(f"\n{EXAMPLES_HEADING}\n")
    assert heading, f"tickindex {command} --help has no {EXAMPLES_HEADING!r} section"
    lines = examples.strip("\n").splitlines()
    explained = [line.strip() for line in lines if line.strip().startswith("# ")]
    command_lines = [line.strip() for line in lines if line.strip().startswith("tickindex ")]
    assert 1 <= len(command_lines) <= 2
    assert len(explained) == len(command_lines) == len(lines) // 2
    for command_line in command_lines:
        argv = shlex.split(command_line)[1:]
        assert argv[0] == command
        assert build_parser().parse_args(argv).command == command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_says_what_it_does(command: str) -> None:
    for action in command_parsers()[command]._actions:
        if action.help == argparse.SUPPRESS:
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"tickindex {command} {name}: no help"
        what = DEFAULT_NOTE.sub("", action.help).strip(" ,;.")
        assert len(what.split()) >= 2, f"tickindex {command} {name}: help {action.help!r}"


def test_the_default_note_is_recognised() -> None:
    assert DEFAULT_NOTE.sub("", "(default: 7)").strip() == ""
    assert DEFAULT_NOTE.sub("", "default 'json'").strip() == ""


def test_every_serve_setting_has_its_own_help() -> None:
    documented = SERVICE_HELP.keys() | SECURITY_HELP.keys()
    flags = set(ServiceConfig.__struct_fields__) - SECRET_FIELDS
    assert sorted(flags - documented) == []
    assert sorted(documented - flags) == []


WITHOUT_RESOURCE = """
import importlib
import pkgutil
import sys

sys.modules["resource"] = None  # as on Windows: `import resource` raises ImportError

import tickindex.cli
from tickindex.cli.main import build_parser, main

modules = [m.name for m in pkgutil.iter_modules(tickindex.cli.__path__, "tickindex.cli.")]
for name in modules:
    importlib.import_module(name)
commands = next(a.choices for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
for argv in (["--help"], *([command, "--help"] for command in commands)):
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == 0, (argv, exc.code)
    else:
        raise AssertionError(f"{argv}: no exit")
assert sys.modules["resource"] is None
print(f"imported {len(modules)} modules, {len(commands)} commands")
"""


def test_cli_imports_and_helps_without_the_resource_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_RESOURCE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules = list(pkgutil.iter_modules(tickindex.cli.__path__))
    assert len(modules) >= len(COMMANDS) + 1
    assert (
        done.stdout.splitlines()[-1] == f"imported {len(modules)} modules, {len(COMMANDS)} commands"
    )
