"""Configuration: ``config/mechtrade.yaml`` (see ``config_file``), overridden by the environment.

Every key ``section.key`` can be overridden by ``MECHTRADE_SECTION_KEY``; the root symbols by
``MECHTRADE_ROOTS`` and the explicit contract list by ``MECHTRADE_CONTRACTS`` (comma separated); the
coordinator's rules by ``MECHTRADE_COORDINATOR_RULES`` (a JSON list); the health port also by ``PORT``
(which also makes the health server listen on every interface unless ``health_host`` is set).
Credentials come only from the environment and are never part of ``repr`` or logs.

:func:`load` checks everything it can before anything starts: types, ranges, the rules, the port
numbers, ``DATABASE_URL``. Every problem found is one line of the :class:`InvalidConfig` raised.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ingest import resources
from ingest.errors import MechtradeError

log = logging.getLogger(__name__)
ROLL_RULES = ("gateway", "expiry")
# The detector profile wherever none is named; in SQL signals.default_profile() (a test keeps them equal).
DEFAULT_PROFILE = "realtime"
LOCAL_FILE = Path("config") / "mechtrade.yaml"
FILE_HELP = "configuration file (default: ./config/mechtrade.yaml if present, else the packaged default)"


class ConfigError(MechtradeError):
    """The configuration is unusable; the message names the key."""


class InvalidConfig(ConfigError):
    """What :func:`load` found wrong: one line per problem (the CLI exits with 1)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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
    health_host: str = "127.0.0.1"
    roll_rule: str = "gateway"
    roll_days: int = 8
    roll_next_days: int = 14
    roll_check_s: float = 300.0
    max_message_bytes: int = 16 * 1024 * 1024
    max_future_s: float = 300.0
    max_age_s: float = 0.0
    min_price: Decimal = Decimal("0.000001")
    max_price: Decimal = Decimal("10000000")
    price_bands: tuple[tuple[str, Decimal, Decimal], ...] = ()  # (contract id or root, low, high)


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
    profile: str = DEFAULT_PROFILE
    contracts: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "timeframes": list(self.timeframes), "contracts": list(self.contracts)}


# Keys no longer read: a file that still has one loads, with a warning saying why it can go.
RETIRED_KEYS = {
    "ingest.repair_timeframe": "feed gaps are repaired in every timeframe of backfill.timeframes",
}
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
    health_host: str = "127.0.0.1"
    rules: tuple[Rule, ...] = DEFAULT_RULES


def _rules(raw: Any) -> tuple[Rule, ...]:
    """Rules from the YAML list (or a JSON string, from the environment), checked."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"coordinator.rules (MECHTRADE_COORDINATOR_RULES): not valid JSON ({exc})") from None
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
            profile=str(item.get("profile", DEFAULT_PROFILE)),
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
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("not true or false")
            return text in ("1", "true", "yes", "on")
        if isinstance(like, tuple):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if isinstance(like, Decimal):
            value = Decimal(str(raw))
            if not value.is_finite():
                raise ValueError("not a finite number")
            return value
        if isinstance(like, int) and isinstance(raw, float) and not raw.is_integer():
            raise ValueError("not a whole number")
        if isinstance(like, int | float) and isinstance(raw, bool | list | dict):
            raise TypeError(f"a number is needed, not {type(raw).__name__}")
        if isinstance(like, str) and isinstance(raw, list | dict):
            raise TypeError(f"a text is needed, not {type(raw).__name__}")
        value = type(like)(raw)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise ConfigError(f"{key}: cannot use {raw!r} ({exc or 'not a number'})") from None


def _price_bands(raw: Any, key: str) -> tuple[tuple[str, Decimal, Decimal], ...]:
    """``{MES: [1000, 20000], CON.F.US.MNQ.Z25: [5000, 50000]}`` (YAML, or JSON from the environment)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{key}: not valid JSON ({exc})") from None
    if isinstance(raw, tuple):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: a mapping of contract or root to [low, high] is needed, not {raw!r:.60}")
    bands = []
    for name, band in raw.items():
        if not isinstance(band, list | tuple) or len(band) != 2:
            raise ConfigError(f"{key}.{name}: [low, high] is needed, not {band!r:.60}")
        low, high = (_coerce(v, Decimal(0), f"{key}.{name}") for v in band)
        if not 0 < low < high:
            raise ConfigError(f"{key}.{name}: 0 < low < high is needed, not [{low}, {high}]")
        bands.append((str(name), low, high))
    return tuple(bands)


def _section(cls: type, values: Any, name: str, env: dict[str, str], problems: list[str]) -> Any:
    defaults = cls()
    if not isinstance(values, dict):
        problems.append(f"{name}: a mapping of keys is needed, not {type(values).__name__} {values!r:.60}")
        values = {}
    known = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(k for k in values if f"{name}.{k}" in RETIRED_KEYS):
        log.warning("%s.%s is no longer read (%s): delete it", name, key, RETIRED_KEYS[f"{name}.{key}"])
        known.add(key)
    if unknown := set(values) - known:
        problems.append(f"{name}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    merged = {}
    for f in dataclasses.fields(cls):
        raw = env.get(f"MECHTRADE_{name}_{f.name}".upper(), values.get(f.name, getattr(defaults, f.name)))
        try:
            if f.name == "price_bands":
                merged[f.name] = _price_bands(raw, f"{name}.{f.name}")
            elif f.name == "rules":
                merged[f.name] = _rules(raw)
            else:
                merged[f.name] = _coerce(raw, getattr(defaults, f.name), f"{name}.{f.name}")
        except ConfigError as exc:
            problems.append(str(exc))
            merged[f.name] = getattr(defaults, f.name)
    return cls(**merged)


def _check(cfg: Config, problems: list[str]) -> None:
    """Ranges and relations between keys, one line per violation."""
    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            problems.append(f"{key}: {what}")

    g, i, b, c = cfg.gateway, cfg.ingest, cfg.backfill, cfg.coordinator
    for key, url in (("gateway.rest_url", g.rest_url), ("gateway.hub_url", g.hub_url)):
        parts = urlsplit(url)
        need(parts.scheme in ("http", "https", "ws", "wss") and bool(parts.hostname), key,
             f"an http(s) URL is needed, not {url!r}")
    need(g.token_refresh_s > 0, "gateway.token_refresh_s", "must be > 0")
    need(g.history_requests_per_30s >= 1, "gateway.history_requests_per_30s", "must be >= 1")
    need(i.batch_rows >= 1, "ingest.batch_rows", f"must be >= 1, not {i.batch_rows}")
    need(i.batch_ms >= 0, "ingest.batch_ms", f"must be >= 0, not {i.batch_ms}")
    need(i.queue_rows >= max(i.batch_rows, 1), "ingest.queue_rows",
         f"must be >= ingest.batch_rows ({i.batch_rows}), not {i.queue_rows}")
    need(bool(i.spill_dir.strip()), "ingest.spill_dir", "must name a directory")
    for key, value in (("ingest.stale_feed_s", i.stale_feed_s), ("ingest.server_silence_s", i.server_silence_s),
                       ("ingest.reconnect_initial_s", i.reconnect_initial_s),
                       ("ingest.shutdown_deadline_s", i.shutdown_deadline_s), ("ingest.max_future_s", i.max_future_s),
                       ("coordinator.poll_s", c.poll_s), ("coordinator.query_timeout_s", c.query_timeout_s),
                       ("coordinator.reconnect_initial_s", c.reconnect_initial_s)):
        need(value > 0, key, f"must be > 0, not {value}")
    need(i.reconnect_max_s >= i.reconnect_initial_s, "ingest.reconnect_max_s", "must be >= reconnect_initial_s")
    need(c.reconnect_max_s >= c.reconnect_initial_s, "coordinator.reconnect_max_s", "must be >= reconnect_initial_s")
    need(i.max_age_s >= 0, "ingest.max_age_s", "must be >= 0 (0: no limit)")
    need(i.roll_rule in ROLL_RULES, "ingest.roll_rule", f"{i.roll_rule!r} is not one of {', '.join(ROLL_RULES)}")
    need(i.roll_days >= 0 and i.roll_next_days >= i.roll_days, "ingest.roll_next_days",
         "0 <= roll_days <= roll_next_days is needed")
    need(i.roll_check_s > 0, "ingest.roll_check_s", f"must be > 0, not {i.roll_check_s}")
    need(i.keep_alive_s >= 0, "ingest.keep_alive_s", f"must be >= 0 (0: off), not {i.keep_alive_s}")
    need(i.max_message_bytes >= 1024, "ingest.max_message_bytes", "must be >= 1024")
    need(0 < i.min_price < i.max_price, "ingest.min_price", "0 < min_price < max_price is needed")
    need(1 <= b.page_limit <= 20_000, "backfill.page_limit", f"must be 1..20000, not {b.page_limit}")
    need(c.batch_size >= 1, "coordinator.batch_size", f"must be >= 1, not {c.batch_size}")
    need(bool(c.consumer.strip()), "coordinator.consumer", "must not be empty")
    for key, port in (("ingest.health_port", i.health_port), ("coordinator.health_port", c.health_port)):
        need(0 <= port <= 65535, key, f"{port} is not a TCP port (0-65535; PORT sets both)")


def _check_database_url(url: str, problems: list[str]) -> None:
    """DATABASE_URL must parse; what it says is only known when connecting."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError("it must start with postgresql://")
    except ValueError as exc:
        problems.append(f"DATABASE_URL: not a PostgreSQL connection URL ({exc})")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidConfig([f"{path}: not valid YAML{where}: {problem}"]) from None
    except OSError as exc:
        raise InvalidConfig([f"{path}: cannot read it ({exc.strerror})"]) from None
    if not isinstance(data, dict):
        raise InvalidConfig([f"{path}: a mapping of sections is needed at the top, not {type(data).__name__}"])
    return data


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
    """The configuration, checked; :class:`InvalidConfig` lists every problem found."""
    env = dict(os.environ if env is None else env)
    try:
        path = config_file(path, env)
    except ConfigError as exc:
        raise InvalidConfig([str(exc)]) from None
    data = _read_yaml(path)
    problems: list[str] = []
    if unknown := set(data) - {"gateway", "roots", "contracts", "ingest", "backfill", "coordinator"}:
        problems.append(f"unknown section(s) {', '.join(sorted(map(str, unknown)))} in {path}")
    if "PORT" in env:
        for section in ("ingest", "coordinator"):
            env.setdefault(f"MECHTRADE_{section.upper()}_HEALTH_PORT", env["PORT"])
            if "health_host" not in (data.get(section) or {}):  # the platform routes from outside
                env.setdefault(f"MECHTRADE_{section.upper()}_HEALTH_HOST", "0.0.0.0")
    contracts: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()
    try:
        contracts = _coerce(env.get("MECHTRADE_CONTRACTS", data.get("contracts") or ()), (), "contracts")
        roots = _coerce(env.get("MECHTRADE_ROOTS", data.get("roots") or ()), (), "roots")
    except ConfigError as exc:
        problems.append(str(exc))
    cfg = Config(
        gateway=_section(Gateway, data.get("gateway") or {}, "gateway", env, problems),
        contracts=contracts,
        roots=tuple(r.upper() for r in roots),
        ingest=_section(Ingest, data.get("ingest") or {}, "ingest", env, problems),
        backfill=_section(Backfill, data.get("backfill") or {}, "backfill", env, problems),
        coordinator=_section(Coordinator, data.get("coordinator") or {}, "coordinator", env, problems),
        credentials=Credentials(env.get("PROJECTX_USERNAME", ""), env.get("PROJECTX_API_KEY", "")),
    )
    _check(cfg, problems)
    if env.get("DATABASE_URL"):
        _check_database_url(env["DATABASE_URL"], problems)
    if problems:
        raise InvalidConfig(problems)
    return cfg
