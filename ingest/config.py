"""Configuration: ``config/mechtrade.yaml`` (or ``--config``), overridden by the environment.

Every key ``section.key`` can be overridden by ``MECHTRADE_SECTION_KEY``; the contract list by
``MECHTRADE_CONTRACTS`` (comma separated); the health port also by ``PORT``. Credentials come only
from the environment and are never part of ``repr`` or logs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "mechtrade.yaml"


class ConfigError(ValueError):
    """The configuration is unusable; the message names the key."""


@dataclass(frozen=True)
class Gateway:
    rest_url: str = "https://api.topstepx.com"
    hub_url: str = "https://rtc.topstepx.com/hubs/market"
    live: bool = False
    token_refresh_s: float = 43200.0
    history_requests_per_30s: int = 30


@dataclass(frozen=True)
class Ingest:
    batch_rows: int = 5000
    batch_ms: int = 50
    queue_rows: int = 200_000
    spill_dir: str = "spill"
    stale_feed_s: float = 120.0
    server_silence_s: float = 45.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    shutdown_deadline_s: float = 20.0
    health_port: int = 8080
    repair_timeframe: str = "1m"


@dataclass(frozen=True)
class Backfill:
    timeframes: tuple[str, ...] = ("1m", "5m", "15m", "1h", "4h", "1d")
    page_limit: int = 20_000


@dataclass(frozen=True)
class Credentials:
    username: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)

    @property
    def present(self) -> bool:
        return bool(self.username and self.api_key)


@dataclass(frozen=True)
class Config:
    gateway: Gateway = Gateway()
    contracts: tuple[str, ...] = ()
    ingest: Ingest = Ingest()
    backfill: Backfill = Backfill()
    credentials: Credentials = field(default_factory=Credentials, repr=False)


def _coerce(raw: Any, like: Any, key: str) -> Any:
    try:
        if isinstance(like, bool):
            return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
        if isinstance(like, tuple):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
        return type(like)(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: cannot use {raw!r} ({exc})") from None


def _section(cls: type, values: dict[str, Any], name: str, env: dict[str, str]) -> Any:
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    if unknown := set(values) - known:
        raise ConfigError(f"{name}: unknown key(s) {', '.join(sorted(unknown))}")
    merged = {}
    for f in dataclasses.fields(cls):
        raw = env.get(f"MECHTRADE_{name}_{f.name}".upper(), values.get(f.name, getattr(defaults, f.name)))
        merged[f.name] = _coerce(raw, getattr(defaults, f.name), f"{name}.{f.name}")
    return cls(**merged)


def load(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    path = path or Path(env.get("MECHTRADE_CONFIG", DEFAULT_FILE))
    data: dict[str, Any] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
    elif path != DEFAULT_FILE:
        raise ConfigError(f"configuration file {path} does not exist")
    if unknown := set(data) - {"gateway", "contracts", "ingest", "backfill"}:
        raise ConfigError(f"unknown section(s) {', '.join(sorted(unknown))} in {path}")
    if "PORT" in env:
        env.setdefault("MECHTRADE_INGEST_HEALTH_PORT", env["PORT"])
    contracts = _coerce(env.get("MECHTRADE_CONTRACTS", data.get("contracts") or ()), (), "contracts")
    return Config(
        gateway=_section(Gateway, data.get("gateway") or {}, "gateway", env),
        contracts=contracts,
        ingest=_section(Ingest, data.get("ingest") or {}, "ingest", env),
        backfill=_section(Backfill, data.get("backfill") or {}, "backfill", env),
        credentials=Credentials(env.get("PROJECTX_USERNAME", ""), env.get("PROJECTX_API_KEY", "")),
    )
