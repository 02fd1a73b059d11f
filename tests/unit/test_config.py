"""Settings and parse_command_line: every variable, every flag, flags win, bad values refused."""

from __future__ import annotations

from typing import Any

import pytest

from chat_server.config import Command, ConfigError, Settings, parse_command_line

# (variable, flag, raw value, Settings field, parsed value)
OPTIONS: list[tuple[str, str, str, str, Any]] = [
    ("PORT", "--port", "8001", "port", 8001),
    ("HOST", "--host", "127.0.0.1", "host", "127.0.0.1"),
    (
        "REDIS_URL",
        "--redis-url",
        "redis://10.0.0.5:6380/2",
        "redis_url",
        "redis://10.0.0.5:6380/2",
    ),
    ("CHAT_API_KEY", "--api-key", "k3y", "api_key", "k3y"),
    ("CHAT_SECRET", "--secret", "s3cret", "secret", "s3cret"),
    (
        "CHAT_CORS_ORIGINS",
        "--cors-origins",
        "https://a.example,https://b.example",
        "cors_origins",
        ("https://a.example", "https://b.example"),
    ),
    ("CHAT_HISTORY_SIZE", "--history-size", "7", "history_size", 7),
    ("LOG_LEVEL", "--log-level", "DEBUG", "log_level", "DEBUG"),
    ("CHAT_RATE_BURST", "--rate-burst", "3", "rate_burst", 3),
    ("CHAT_RATE_PER_SECOND", "--rate-per-second", "2.5", "rate_per_second", 2.5),
    ("CHAT_API_RATE_PER_SECOND", "--api-rate-per-second", "9", "api_rate_per_second", 9),
    ("CHAT_MAX_PAYLOAD", "--max-payload", "1000", "max_payload", 1000),
    ("CHAT_SEND_QUEUE_BYTES", "--send-queue-bytes", "4096", "send_queue_bytes", 4096),
]
IDS = [o[0] for o in OPTIONS]


def settings_from(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    return parse_command_line(argv, environ or {}).settings


def test_no_flags_and_no_variables_give_the_contract_defaults() -> None:
    settings = settings_from([])
    assert settings.port == 8080
    assert settings.host == "0.0.0.0"
    assert settings.redis_url is None
    assert settings.api_key is None
    assert settings.secret is None
    assert settings.cors_origins is None
    assert settings.history_size == 100
    assert settings.log_level == "INFO"
    assert settings.rate_burst == 20
    assert settings.rate_per_second == 5
    assert settings.api_rate_per_second == 50
    assert settings.max_payload == 65536
    assert settings.send_queue_bytes == 1048576


def test_settings_defaults_match_the_parsed_defaults() -> None:
    assert settings_from([]) == Settings()


def test_no_arguments_mean_serve() -> None:
    assert parse_command_line([], {}).name == "serve"


@pytest.mark.parametrize(("variable", "flag", "raw", "field", "value"), OPTIONS, ids=IDS)
def test_each_variable_sets_its_setting(
    variable: str, flag: str, raw: str, field: str, value: Any
) -> None:
    assert getattr(settings_from([], {variable: raw}), field) == value


@pytest.mark.parametrize(("variable", "flag", "raw", "field", "value"), OPTIONS, ids=IDS)
def test_each_flag_sets_its_setting(
    variable: str, flag: str, raw: str, field: str, value: Any
) -> None:
    assert getattr(settings_from([flag, raw]), field) == value


@pytest.mark.parametrize(("variable", "flag", "raw", "field", "value"), OPTIONS, ids=IDS)
def test_each_flag_wins_over_its_variable(
    variable: str, flag: str, raw: str, field: str, value: Any
) -> None:
    other = {
        "PORT": "9001",
        "HOST": "10.1.1.1",
        "REDIS_URL": "redis://other:6379/0",
        "CHAT_CORS_ORIGINS": "https://other.example",
        "LOG_LEVEL": "ERROR",
        "CHAT_RATE_PER_SECOND": "7.5",
        "CHAT_API_RATE_PER_SECOND": "11",
    }.get(variable, "99")
    assert getattr(settings_from([flag, raw], {variable: other}), field) == value


def test_flags_win_when_given_as_flag_equals_value() -> None:
    assert settings_from(["--port=8123"], {"PORT": "8001"}).port == 8123


def test_cors_origins_star_allows_any_origin() -> None:
    assert settings_from([], {"CHAT_CORS_ORIGINS": "*"}).cors_origins == ("*",)


def test_cors_origins_tolerate_spaces_around_commas() -> None:
    settings = settings_from([], {"CHAT_CORS_ORIGINS": "https://a.example , https://b.example"})
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_log_level_is_case_insensitive() -> None:
    assert settings_from([], {"LOG_LEVEL": "warning"}).log_level == "WARNING"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]  # assigning to a frozen field is what is tested


BAD_VALUES = [
    ("PORT", "abc"),
    ("PORT", "0"),
    ("PORT", "70000"),
    ("PORT", "-1"),
    ("PORT", "80.5"),
    ("REDIS_URL", "not a url"),
    ("REDIS_URL", "http://127.0.0.1:6379/0"),
    ("REDIS_URL", "redis://127.0.0.1:notaport/0"),
    ("REDIS_URL", "redis://"),
    ("REDIS_URL", "redis+cluster://127.0.0.1:7000/1"),
    ("REDIS_URL", "redis+sentinel://127.0.0.1:26379/0"),
    ("CHAT_HISTORY_SIZE", "0"),
    ("CHAT_HISTORY_SIZE", "-5"),
    ("CHAT_HISTORY_SIZE", "abc"),
    ("LOG_LEVEL", "LOUD"),
    ("CHAT_CORS_ORIGINS", "not-an-origin"),
    ("CHAT_RATE_BURST", "0"),
    ("CHAT_RATE_PER_SECOND", "fast"),
    ("CHAT_MAX_PAYLOAD", "-1"),
]


@pytest.mark.parametrize(("variable", "raw"), BAD_VALUES)
def test_a_bad_variable_raises_a_one_line_config_error_naming_it(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from([], {variable: raw})
    message = str(info.value)
    assert "\n" not in message
    assert variable in message


@pytest.mark.parametrize(("variable", "raw"), BAD_VALUES)
def test_a_bad_flag_raises_a_one_line_config_error_naming_it(variable: str, raw: str) -> None:
    flag = next(o[1] for o in OPTIONS if o[0] == variable)
    with pytest.raises(ConfigError) as info:
        settings_from([flag, raw])
    message = str(info.value)
    assert "\n" not in message
    assert flag in message


def test_an_unknown_flag_raises_a_config_error() -> None:
    with pytest.raises(ConfigError):
        settings_from(["--no-such-flag"])


def test_token_command_takes_the_username_and_a_24_hour_ttl() -> None:
    command = parse_command_line(["token", "alice"], {"CHAT_SECRET": "s"})
    assert command == Command("token", settings_from([], {"CHAT_SECRET": "s"}), "alice", 86400)


def test_token_command_ttl_is_in_seconds() -> None:
    command = parse_command_line(["token", "alice", "--ttl", "60"], {})
    assert command.ttl == 60


def test_token_command_reads_the_secret_flag() -> None:
    command = parse_command_line(["token", "alice", "--secret", "s3"], {"CHAT_SECRET": "env"})
    assert command.settings.secret == "s3"


@pytest.mark.parametrize("ttl", ["0", "-5", "soon"])
def test_token_command_refuses_a_bad_ttl(ttl: str) -> None:
    with pytest.raises(ConfigError):
        parse_command_line(["token", "alice", "--ttl", ttl], {})
