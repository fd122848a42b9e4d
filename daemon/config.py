"""The configuration: `config.toml` loaded into validated models.

Every default lives in the shipped `config.toml`, not here: these models say what a key may hold and
how keys relate, so a typo or an impossible window is reported with its key path instead of being
silently ignored. Secrets never live in the file; a key like `password_env` names the environment
variable (or systemd credential) that holds the secret, and `secret()` reads it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from daemon.countries import is_country_code
from messages.kinds import ALL_KINDS

# Message kinds the policy can emit; `approval_required` and template lookups use these names.
STAGE_KINDS = ("tracking_update", "reassurance", "extension", "refund_offer")

CONFIG_ENV = "PARCELWATCH_CONFIG"
SYSTEM_CONFIG = Path("/etc/parcelwatch/config.toml")


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must never fall back to a default unnoticed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DaemonSection(_Strict):
    database_url: str = Field(min_length=1)
    log_format: Literal["text", "json"]
    # "debug" adds a line per decided log row and other detail; "info" is what operators read.
    log_level: Literal["info", "debug"] = "info"
    poll_interval_seconds: float = Field(gt=0)
    decide_interval_seconds: float = Field(gt=0)
    send_interval_seconds: float = Field(gt=0)
    housekeeping_interval_seconds: float = Field(gt=0)
    lease_seconds: float = Field(gt=0)
    stop_timeout_seconds: float = Field(gt=0)
    # Worker processes for a decide pass over many orders; 0: one per CPU, 1: never more.
    decide_processes: int = Field(default=0, ge=0)


class StoreSection(_Strict):
    name: str = Field(min_length=1)
    from_address: str = Field(min_length=3)
    reply_to: str = ""
    signature: str = ""
    default_locale: str
    unsubscribe_url: str = ""
    staff_email: str = ""
    review_url: str = ""
    missing_template: Literal["hold", "fallback"]
    template_dir: str = ""
    # Order sources (as imported) whose marketplace gives the buyer a protection period the seller
    # can extend. Other orders get no extension and no word about protection.
    protection_sources: tuple[str, ...] = ()

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return check_locale(value)

    @field_validator("from_address", "reply_to", "staff_email")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and ("@" not in value or any(c in value for c in "\r\n")):
            raise ValueError(f"{value!r} is not an email address")
        return value


class SmtpSection(_Strict):
    host: str = Field(min_length=1)
    port: int = Field(gt=0, lt=65536)
    tls: Literal["none", "starttls", "implicit"]
    username: str = ""
    password_env: str = ""
    timeout_seconds: float = Field(gt=0)
    data_timeout_seconds: float = Field(gt=0)
    max_per_minute: int = Field(gt=0)
    messages_per_connection: int = Field(default=100, gt=0)


class WebhookSection(_Strict):
    """Messages for orders whose channel is `webhook` (a chat tool or a marketplace messenger)."""

    url: str = ""
    secret_env: str = ""
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class CarrierSection(_Strict):
    enabled: bool = True
    api_key_env: str = ""
    secret_env: str = ""
    base_url: str = ""
    rate_limit_per_second: float | None = Field(default=None, gt=0)  # see daemon.wiring.shared_rate
    daily_limit: int | None = Field(default=None, gt=0)


class RoutingSection(_Strict):
    """Which tracking API watches which parcels, where the number's format is not the best guide."""

    by_country: dict[str, str] = Field(default_factory=dict)  # destination ISO2 -> adapter name
    by_carrier: dict[str, str] = Field(default_factory=dict)  # imported carrier name -> adapter


class QuietHours(_Strict):
    start: time
    end: time


class Stages(_Strict):
    """Days after shipment at which each stage message becomes due; omit a stage to disable it."""

    tracking_update: int | None = Field(default=None, ge=0)
    reassurance: int | None = Field(default=None, ge=0)
    extension: int | None = Field(default=None, ge=0)
    refund_offer: int | None = Field(default=None, ge=0)

    @field_validator("*", mode="before")
    @classmethod
    def _false_disables(cls, value: object) -> object:
        # TOML has no null; `reassurance = false` in a country section switches that stage off.
        return None if value is False else value


class TrackingRules(_Strict):
    """Thresholds in days for the event rules that do not come from a stage."""

    not_found_alert_days: int = Field(gt=0)
    not_found_refund_days: int = Field(gt=0)
    stalled_days: int = Field(gt=0)
    stalled_action: Literal["none", "reassurance", "refund_offer"]
    pickup_reminder_days: int = Field(gt=0)
    review_request_days: int = Field(gt=0)


class Budget(_Strict):
    """At most `messages` buyer messages per order in any `days` days; messages that ask the buyer
    to act, or keep a promised date, are not counted and never wait."""

    messages: int = Field(gt=0, le=100)
    days: int = Field(gt=0, le=365)


class CountryPolicy(_Strict):
    """A country's section as written: every key optional, anything unset comes from the default."""

    promised_days: int | None = Field(default=None, gt=0)
    extension_days: int | None = Field(default=None, gt=0)
    locale: str | None = None
    timezone: str | None = None
    quiet_hours: QuietHours | None = None
    approval_required: tuple[str, ...] | None = None
    customs_variant: str | None = None
    budget: Budget | None = None
    stages: Stages | None = None
    tracking: dict[str, Any] | None = None


class Window(_Strict):
    """One destination's complete patience window after the default has been merged in."""

    country: str = "*"
    promised_days: int = Field(gt=0)
    extension_days: int = Field(gt=0)
    locale: str
    timezone: str
    quiet_hours: QuietHours
    approval_required: tuple[str, ...]
    customs_variant: str
    budget: Budget
    stages: Stages
    tracking: TrackingRules

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return check_locale(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (
            ZoneInfoNotFoundError,
            ValueError,
            OSError,
        ):  # OSError: "America" (a folder), too long
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @field_validator("approval_required")
    @classmethod
    def _kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for kind in value:
            if kind not in ALL_KINDS:
                raise ValueError(f"{kind!r} is not a message kind ({', '.join(sorted(ALL_KINDS))})")
        return value

    @model_validator(mode="after")
    def _stage_order(self) -> Window:
        problems = list(stage_order_problems(self.stages, self.promised_days))
        if self.tracking.not_found_refund_days <= self.tracking.not_found_alert_days:
            problems.append(
                (
                    "tracking.not_found_refund_days",
                    f"{self.tracking.not_found_refund_days} must be after not_found_alert_days "
                    f"({self.tracking.not_found_alert_days})",
                )
            )
        if problems:
            raise _KeyProblems(problems)
        return self

    def stage_day(self, kind: str) -> int | None:
        value: int | None = getattr(self.stages, kind)
        return value


class _KeyProblems(ValueError):
    """Several ordering problems at once, each with the key it concerns."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key}: {msg}" for key, msg in problems))
        self.problems = problems


def stage_order_problems(stages: Stages, promised_days: int) -> Iterator[tuple[str, str]]:
    """Stages must come in the order a buyer would meet them: update, reassure, refund offer."""
    order = ("tracking_update", "reassurance", "refund_offer")
    previous: tuple[str, int] | None = None
    for kind in order:
        day = getattr(stages, kind)
        if day is None:
            continue
        if previous is not None and day <= previous[1]:
            yield f"stages.{kind}", f"{day} must be after {previous[0]} ({previous[1]})"
        previous = (kind, day)
    if stages.extension is not None:
        if stages.extension >= promised_days:
            yield (
                "stages.extension",
                f"{stages.extension} must be before promised_days ({promised_days}): "
                "protection can only be extended while it runs",
            )
        if stages.tracking_update is not None and stages.extension <= stages.tracking_update:
            yield (
                "stages.extension",
                f"{stages.extension} must be after tracking_update ({stages.tracking_update})",
            )


class PolicySection(_Strict):
    default: Window
    countries: dict[str, CountryPolicy] = Field(default_factory=dict)


class Config(_Strict):
    daemon: DaemonSection
    store: StoreSection
    smtp: SmtpSection
    webhook: WebhookSection = Field(default_factory=WebhookSection)
    carriers: dict[str, CarrierSection] = Field(default_factory=dict)
    routing: RoutingSection = Field(default_factory=RoutingSection)
    policy: PolicySection

    @model_validator(mode="after")
    def _known_adapters(self) -> Config:
        from carriers.registry import ADAPTERS

        problems = [
            (
                f"carriers.{name}",
                f"no tracking API named {name!r} (known: {', '.join(sorted(ADAPTERS))})",
            )
            for name in self.carriers
            if name not in ADAPTERS
        ]
        for table in ("by_country", "by_carrier"):
            for key, name in getattr(self.routing, table).items():
                if name not in ADAPTERS:
                    problems.append((f"routing.{table}.{key}", f"no tracking API named {name!r}"))
        if problems:
            raise _KeyProblems(problems)
        return self

    _windows: dict[str, Window] = PrivateAttr(default_factory=dict)

    def window(self, country: str) -> Window:
        """The patience window for a destination: its own section over the default."""
        window = self._windows.get(country)
        if window is None:
            own = self.policy.countries.get(country)
            window = merge_window(self.policy.default, country, own)
            self._windows[country] = window
        return window


def merge_window(default: Window, country: str, own: CountryPolicy | None) -> Window:
    """Lay a country's keys over the default; nested `stages` and `tracking` merge key by key."""
    data = default.model_dump()
    data["country"] = country
    if own is not None:
        for key, value in own.model_dump(exclude_unset=True).items():
            if key in ("stages", "tracking") and isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
    return Window.model_validate(data)


def check_locale(value: str) -> str:
    """A BCP 47 tag Babel knows (`pt-BR`, `ru`, `en`); kept as written."""
    try:
        Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"{value!r} is not a known locale") from None
    return value


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file: the dotted key and the rule broken."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(Exception):
    """The config could not be loaded; `problems` lists every error found, not just the first."""

    def __init__(self, path: Path, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s)\n{lines}")


def find_config(explicit: Path | None) -> Path:
    """`--config`, then `$PARCELWATCH_CONFIG`, then `./config.toml`, then the system file."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    local = Path("config.toml")
    if local.exists():
        return local
    return SYSTEM_CONFIG


def load_config(path: Path) -> Config:
    """Read and validate a config file, raising ConfigError with every problem found."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem("(file)", f"cannot read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigProblem("(syntax)", str(exc))]) from None
    return parse_config(path, data)


def parse_config(path: Path, data: Mapping[str, Any]) -> Config:
    """Validate parsed TOML and report every problem, including each country's merged window."""
    problems: list[ConfigProblem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, ()))
    problems.extend(_country_problems(data.get("policy")))
    if problems or config is None:
        raise ConfigError(path, problems)
    return config


def _country_problems(policy: object) -> list[ConfigProblem]:
    """Check each country section merged over the default; shape errors were reported already."""
    if not isinstance(policy, Mapping) or not isinstance(policy.get("countries"), Mapping):
        return []
    try:
        default = Window.model_validate(policy.get("default"))
    except ValidationError:
        return []  # reported by the whole-file pass
    problems: list[ConfigProblem] = []
    for code, raw in policy["countries"].items():
        prefix = ("policy", "countries", code)
        if not is_country_code(code):
            problems.append(
                ConfigProblem(_dotted(prefix), "not an ISO 3166-1 alpha-2 country code (e.g. BR)")
            )
            continue
        try:
            own = CountryPolicy.model_validate(raw)
            merge_window(default, code, own)
        except ValidationError as exc:
            if exc.title == Window.__name__:
                problems.extend(_problems(exc, prefix))
    return problems


def _problems(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _KeyProblems):
            for key, msg in cause.problems:
                problems.append(ConfigProblem(_dotted(loc + tuple(key.split("."))), msg))
            continue
        message = str(cause) if cause is not None else error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the shipped config.toml)"
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append(ConfigProblem(_dotted(loc), message))
    return problems


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def secret(env_name: str) -> str | None:
    """Read a secret by the name of its environment variable or systemd credential.

    systemd's `LoadCredential=` puts files in `$CREDENTIALS_DIRECTORY`; a credential file of the same
    name wins over the environment so that a hardened unit need not export secrets at all.
    """
    if not env_name:
        return None
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidate = Path(cred_dir) / env_name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8").strip()
    return os.environ.get(env_name)
