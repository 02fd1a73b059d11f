"""The webhook settings: each variable and flag parsed, bad values refused in one line."""

from __future__ import annotations

from typing import Any

import pytest

from chat_server.config import OPTIONS, ConfigError, Settings, parse_command_line
from chat_server.core.settings import WEBHOOK_EVENTS

SIGNED = {"CHAT_WEBHOOK_SECRET": "hook-secret"}

# (variable, raw value, parsed value); the flag and the field come from config.OPTIONS
READINGS: list[tuple[str, str, Any]] = [
    (
        "CHAT_WEBHOOK_URL",
        "https://a.example/hook, http://10.0.0.1:9000/in",
        ("https://a.example/hook", "http://10.0.0.1:9000/in"),
    ),
    ("CHAT_WEBHOOK_SECRET", "s3", "s3"),
    (
        "CHAT_WEBHOOK_EVENTS",
        "message,private_message",
        frozenset({"message", "private_message"}),
    ),
    ("CHAT_WEBHOOK_MAX_AGE", "120", 120.0),
    ("CHAT_WEBHOOK_RETRY_BASE", "0.5", 0.5),
    ("CHAT_WEBHOOK_RETRY_CAP", "30", 30.0),
    ("CHAT_WEBHOOK_CONCURRENCY", "2", 2),
    ("CHAT_WEBHOOK_QUEUE_SIZE", "500", 500),
    ("CHAT_WEBHOOK_CLAIM_IDLE", "2", 2.0),
]
IDS = [r[0] for r in READINGS]

BAD_VALUES = [
    ("CHAT_WEBHOOK_URL", "ftp://files.example/hook"),
    ("CHAT_WEBHOOK_URL", "hooks.example/in"),
    ("CHAT_WEBHOOK_URL", "https://ok.example/a,javascript:alert(1)"),
    ("CHAT_WEBHOOK_URL", "http://127.0.0.1:notaport/"),
    ("CHAT_WEBHOOK_URL", " , "),
    ("CHAT_WEBHOOK_EVENTS", "message,typing"),
    ("CHAT_WEBHOOK_MAX_AGE", "0"),
    ("CHAT_WEBHOOK_MAX_AGE", "an hour"),
    ("CHAT_WEBHOOK_CONCURRENCY", "0"),
    ("CHAT_WEBHOOK_QUEUE_SIZE", "-1"),
    ("CHAT_WEBHOOK_CLAIM_IDLE", "nan"),
]


def settings_from(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    return parse_command_line(argv, {**SIGNED, **(environ or {})}).settings


def test_by_default_no_webhook_is_sent_and_every_type_would_be() -> None:
    settings = parse_command_line([], {}).settings
    assert settings.webhooks is False
    assert settings.webhook_events == frozenset(WEBHOOK_EVENTS)
    assert settings.webhook_max_age == 3600


@pytest.mark.parametrize(("variable", "raw", "value"), READINGS, ids=IDS)
def test_each_webhook_setting_is_read_from_its_variable_and_from_its_flag(
    variable: str, raw: str, value: Any
) -> None:
    option = next(o for o in OPTIONS if o.env == variable)
    flag, field = option.flag, option.field
    from_variable = settings_from([], {variable: raw})
    from_flag = settings_from([flag, raw])
    assert [getattr(from_variable, field), getattr(from_flag, field)] == [value, value]


def test_a_url_and_a_secret_turn_webhooks_on() -> None:
    assert settings_from([], {"CHAT_WEBHOOK_URL": "http://127.0.0.1:9/"}).webhooks is True


@pytest.mark.parametrize(("variable", "raw"), BAD_VALUES)
def test_a_bad_webhook_variable_raises_a_one_line_config_error_naming_it(
    variable: str, raw: str
) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from([], {variable: raw})
    assert "\n" not in str(info.value)
    assert variable in str(info.value)


def test_a_webhook_url_without_a_secret_is_refused_naming_the_secret() -> None:
    with pytest.raises(ConfigError, match="CHAT_WEBHOOK_SECRET"):
        parse_command_line(["--webhook-url", "https://a.example/hook"], {})
