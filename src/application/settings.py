"""The service's settings, from the environment (contract section 2)."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fieldledger.application.event_store import store_environment
from fieldledger.application.personal_data import MasterKey, resolve_master_key
from fieldledger.domain.facts import parse_interval
from fieldledger.domain.policy import Policy, PolicyError, builtin_policy, parse_policy
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDLEDGER_", frozen=True)

    database_url: str = "sqlite:///./fieldledger.db"
    timezone: str = "Asia/Shanghai"
    policy: Path | None = Field(default=None, description="path to a policy TOML file")
    #: Seconds between background SLA sweeps in `serve`; 0 turns them off.
    sweep_interval: float = 60.0
    #: Seconds between polls of the event store by projection runners.
    poll_interval: float = 0.2
    #: Run projectors (and sweeps) in the background of `serve`; tests turn it off
    #: and catch up explicitly.
    background: bool = True
    #: Events per projection transaction of a live view's catch-up.
    projection_batch_size: int = Field(default=500, ge=1, le=100_000)
    #: Events per transaction of a rebuild (and of a scratch build: `as_of` by
    #: replay, what-if): larger, as an order's rows are then rewritten fewer
    #: times; memory stays bounded by one batch.
    rebuild_batch_size: int = Field(default=2000, ge=1, le=100_000)
    #: An event recorded more than this many minutes after it occurred is
    #: flagged `late` in the audit search (docs/audit.md).
    late_report_minutes: float = Field(default=5.0, ge=0)
    #: Where notifications are POSTed (contract §11.6); none: not delivered, only
    #: listed by `GET /notifications`.
    webhook_url: str | None = None
    #: Seconds one delivery attempt may take (connect, send, answer).
    webhook_timeout: float = Field(default=5.0, gt=0, le=300)

    @field_validator("webhook_url")
    @classmethod
    def http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    #: The master key customers' data keys are wrapped under (docs/privacy.md):
    #: 32 bytes in base64, or a file holding it.
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    #: How far a command's `occurred_at` may lie before the time of recording:
    #: `7d`, `400d`, `12h`, ...; `none` lifts the bound (importing history).
    max_backdate: str = "7d"

    @field_validator("max_backdate")
    @classmethod
    def an_interval(cls, value: str) -> str:
        parse_interval(value)  # raises ValueError with the reason
        return value

    @property
    def backdate_bound(self) -> timedelta | None:
        return parse_interval(self.max_backdate)

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @cached_property
    def resolved_master_key(self) -> MasterKey:
        """The master key (raises MasterKeyError with the one-line reason when
        there is none: PostgreSQL without one, an unreadable file, ...)."""
        return resolve_master_key(
            store_environment(self.database_url),
            None if self.master_key is None else self.master_key.get_secret_value(),
            self.master_key_file,
        )

    @cached_property
    def loaded_policy(self) -> Policy:
        """The policy in force, parsed and validated once."""
        if self.policy is None:
            return builtin_policy()
        try:
            text = self.policy.read_text("utf-8")
        except OSError as e:
            raise PolicyError(f"cannot read policy file {self.policy}: {e.strerror}") from None
        return parse_policy(text)
