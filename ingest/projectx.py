"""Async REST client for the ProjectX Gateway: session tokens, contract search and history bars.

The gateway's REST rules, as documented and observed: every call is a JSON ``POST``; business failures
come back as HTTP 200 with ``success: false`` (raised as :class:`GatewayError`); 401 means log in
again; 429 means wait (``Retry-After`` or backoff); 5xx and timeouts are retried a bounded number of
times. A null or absent list in a successful reply means "unknown", never "empty" (Q14). Prices are
parsed as :class:`~decimal.Decimal` (Q15). Logs name endpoints, statuses and counts, never secrets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from ingest.config import Credentials
from ingest.errors import MechtradeError
from ingest.retry import Backoff

log = logging.getLogger(__name__)

MAX_BARS = 20_000
LOGIN = "Auth/loginKey"
VALIDATE = "Auth/validate"
SEARCH = "Contract/search"
BARS = "History/retrieveBars"

# errorCode names per endpoint (the same integer means different things on different endpoints).
ERROR_NAMES: dict[str, dict[int, str]] = {
    LOGIN: {1: "UserNotFound", 2: "PasswordVerificationFailed", 3: "InvalidCredentials", 4: "AppNotFound",
            5: "AppVerificationFailed", 6: "InvalidDevice", 7: "AgreementsNotSigned", 8: "UnknownError",
            9: "ApiSubscriptionNotFound", 10: "ApiKeyAuthenticationDisabled"},
    VALIDATE: {1: "InvalidSession", 2: "SessionNotFound", 3: "ExpiredToken", 4: "UnknownError"},
    BARS: {1: "ContractNotFound", 2: "UnitInvalid", 3: "UnitNumberInvalid", 4: "LimitInvalid"},
}
LOGIN_HINTS = {3: "check PROJECTX_USERNAME and PROJECTX_API_KEY", 1: "check PROJECTX_USERNAME",
               7: "accept the agreements in the trading platform",
               9: "the account has no API subscription", 10: "API-key login is disabled for this account"}


class GatewayError(MechtradeError):
    """A call failed for good: a business error (``error_code``), an HTTP status, or retries exhausted."""

    def __init__(self, endpoint: str, error_code: int | None, message: str | None = None, *,
                 status: int | None = None) -> None:
        self.endpoint, self.error_code, self.message, self.status = endpoint, error_code, message, status
        parts = []
        if error_code is not None:
            name = ERROR_NAMES.get(endpoint, {}).get(error_code)
            parts.append(f"errorCode {error_code}" + (f" ({name})" if name else ""))
        if status is not None:
            parts.append(f"HTTP {status}")
        if message:
            parts.append(message)
        super().__init__(f"{endpoint} failed: " + (", ".join(parts) or "no reason given"))


class _Retry(Exception):
    """A transient failure: try again after ``delay`` (None: exponential backoff)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.delay = reason, delay


@dataclass(frozen=True)
class Contract:
    id: str
    name: str
    description: str
    tick_size: Decimal
    tick_value: Decimal
    active: bool


@dataclass(frozen=True)
class HistoryBar:
    """One bar of ``retrieveBars``; ``t`` is the bar start (1d bars: 00:00 UTC of the trading date)."""

    t: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


class SlidingLimiter:
    """At most ``count`` acquisitions in any ``window_s`` seconds; callers wait for a free slot."""

    def __init__(self, count: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if count < 1:
            raise ValueError("the history budget must allow at least one request")
        self.count, self.window_s, self.clock = count, window_s, clock
        self.sent: deque[float] = deque()
        self.acquired = 0  # slots taken so far (= requests made under this budget)
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a slot and take it; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self.clock()
                while self.sent and self.sent[0] <= now - self.window_s:
                    self.sent.popleft()
                if len(self.sent) < self.count:
                    self.sent.append(now)
                    self.acquired += 1
                    return waited
                pause = self.sent[0] + self.window_s - now
                waited += pause
                await asyncio.sleep(pause)


def jwt_exp(token: str) -> float | None:
    """The ``exp`` claim (Unix seconds) of a JWT, or None; the token is otherwise treated as opaque."""
    try:
        body = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["exp"]
        return float(exp)
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def iso(dt: datetime) -> str:
    """A request timestamp: ISO-8601 in UTC with offset (naive datetimes are taken as UTC)."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"not a number: {value!r}")
    return Decimal(value)


def parse_bar(item: Any) -> HistoryBar:
    """One ``AggregateBarModel``; raises ValueError when a field is missing or malformed."""
    if not isinstance(item, dict):
        raise ValueError(f"bar is not an object: {item!r}")
    try:
        t = datetime.fromisoformat(item["t"])
        v = item["v"]
        if isinstance(v, bool) or not isinstance(v, (int, Decimal)) or v != int(v):
            raise ValueError(f"volume {v!r}")
        bar = HistoryBar(t if t.tzinfo else t.replace(tzinfo=UTC), _decimal(item["o"]), _decimal(item["h"]),
                         _decimal(item["l"]), _decimal(item["c"]), int(v))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"bar lacks {exc}") from None
    if bar.volume < 0 or bar.low > min(bar.open, bar.close) or bar.high < max(bar.open, bar.close):
        raise ValueError(f"inconsistent bar at {item['t']}: o {bar.open} h {bar.high} l {bar.low} c {bar.close} "
                         f"v {bar.volume}")
    return bar


class ProjectXClient:
    """The gateway's REST API. Use as ``async with ProjectXClient(url, credentials) as px:``.

    ``history_per_30s`` caps ``retrieveBars`` calls per ``history_window_s`` (30 s); ``token_refresh_s``
    is how often the session token is validated (refreshed). The remaining keywords tune retries and
    exist mostly for tests: ``clock`` is wall-clock seconds (token ages and JWT ``exp``).
    """

    def __init__(self, rest_url: str, credentials: Credentials, *, live: bool = False,
                 history_per_30s: int = 30, token_refresh_s: float = 43200.0,
                 history_window_s: float = 30.0, request_timeout_s: float = 30.0, max_attempts: int = 6,
                 unknown_list_attempts: int = 3, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 retry_after_max_s: float = 120.0, clock: Callable[[], float] = time.time) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.credentials, self.live, self.token_refresh_s = credentials, live, token_refresh_s
        self.request_timeout_s, self.max_attempts = request_timeout_s, max_attempts
        self.unknown_list_attempts = unknown_list_attempts
        self.backoff_initial_s, self.backoff_max_s, self.retry_after_max_s = backoff_initial_s, backoff_max_s, \
            retry_after_max_s
        self.clock = clock
        self.history_limiter = SlidingLimiter(history_per_30s, history_window_s)
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_at = 0.0  # clock() when the current token was obtained
        self._token_exp: float | None = None
        self._token_lock = asyncio.Lock()
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self.stats = {"requests": 0, "retries": 0, "logins": 0, "validations": 0, "throttled": 0}

    async def __aenter__(self) -> ProjectXClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.request_timeout_s))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the session token ---

    async def token(self) -> str:
        """A valid session token: log in when there is none, validate (refresh) an old or nearly expired one."""
        async with self._token_lock:
            if self._token is None:
                await self._login()
            elif self._needs_refresh():
                try:
                    await self._validate()
                except GatewayError as exc:
                    log.warning("%s did not refresh the session token (%s); logging in again", VALIDATE, exc)
                    await self._login()
            assert self._token is not None
            return self._token

    def invalidate_token(self) -> None:
        """Forget the token (after a 401 anywhere, the hub upgrade included): the next :meth:`token` logs in."""
        self._token, self._token_exp = None, None

    def _needs_refresh(self) -> bool:
        now = self.clock()
        if now - self._token_at >= self.token_refresh_s:
            return True
        if self._token_exp is None:
            return False
        margin = min(600.0, max(0.0, self._token_exp - self._token_at) / 4)
        return now >= self._token_exp - margin

    def _set_token(self, token: Any, endpoint: str) -> None:
        if not isinstance(token, str) or not token:
            raise GatewayError(endpoint, None, "success without a token")
        self._token, self._token_at, self._token_exp = token, self.clock(), jwt_exp(token)

    async def _login(self) -> None:
        if not self.credentials.present:
            raise GatewayError(LOGIN, None, "no credentials (set PROJECTX_USERNAME and PROJECTX_API_KEY)")
        body = {"userName": self.credentials.username, "apiKey": self.credentials.api_key}
        try:
            data = await self._call(LOGIN, body, auth=False, payload="token")
        except GatewayError as exc:
            hint = LOGIN_HINTS.get(exc.error_code) if exc.error_code is not None else None
            if hint and hint not in str(exc):
                raise GatewayError(LOGIN, exc.error_code, "; ".join(filter(None, [exc.message, hint])),
                                   status=exc.status) from None
            raise
        self.stats["logins"] += 1
        self._set_token(data["token"], LOGIN)
        log.info("%s: logged in (token valid until %s)", LOGIN, self._exp_text())

    async def _validate(self) -> None:
        data = await self._call(VALIDATE, None, auth=True, payload="newToken", relogin=False)
        self.stats["validations"] += 1
        self._set_token(data["newToken"], VALIDATE)
        log.info("%s: session token refreshed (valid until %s)", VALIDATE, self._exp_text())

    def _exp_text(self) -> str:
        return "unknown" if self._token_exp is None else datetime.fromtimestamp(self._token_exp, UTC).isoformat()

    # --- endpoints ---

    async def search_contracts(self, text: str) -> list[Contract]:
        """Contracts whose id, name or description matches ``text`` (at most 20, no paging)."""
        data = await self._call(SEARCH, {"searchText": text, "live": self.live}, payload="contracts", is_list=True)
        out = []
        for item in data["contracts"]:
            try:
                out.append(Contract(str(item["id"]), str(item.get("name") or ""), str(item.get("description") or ""),
                                    _decimal(item["tickSize"]), _decimal(item["tickValue"]),
                                    bool(item.get("activeContract"))))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("%s: skipped a malformed contract (%s)", SEARCH, exc)
        return out

    async def retrieve_bars(self, contract_id: str, unit: int, unit_number: int, start: datetime, end: datetime,
                            *, limit: int = MAX_BARS, include_partial: bool = False) -> list[HistoryBar]:
        """Bars starting in [start, end], ascending by ``t``; the newest ``limit`` when the window holds more."""
        if not 1 <= limit <= MAX_BARS:
            raise ValueError(f"limit must be 1..{MAX_BARS}, not {limit}")
        body = {"contractId": contract_id, "live": self.live, "startTime": iso(start), "endTime": iso(end),
                "unit": unit, "unitNumber": unit_number, "limit": limit, "includePartialBar": include_partial}
        data = await self._call(BARS, body, payload="bars", is_list=True, history=True, parse=_parse_bars)
        bars: list[HistoryBar] = data["bars"]
        log.debug("%s %s unit %d/%d [%s, %s]: %d bars", BARS, contract_id, unit, unit_number, body["startTime"],
                  body["endTime"], len(bars))
        return bars

    # --- the request loop ---

    async def _call(self, endpoint: str, body: Any, *, auth: bool = True, payload: str, is_list: bool = False,
                    history: bool = False, relogin: bool = True,
                    parse: Callable[[Any], Any] | None = None) -> dict[str, Any]:
        """POST ``/api/<endpoint>`` and return the successful envelope (``payload`` checked, parsed)."""
        attempt = unknown = 0
        relogged = not relogin
        while True:
            attempt += 1
            try:
                if history:
                    waited = await self.history_limiter.acquire()
                    if waited > 0.05:
                        log.debug("%s: waited %.2f s for the history budget", endpoint, waited)
                token = await self.token() if auth and endpoint != VALIDATE else self._token
                data = await self._post(endpoint, body, token if auth else None)
                if data is None:  # 401
                    if auth and not relogged:
                        relogged = True
                        log.info("%s: HTTP 401, logging in again", endpoint)
                        self.invalidate_token()
                        continue
                    raise GatewayError(endpoint, None, "unauthorized", status=401)
                if data.get(payload) is None:
                    unknown += 1
                    what = "null" if payload in data else "absent"
                    if unknown >= self.unknown_list_attempts:
                        raise GatewayError(endpoint, None, f"success with {what} {payload!r} {unknown} times")
                    raise _Retry(f"success with {what} {payload!r} (unknown, not empty)")
                if is_list and not isinstance(data[payload], list):
                    raise _Retry(f"{payload!r} is not a list")
                if parse is not None:
                    try:
                        data[payload] = parse(data[payload])
                    except ValueError as exc:
                        raise _Retry(f"malformed {payload!r}: {exc}") from None
                return data
            except _Retry as retry:
                if attempt >= self.max_attempts:
                    raise GatewayError(endpoint, None, f"gave up after {attempt} attempts; last: {retry.reason}")
                delay = self._backoff.delay(attempt) if retry.delay is None else retry.delay
                self.stats["retries"] += 1
                log.warning("%s: %s; retry %d of %d in %.2f s", endpoint, retry.reason, attempt,
                            self.max_attempts - 1, delay)
                if delay > 0:
                    await asyncio.sleep(delay)

    async def _post(self, endpoint: str, body: Any, token: str | None) -> dict[str, Any] | None:
        """One HTTP request: the envelope of a success, None on 401; raises _Retry or GatewayError otherwise."""
        if self._session is None:
            raise RuntimeError("use ProjectXClient as 'async with ProjectXClient(...) as client'")
        headers = {"accept": "text/plain"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.stats["requests"] += 1
        try:
            async with self._session.post(f"{self.rest_url}/api/{endpoint}", json=body, headers=headers) as resp:
                status = resp.status
                text = await resp.text()
                header = resp.headers.get("Retry-After")
        except TimeoutError:
            raise _Retry(f"no reply within {self.request_timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise _Retry(f"connection failed ({type(exc).__name__})") from None
        if status == 401:
            return None
        if status == 429:
            self.stats["throttled"] += 1
            wait = retry_after(header, self.clock())
            if wait is not None:
                wait = min(wait, self.retry_after_max_s)
            raise _Retry("HTTP 429 (rate limited)" + ("" if wait is None else f", Retry-After {header}"), wait)
        if status >= 500 or status == 408:
            raise _Retry(f"HTTP {status}")
        if status != 200:
            raise GatewayError(endpoint, None, _problem(text), status=status)
        try:
            data = json.loads(text, parse_float=Decimal)
        except ValueError:
            raise _Retry("reply is not valid JSON") from None
        if not isinstance(data, dict):
            raise _Retry("reply is not a JSON object")
        if data.get("success") is not True:
            code = data.get("errorCode")
            if code == 0:
                raise _Retry("success false with errorCode 0 (an inconsistent reply)")
            message = data.get("errorMessage")
            raise GatewayError(endpoint, code if isinstance(code, int) else None,
                               message if isinstance(message, str) else None)
        return data


def _problem(text: str) -> str | None:
    """A short description of a 4xx body (ASP.NET problem details carry a title)."""
    try:
        data = json.loads(text)
    except ValueError:
        return text[:200] or None
    if isinstance(data, dict) and isinstance(data.get("title"), str):
        return data["title"]
    return None


def _parse_bars(items: list[Any]) -> list[HistoryBar]:
    return sorted((parse_bar(i) for i in items), key=lambda b: b.t)


__all__ = [
    "MAX_BARS",
    "Contract",
    "GatewayError",
    "HistoryBar",
    "ProjectXClient",
    "SlidingLimiter",
    "jwt_exp",
    "retry_after",
]
