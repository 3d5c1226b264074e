"""Configuration: the example file is the truth about every setting."""

from __future__ import annotations

import re

from helpers import ROOT

from cockpit.config import SETTINGS, Config, load_config

EXAMPLE = ROOT / "config.example.toml"


def test_the_example_loads_and_documents_every_setting():
    config = load_config(EXAMPLE)
    assert set(config.environments) == {"sandbox", "staging", "production"}
    assert config.environments["production"].confirm is True
    assert config.environments["staging"].secrets["ADMIN_KEY"] == "env:STAGING_ADMIN_KEY"
    text = EXAMPLE.read_text()
    for section, keys in SETTINGS.items():
        assert f"[{section}]" in text
        for key in keys:
            assert re.search(rf"^# {key} = ", text, re.MULTILINE), key


def test_uncommented_example_equals_the_defaults(tmp_path):
    text = EXAMPLE.read_text().split("# ---")[0]
    uncommented = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.MULTILINE)
    (tmp_path / "c.toml").write_text(uncommented)
    config = load_config(tmp_path / "c.toml")
    defaults = Config()
    for name in ("environment", "synchronous", "window_lines", "flush_interval", "kill_grace"):
        assert getattr(config, name) == getattr(defaults, name), name
    assert config.operator == "alice"


def test_no_config_means_defaults_under_the_user_data_folder(tmp_path):
    config = load_config()
    assert config.path is None
    assert config.journal_path == tmp_path / "data" / "cockpit" / "journal.sqlite3"
