"""Configuration: ``config/mechtrade.yaml`` (see ``config_file``), overridden by the environment.

Every key ``section.key`` can be overridden by ``MECHTRADE_SECTION_KEY``; the root symbols by
``MECHTRADE_ROOTS`` and the explicit contract list by ``MECHTRADE_CONTRACTS`` (comma separated); the
coordinator's rules by ``MECHTRADE_COORDINATOR_RULES`` (a JSON list); the health port also by ``PORT``.
Credentials come only from the environment and are never part of ``repr`` or logs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest import resources

ROLL_RULES = ("gateway", "expiry")
LOCAL_FILE = Path("config") / "mechtrade.yaml"
FILE_HELP = "configuration file (default: ./config/mechtrade.yaml if present, else the packaged default)"


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
    keep_alive_s: float = 10.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    shutdown_deadline_s: float = 20.0
    health_port: int = 8080
    repair_timeframe: str = "1m"
    roll_rule: str = "gateway"
    roll_days: int = 8
    roll_next_days: int = 14
    roll_check_s: float = 300.0


@dataclass(frozen=True)
class Backfill:
    timeframes: tuple[str, ...] = ("1m", "5m", "15m", "1h", "4h", "1d")
    page_limit: int = 20_000


@dataclass(frozen=True)
class Rule:
    """A combination rule: ``confluence`` = starts of one direction on every timeframe within ``window``."""

    name: str
    timeframes: tuple[str, ...]
    window: str
    kind: str = "confluence"
    profile: str = "realtime"
    contracts: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "timeframes": list(self.timeframes), "contracts": list(self.contracts)}


DEFAULT_RULES = (Rule("confluence_1h_15m", ("1h", "15m"), "2 hours"),)
RULE_KINDS = ("confluence",)


@dataclass(frozen=True)
class Coordinator:
    consumer: str = "default"
    poll_s: float = 5.0
    batch_size: int = 500
    query_timeout_s: float = 60.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 30.0
    health_port: int = 8081
    rules: tuple[Rule, ...] = DEFAULT_RULES


def _rules(raw: Any) -> tuple[Rule, ...]:
    """Rules from the YAML list (or a JSON string, from the environment), checked."""
    if isinstance(raw, str):
        raw = yaml.safe_load(raw)
    if not isinstance(raw, list | tuple) or not raw:
        raise ConfigError("coordinator.rules: a non-empty list of rules is needed")
    rules: list[Rule] = []
    for i, item in enumerate(raw):
        if isinstance(item, Rule):
            rules.append(item)
            continue
        key = f"coordinator.rules[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{key}: a mapping is needed, not {item!r}")
        known = {f.name for f in dataclasses.fields(Rule)}
        if unknown := set(item) - known:
            raise ConfigError(f"{key}: unknown key(s) {', '.join(sorted(unknown))}")
        if missing := {"name", "timeframes", "window"} - set(item):
            raise ConfigError(f"{key}: missing {', '.join(sorted(missing))}")
        rule = Rule(
            name=str(item["name"]),
            timeframes=_coerce(item["timeframes"], (), f"{key}.timeframes"),
            window=str(item["window"]),
            kind=str(item.get("kind", "confluence")),
            profile=str(item.get("profile", "realtime")),
            contracts=_coerce(item.get("contracts") or (), (), f"{key}.contracts"),
        )
        if rule.kind not in RULE_KINDS:
            raise ConfigError(f"{key}.kind: {rule.kind!r} is not one of {', '.join(RULE_KINDS)}")
        if len(rule.timeframes) < 2 or len(set(rule.timeframes)) != len(rule.timeframes):
            raise ConfigError(f"{key}.timeframes: two or more distinct timeframes are needed")
        rules.append(rule)
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError("coordinator.rules: rule names must be unique")
    return tuple(rules)


@dataclass(frozen=True)
class Credentials:
    username: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)

    @property
    def present(self) -> bool:
        return bool(self.username and self.api_key)

    def require(self, alternative: str = "") -> None:
        """ConfigError unless both are set; ``alternative`` tells what else the user can do."""
        if not self.present:
            raise ConfigError("PROJECTX_USERNAME and PROJECTX_API_KEY are not set" +
                              (f" ({alternative})" if alternative else ""))


@dataclass(frozen=True)
class Config:
    gateway: Gateway = Gateway()
    contracts: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()
    ingest: Ingest = Ingest()
    backfill: Backfill = Backfill()
    coordinator: Coordinator = Coordinator()
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


def _coordinator(values: dict[str, Any], env: dict[str, str]) -> Coordinator:
    values = dict(values)
    rules = _rules(env.get("MECHTRADE_COORDINATOR_RULES", values.pop("rules", DEFAULT_RULES)))
    env = {k: v for k, v in env.items() if k != "MECHTRADE_COORDINATOR_RULES"}
    section = _section(Coordinator, {**values, "rules": ()}, "coordinator", env)
    return dataclasses.replace(section, rules=rules)


def config_file(path: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """``--config``, else ``MECHTRADE_CONFIG`` (relative to the working directory), else
    ``config/mechtrade.yaml`` of the working directory when there is one, else the packaged default."""
    env = os.environ if env is None else env
    chosen = path or (Path(env["MECHTRADE_CONFIG"]) if env.get("MECHTRADE_CONFIG") else None)
    if chosen is not None:
        if not chosen.is_file():
            raise ConfigError(f"configuration file {chosen.absolute()} does not exist")
        return chosen
    return LOCAL_FILE if LOCAL_FILE.is_file() else resources.default_config()


def load(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    path = config_file(path, env)
    data: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    if unknown := set(data) - {"gateway", "roots", "contracts", "ingest", "backfill", "coordinator"}:
        raise ConfigError(f"unknown section(s) {', '.join(sorted(unknown))} in {path}")
    if "PORT" in env:
        env.setdefault("MECHTRADE_INGEST_HEALTH_PORT", env["PORT"])
        env.setdefault("MECHTRADE_COORDINATOR_HEALTH_PORT", env["PORT"])
    contracts = _coerce(env.get("MECHTRADE_CONTRACTS", data.get("contracts") or ()), (), "contracts")
    roots = _coerce(env.get("MECHTRADE_ROOTS", data.get("roots") or ()), (), "roots")
    ingest = _section(Ingest, data.get("ingest") or {}, "ingest", env)
    if ingest.roll_rule not in ROLL_RULES:
        raise ConfigError(f"ingest.roll_rule: {ingest.roll_rule!r} is not one of {', '.join(ROLL_RULES)}")
    return Config(
        gateway=_section(Gateway, data.get("gateway") or {}, "gateway", env),
        contracts=contracts,
        roots=tuple(r.upper() for r in roots),
        ingest=ingest,
        backfill=_section(Backfill, data.get("backfill") or {}, "backfill", env),
        coordinator=_coordinator(data.get("coordinator") or {}, env),
        credentials=Credentials(env.get("PROJECTX_USERNAME", ""), env.get("PROJECTX_API_KEY", "")),
    )
