"""Settings: csflow.yml, environment overrides, and one clear line for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from csflow.config import ConfigError, load_settings


def test_defaults_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "csflow.yml"
    config.write_text("timezone: UTC\nemail_backend: smtp\nsmtp_port: 2525\n", encoding="utf-8")
    s = load_settings(config, environ={"CSFLOW_EMAIL_BACKEND": "sendgrid", "CSFLOW_OUTBOX_DIR": "/tmp/out"})
    assert s.timezone == "UTC"  # from the file
    assert s.email_backend == "sendgrid"  # the environment wins
    assert s.smtp_port == 2525
    assert s.outbox_dir == Path("/tmp/out")
    assert s.uses_embedded_warehouse
    assert load_settings(tmp_path / "absent.yml", environ={}).timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CSFLOW_TIMEZONE": "Mars/Olympus"}, "setting timezone (CSFLOW_TIMEZONE): unknown time zone 'Mars/Olympus'"),
        ({"CSFLOW_EMAIL_BACKEND": "pigeon"}, "setting email_backend (CSFLOW_EMAIL_BACKEND): 'pigeon' is not one of"),
        ({"CSFLOW_DATABASE_URL": "not a url"}, "setting database_url (CSFLOW_DATABASE_URL): not a SQLAlchemy URL"),
        ({"CSFLOW_DATABASE_URL": "mysql://u@h/db"}, "csflow needs PostgreSQL, got 'mysql'"),
        ({"CSFLOW_SMTP_PORT": "twenty"}, "setting smtp_port (CSFLOW_SMTP_PORT): expected a whole number"),
        ({"CSFLOW_SMTP_STARTTLS": "perhaps"}, "setting smtp_starttls (CSFLOW_SMTP_STARTTLS): expected true or false"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(tmp_path / "absent.yml", environ=env)


def test_unknown_keys_in_the_file_are_named(tmp_path: Path) -> None:
    config = tmp_path / "csflow.yml"
    config.write_text("timezon: UTC\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'timezon'"):
        load_settings(config, environ={})


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CSFLOW_CONFIG: file .* does not exist"):
        load_settings(environ={"CSFLOW_CONFIG": str(tmp_path / "nope.yml")})
