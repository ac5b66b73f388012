"""The REST half of the fake: case-insensitive POST routes, the ProjectX envelope, rate limits and REST faults."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ingest.fake_gateway.bars import bar_json
from ingest.fake_gateway.tape import TICKS
from ingest.fake_gateway.tokens import session_of, user_of

if TYPE_CHECKING:
    from ingest.fake_gateway.server import FakeGateway

JSON = "application/json"
MAX_BARS = 20_000
LIST_FIELD = {"account/search": "accounts", "contract/search": "contracts", "contract/available": "contracts",
              "history/retrievebars": "bars", "contract/searchbyid": "contract"}
REST_FAULT_KINDS = ("429", "500", "502", "503", "hang", "slow", "empty", "null_list", "absent_list",
                    "malformed_json", "false_code0", "short", "error")


@dataclass
class RateLimit:
    """``count`` requests per sliding ``window_s`` seconds."""

    count: int
    window_s: float


@dataclass
class RestFault:
    """A scripted REST misbehaviour for the next ``count`` matching calls (fault F18)."""

    kind: str
    endpoint: str = "history/retrievebars"  # lower case path after /api/, or "*"
    count: int = 1
    retry_after: str | None = "seconds"  # for 429: "seconds", "date" or None
    seconds: float | None = None  # hang (None = until the server stops) or slow delay
    keep: int = 1  # "short": bars kept
    code: int = 1  # "error": errorCode returned with success:false


@dataclass
class RestCall:
    """One request as the fake saw it."""

    endpoint: str
    path: str
    body: Any
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


class SlidingWindow:
    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], deque[float]] = {}

    def admit(self, key: tuple[str, str], limit: RateLimit) -> float:
        """0 if admitted (and counted), else the seconds until a slot frees up."""
        now = time.monotonic()
        q = self.hits.setdefault(key, deque())
        while q and q[0] <= now - limit.window_s:
            q.popleft()
        if len(q) >= limit.count:
            return q[0] + limit.window_s - now
        q.append(now)
        return 0.0


def envelope(key: str | None = None, value: Any = None, *, success: bool = True, code: int = 0,
             message: str | None = None, raw_value: str | None = None) -> str:
    head = "" if key is None else f'"{key}":{raw_value if raw_value is not None else json.dumps(value)},'
    return f'{{{head}"success":{json.dumps(success)},"errorCode":{code},"errorMessage":{json.dumps(message)}}}'


def reply(text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=text, status=status, content_type=JSON, charset="utf-8", headers=headers)


def parse_time(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError("not a string")
    dt = datetime.fromisoformat(value)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def bad_request(errors: dict[str, str]) -> web.Response:
    body = {"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.", "status": 400,
            "errors": {k: [v] for k, v in errors.items()}}
    return web.Response(text=json.dumps(body), status=400, content_type="application/problem+json", charset="utf-8")


def require(body: Any, fields: dict[str, type | tuple[type, ...]]) -> dict[str, str]:
    if not isinstance(body, dict):
        return {"$": "A non-empty request body is required."}
    return {k: f"The {k} field is required." for k, t in fields.items()
            if k not in body or body[k] is None or not isinstance(body[k], t) or
            (t is int and isinstance(body[k], bool))}


class RestApi:
    """Request handling for ``/api/...``; state lives on the :class:`FakeGateway`."""

    def __init__(self, gw: FakeGateway) -> None:
        self.gw = gw
        self.window = SlidingWindow()
        self.routes = {
            "auth/loginkey": self.login_key, "auth/validate": self.validate, "auth/logout": self.logout,
            "contract/search": self.search, "contract/searchbyid": self.search_by_id,
            "contract/available": self.available, "history/retrievebars": self.retrieve_bars,
            "account/search": self.accounts,
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.lower().rstrip("/")
        endpoint = path.removeprefix("/api/")
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        call = RestCall(endpoint, request.path, body, headers=dict(request.headers))
        self.gw.rest_calls.append(call)
        response = await self._dispatch(request, endpoint, body, call)
        call.status = response.status
        self.gw.changes.notify()
        return response

    async def _dispatch(self, request: web.Request, endpoint: str, body: Any, call: RestCall) -> web.StreamResponse:
        opts = self.gw.options
        if endpoint == "status/ping" and request.method == "GET":
            return web.Response(text="pong", content_type="text/plain")
        if request.method != "POST":
            return web.Response(status=405)
        handler = self.routes.get(endpoint)
        if handler is None:
            return web.Response(status=404)
        claims = None
        if endpoint != "auth/loginkey":
            auth = request.headers.get("Authorization", "")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            allow_expired = endpoint == "auth/validate" and opts.validate_expired
            claims = self.gw.tokens.claims(token, allow_expired=allow_expired)
            if claims is None:
                return web.Response(text=opts.unauthorized_body, status=401)
        who = user_of(claims) if claims else (request.remote or "?")
        limit = opts.history_rate if endpoint == "history/retrievebars" else opts.other_rate
        bucket = "history" if endpoint == "history/retrievebars" else "other"
        wait = self.window.admit((bucket, who), limit)
        if wait > 0:
            return self._too_many(wait, opts.retry_after)
        fault = self.gw.take_rest_fault(endpoint)
        if fault is not None:
            early = await self._early_fault(fault)
            if early is not None:
                return early
        if isinstance(body, str):
            return bad_request({"$": "The JSON value could not be converted."})
        result = handler(body, claims)
        if isinstance(result, web.StreamResponse):
            return result
        key, value, raw_value = result
        if fault is not None:
            late = self._late_fault(fault, endpoint, key, value)
            if late is not None:
                return late
            if fault.kind == "short" and key == "bars":
                raw_value = "[" + ",".join(bar_json(b) for b in value[: fault.keep]) + "]"
        return reply(envelope(key, value, raw_value=raw_value))

    def _too_many(self, wait: float, retry_after: str | None) -> web.Response:
        headers = {}
        if retry_after == "seconds":
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        elif retry_after == "date":
            headers["Retry-After"] = formatdate(self.gw.clock.now() + max(1.0, wait), usegmt=True)
        return web.Response(status=429, headers=headers)

    async def _early_fault(self, fault: RestFault) -> web.StreamResponse | None:
        if fault.kind == "429":
            return self._too_many(1.0, fault.retry_after)
        if fault.kind in ("500", "502", "503"):
            return web.Response(status=int(fault.kind), text="")
        if fault.kind == "hang":
            try:
                await asyncio.wait_for(self.gw.stopping.wait(), fault.seconds)
            except TimeoutError:
                pass
            return web.Response(status=504)
        if fault.kind == "slow":
            await asyncio.sleep(fault.seconds or 1.0)
        if fault.kind == "malformed_json":
            return reply('{"success":true,"errorCode":0,"bars":[{"t":')
        return None

    @staticmethod
    def _late_fault(fault: RestFault, endpoint: str, key: str | None, value: Any) -> web.Response | None:
        field_name = key or LIST_FIELD.get(endpoint)
        if fault.kind == "empty":
            return reply(envelope(field_name, []))
        if fault.kind == "null_list":
            return reply(envelope(field_name, None))
        if fault.kind == "absent_list":
            return reply(envelope())
        if fault.kind == "false_code0":
            return reply(envelope(field_name, None, success=False, code=0))
        if fault.kind == "error":
            return reply(envelope(field_name, None, success=False, code=fault.code))
        return None

    # --- endpoints: each returns (payload key, value, pre-rendered JSON or None) or a full response ---

    def login_key(self, body: Any, _claims: None) -> Any:
        errors = require(body, {"userName": str, "apiKey": str})
        if errors:
            return bad_request(errors)
        opts, user = self.gw.options, body["userName"]
        if user in opts.account_errors:
            code = opts.account_errors[user]
            message = "Please accept the agreements in the platform." if code == 7 else None
            return reply(envelope("token", None, success=False, code=code, message=message))
        if opts.credentials.get(user) != body["apiKey"]:
            return reply(envelope("token", None, success=False, code=3))
        return "token", self.gw.tokens.issue(user), None

    def validate(self, _body: Any, claims: dict) -> Any:
        return "newToken", self.gw.tokens.issue(user_of(claims), session_of(claims)), None

    def logout(self, _body: Any, claims: dict) -> Any:
        self.gw.tokens.revoked_sessions.add(session_of(claims))
        return None, None, None

    def search(self, body: Any, _claims: dict) -> Any:
        errors = require(body, {"searchText": str, "live": bool})
        if errors:
            return bad_request(errors)
        found = [c.to_json() for c in self.gw.catalog if c.matches(body["searchText"])]
        return "contracts", found[:20], None

    def search_by_id(self, body: Any, _claims: dict) -> Any:
        errors = require(body, {"contractId": str})
        if errors:
            return bad_request(errors)
        found = [c.to_json() for c in self.gw.catalog if c.id == body["contractId"]]
        array = self.gw.options.search_by_id_array
        if not found:
            return reply(envelope("contracts" if array else "contract", None, success=False, code=1))
        return ("contracts", found, None) if array else ("contract", found[0], None)

    def accounts(self, body: Any, _claims: dict) -> Any:
        errors = require(body, {"onlyActiveAccounts": bool})
        if errors:
            return bad_request(errors)
        listed = [a for a in self.gw.options.accounts if a.get("canTrade") or not body["onlyActiveAccounts"]]
        return "accounts", listed, None

    def available(self, body: Any, _claims: dict) -> Any:
        errors = require(body, {"live": bool})
        if errors:
            return bad_request(errors)
        return "contracts", [c.to_json() for c in self.gw.catalog], None

    def retrieve_bars(self, body: Any, _claims: dict) -> Any:
        errors = require(body, {"contractId": str, "live": bool, "startTime": str, "endTime": str, "unit": int,
                                "unitNumber": int, "limit": int, "includePartialBar": bool})
        if errors:
            return bad_request(errors)
        try:
            start, end = parse_time(body["startTime"]), parse_time(body["endTime"])
        except ValueError:
            return bad_request({"startTime": "The value is not a valid date."})
        cid, unit, n, limit = body["contractId"], body["unit"], body["unitNumber"], body["limit"]

        def fail(code: int) -> web.Response:
            return reply(envelope("bars", None, success=False, code=code))

        if not any(c.id == cid for c in self.gw.catalog):
            return fail(1)
        if unit not in range(1, 7):
            return fail(2)
        if n < 1:
            return fail(3)
        if not 1 <= limit <= MAX_BARS:
            return fail(4)
        opts = self.gw.options
        tape = self.gw.market.tapes.get(cid)
        now = self.gw.market.now_for(cid) - (0 if body["live"] else int(opts.history_delay_s * TICKS))
        bars = tape.bars(unit, n, now, body["includePartialBar"]) if tape else []
        if opts.minute_lookback_s is not None and unit in (1, 2) and n == 1:
            start = max(start, now / TICKS - opts.minute_lookback_s)
        picked = [b for b in bars
                  if (b.t >= start if opts.start_inclusive else b.t > start)
                  and (b.t <= end if opts.end_inclusive else b.t < end)]
        newest = picked[-limit:][::-1]
        return "bars", newest, "[" + ",".join(bar_json(b) for b in newest) + "]"
