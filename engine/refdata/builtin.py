"""The built-in Hang Seng family universe shipped as package data (approximate figures)."""

from __future__ import annotations

from importlib import resources
from os import PathLike, fspath
from pathlib import Path

from engine.refdata.reference_files import load_universe
from engine.refdata.universe import Universe

BUILTIN_NAME = "hang_seng"


def builtin_files() -> tuple[Path, Path]:
    """Paths of the built-in indices and composition CSV files."""
    folder = Path(str(resources.files("engine.refdata.data").joinpath(BUILTIN_NAME)))
    return folder / "indices.csv", folder / "composition.csv"


def load_builtin_universe() -> Universe:
    """The built-in Hang Seng family (HSI, HSCEI, HSTECH, HSCI segments, HSI sub-indices)."""
    indices, composition = builtin_files()
    return load_universe(fspath(indices), fspath(composition))


def load_universe_or_builtin(
    indices: str | PathLike[str] | None, composition: str | PathLike[str] | None
) -> Universe:
    """The universe from files when both are given, else the built-in one.

    Raises
    ------
    ValueError
        When only one of the two files is given.
    """
    if indices is None and composition is None:
        return load_builtin_universe()
    if indices is None or composition is None:
        raise ValueError("give both indices and composition, or neither for the built-in family")
    return load_universe(fspath(indices), fspath(composition))
