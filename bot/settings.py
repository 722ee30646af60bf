"""Settings: a TOML file, overridden by `DRIPCOURSE_<SECTION>_<KEY>` environment variables.

Secrets (tokens, the database URL) are `SecretStr` and are never echoed: an invalid secret is reported
by its name only. `load_settings` raises `SettingsError` whose message is one line naming the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ENV_PREFIX = "DRIPCOURSE_"
SECRET_ENV = ("DRIPCOURSE_TELEGRAM_TOKEN", "DRIPCOURSE_DISCORD_TOKEN", "DRIPCOURSE_DATABASE_URL")


class SettingsError(Exception):
    """A bad setting; the message is one line: key, value (unless secret) and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: SecretStr = SecretStr("sqlite:///dripcourse.db")
    """SQLAlchemy URL. SQLite (WAL) for one process; postgresql+psycopg://... to scale out."""
    echo: bool = False
    sqlite_cache_mb: int = Field(default=64, ge=2, le=1024)
    """SQLite's page cache per connection, in MB: filled only as pages are read."""


class CoursesSettings(_Section):
    path: Path = Path("courses")


class TelegramSettings(_Section):
    token: SecretStr | None = None
    mode: Literal["polling", "webhook"] = "polling"
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    admins: list[str] = []
    messages_per_second: float = Field(default=30.0, gt=0, le=1000)
    per_chat_per_second: float = Field(default=1.0, gt=0, le=30)
    per_group_per_minute: float = Field(default=20.0, gt=0, le=600)
    allow_paid_broadcast: bool = False
    paid_broadcast_per_second: float = Field(default=1000.0, gt=0, le=1000)
    receive_updates: bool = True
    """False for extra `dripcourse run` workers on one token: Telegram lets one process poll or hook."""
    local_bot_api: bool = False
    """True when `api_base_url` points at a self-hosted Bot API server (uploads up to 2000 MB)."""


class DiscordSettings(_Section):
    token: SecretStr | None = None
    guild_ids: list[int] = []
    sync_global: bool = False
    shards: int | None = Field(default=None, ge=1, le=1024)
    admins: list[str] = []
    admin_role: str = ""
    api_base_url: str = ""
    """Empty for discord.com; tests point it at a fake REST server on loopback."""
    requests_per_second: float = Field(default=40.0, gt=0, lt=50)
    dm_opens_per_minute: float = Field(default=10.0, gt=0, le=60)
    fallback_channel_id: int | None = None
    media_base_url: str = ""
    """Public URL prefix for media too large to attach; empty to skip such files with a note."""


class SchedulerSettings(_Section):
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=60)
    release_batch: int = Field(default=20_000, ge=1, le=100_000)
    time_offset_seconds: float = 0.0
    """Shift the bot's clock (end-to-end tests and previews of a real process). 0 in production."""
    progress_edit_seconds: float = Field(default=4.0, ge=1, le=60)
    """Least time between two edits of a broadcast's status message in chat (a broadcast sent now)."""
    progress_local_edit_seconds: float = Field(default=60.0, ge=10, le=3600)
    """The same for a broadcast sent at each learner's own time, which can take a day."""


class SenderSettings(_Section):
    in_flight: int = Field(default=32, ge=1, le=1000)
    """Deliveries one process may hold at once: the most a kill -9 can ever duplicate."""
    lease_seconds: float = Field(default=60.0, ge=5, le=60)
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base_seconds: float = Field(default=1.0, gt=0, le=60)
    backoff_max_seconds: float = Field(default=300.0, gt=0, le=3600)
    resend_ambiguous: bool = True
    """After a timeout that may have reached the platform: resend (risking a duplicate) or not."""
    worker_id: str = ""
    """Name of this process among several on one PostgreSQL; empty: host name and pid."""


class MetricsSettings(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=1, le=65535)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = False

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    courses: CoursesSettings = CoursesSettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    sender: SenderSettings = SenderSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()

    def secret_values(self) -> list[str]:
        """Every secret's plain value, for scrubbing logs and checking that none leaks."""
        values = [
            self.database.url.get_secret_value() if "@" in self.database.url.get_secret_value() else "",
            self.telegram.token.get_secret_value() if self.telegram.token else "",
            self.discord.token.get_secret_value() if self.discord.token else "",
            self.telegram.webhook_secret.get_secret_value() if self.telegram.webhook_secret else "",
        ]
        return [value for value in values if value]


_SECRET_KEYS = {("telegram", "token"), ("discord", "token"), ("telegram", "webhook_secret")}


def default_config_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("DRIPCOURSE_CONFIG", "config.toml"))


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (missing is fine: defaults apply), overlay the environment, validate."""
    env = dict(os.environ if environ is None else environ)
    explicit = path is not None or "DRIPCOURSE_CONFIG" in env
    config_path = path if path is not None else default_config_path(env)
    raw: dict[str, Any] = {}
    if config_path.exists():
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"{config_path}: {error}") from None
        except OSError as error:
            raise SettingsError(f"{config_path}: cannot read: {error.strerror}") from None
    elif explicit:
        raise SettingsError(f"config file {config_path} does not exist")
    for section, key in _SECRET_KEYS:
        if isinstance(raw.get(section), dict) and key in raw[section]:
            env_name = f"{ENV_PREFIX}{section}_{key}".upper()
            raise SettingsError(
                f"{config_path}: {section}.{key} is a secret: set it in the environment as {env_name}"
            )
    sources: dict[tuple[str, str], str] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == "DRIPCOURSE_CONFIG":
            continue
        target = _env_target(name)
        if target is None:
            if name.startswith("DRIPCOURSE_TEST_"):
                continue
            raise SettingsError(f"{name}: no such setting (see config.example.toml)")
        section, key = target
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise SettingsError(f"{config_path}: [{section}] must be a table")
        raw[section][key] = _coerce_env(section, key, value)
        sources[(section, key)] = name
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        raise SettingsError(_one_line(error, raw, sources, config_path)) from None


def _env_target(name: str) -> tuple[str, str] | None:
    rest = name[len(ENV_PREFIX) :].lower()
    for section, field in Settings.model_fields.items():
        if rest.startswith(section + "_"):
            key = rest[len(section) + 1 :]
            model = field.annotation
            if isinstance(model, type) and issubclass(model, BaseModel) and key in model.model_fields:
                return section, key
    return None


def _coerce_env(section: str, key: str, value: str) -> Any:
    model = Settings.model_fields[section].annotation
    assert isinstance(model, type)
    assert issubclass(model, BaseModel)
    annotation = model.model_fields[key].annotation
    if get_origin(annotation) is list:
        return [item.strip() for item in value.split(",") if item.strip()]
    if value == "" and type(None) in get_args(annotation):
        return None
    return value


def _one_line(
    error: ValidationError,
    raw: dict[str, Any],
    sources: dict[tuple[str, str], str],
    config_path: Path,
) -> str:
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    key = ".".join(location)
    section, field = ([*location, "", ""])[:2]
    where = sources.get((section, field), str(config_path))
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(section) if len(location) > 1 else sorted(Settings.model_fields)
        return f"{where}: unknown setting {key}; allowed here: {', '.join(allowed)}"
    secret = (section, field) in _SECRET_KEYS or key == "database.url"
    value = "<hidden>" if secret else repr(first.get("input"))
    return f"{where}: {key} = {value}: {first['msg']}"


def _allowed_keys(section: str) -> list[str]:
    model = Settings.model_fields[section].annotation if section in Settings.model_fields else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return sorted(Settings.model_fields)
