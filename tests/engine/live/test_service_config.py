"""Service settings: defaults < file < environment < flags, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.live.config import ConfigError, ServiceConfig, load_config


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    file = tmp_path / "serve.toml"
    file.write_text('tick_topic = "from-file"\nlevel_topic = "levels-file"\nmax_batch_ticks = 7\n')
    env = {"TICKINDEX_LEVEL_TOPIC": "levels-env", "TICKINDEX_MAX_BATCH_TICKS": "9", "HOME": "/x"}
    config = load_config(file, env, {"max_batch_ticks": "11", "group_id": None})
    assert config.tick_topic == "from-file"
    assert config.level_topic == "levels-env"
    assert config.max_batch_ticks == 11
    assert config.group_id == ServiceConfig().group_id


def test_json_file_and_unrelated_env_are_fine(tmp_path: Path) -> None:
    file = tmp_path / "serve.json"
    file.write_text('{"delivery": "exactly-once"}')
    config = load_config(file, {"TICKINDEX_REQUIRE_KAFKA": "1"})
    assert config.delivery == "exactly-once"
    assert config.transactional_id == "tickindex-tickindex-0"


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "serve.toml"
    file.write_text('tick_topik = "typo"\n')
    with pytest.raises(ConfigError, match="tick_topik"):
        load_config(file)


def test_bad_values_name_their_source() -> None:
    with pytest.raises(ConfigError, match=r"max_batch_ticks from \$TICKINDEX_MAX_BATCH_TICKS"):
        load_config(env={"TICKINDEX_MAX_BATCH_TICKS": "lots"})
    with pytest.raises(ConfigError, match="delivery from --delivery"):
        load_config(overrides={"delivery": "twice"})
    with pytest.raises(ConfigError, match="must be positive"):
        load_config(overrides={"max_batch_ticks": 0})
    with pytest.raises(ConfigError, match="both indices and composition"):
        load_config(overrides={"indices": "i.csv"})


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "none.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("= nope")
    with pytest.raises(ConfigError, match="not valid toml"):
        load_config(broken)
