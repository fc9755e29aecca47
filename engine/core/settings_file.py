"""Settings files: a TOML (``.toml``) or else JSON table, every problem naming the file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from engine.core.errors import TickIndexError


def read_settings_file(
    path: str | Path, error: type[TickIndexError], what: str = "config file"
) -> dict[str, Any]:
    """The table of settings in ``path``.

    Parameters
    ----------
    path : str or Path
        A ``.toml`` file, or JSON for any other suffix.
    error : type of TickIndexError
        Raised, with a message naming the file, when it cannot be read or is not a table.
    what : str
        What the file is, for the message (``cannot read <what>``).

    Returns
    -------
    dict
        The decoded table.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 (byte {exc.start})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, RecursionError) as exc:
        # Decode errors, and integers of more than 4,300 digits; RecursionError: deep nesting.
        detail = str(exc)[:200]
        raise error(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {detail}") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: expected a table of settings")
    return data
