"""The roll rules: contract expiries from ids, which contract is the front, what is
streamed ahead of and after a roll, and that a root never rolls back."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from ingest.metrics import Metrics
from ingest.projectx import Contract
from ingest.rolls import Roller, RollSettings, expiry_of, root_of

M25, U25, Z25, H25 = (f"CON.F.US.MES.{m}" for m in ("M25", "U25", "Z25", "H25"))


def contract(cid: str, active: bool = False) -> Contract:
    return Contract(cid, "", "", Decimal("0.25"), Decimal("1.25"), active)


def test_expiry_is_the_third_friday_of_the_contract_month() -> None:
    assert expiry_of(M25) == date(2025, 6, 20) and expiry_of(U25) == date(2025, 9, 19)
    assert expiry_of(Z25) == date(2025, 12, 19) and expiry_of("CON.F.US.MES.H26") == date(2026, 3, 20)
    assert expiry_of("CON.F.US.MES.X") is None and expiry_of("something") is None
    assert root_of(M25) == "MES" and root_of("CON.F.US.EP.M25") == "EP" and root_of("MES") == ""


def roller(rule: str, today: date, **settings: int) -> Roller:
    async def no_change(*_: object) -> None:
        pass

    async def search(_root: str) -> list[Contract]:
        return []

    return Roller(["MES"], [], search, None, RollSettings(rule, **settings), Metrics(), no_change,
                  clock=lambda: datetime(today.year, today.month, today.day, 12, tzinfo=UTC))


@pytest.mark.parametrize("today, gateway_active, rule, front", [
    (date(2025, 5, 13), M25, "gateway", M25),
    (date(2025, 6, 13), U25, "gateway", U25),  # the gateway moved: follow it
    (date(2025, 6, 11), M25, "expiry", M25),  # 9 days before expiry: not yet
    (date(2025, 6, 12), M25, "expiry", U25),  # 8 days before: roll, whatever the gateway says
    (date(2025, 6, 21), M25, "expiry", U25),  # M25 has expired
])
def test_the_front_contract(today: date, gateway_active: str, rule: str, front: str) -> None:
    found = [contract(c, c == gateway_active) for c in (H25, M25, U25, Z25)]
    picked = roller(rule, today, roll_days=8)._pick_front(found)
    assert picked is not None and picked.id == front


def test_the_next_contract_is_streamed_ahead_of_expiry_and_the_old_front_until_it_expires() -> None:
    found = [contract(c) for c in (H25, M25, U25, Z25)]
    early = roller("gateway", date(2025, 5, 13), next_days=14)
    early.front["MES"] = M25
    assert early._streamed_for("MES", found) == [M25]
    near = roller("gateway", date(2025, 6, 7), next_days=14)
    near.front["MES"] = M25
    assert near._streamed_for("MES", found) == [M25, U25]
    rolled = roller("gateway", date(2025, 6, 13), next_days=14)
    rolled.front["MES"], rolled.retiring["MES"] = U25, {M25}
    assert rolled._streamed_for("MES", found) == [U25, M25]
    expired = roller("gateway", date(2025, 6, 23), next_days=14)
    expired.front["MES"], expired.retiring["MES"] = U25, {M25}
    assert expired._streamed_for("MES", found) == [U25] and expired.retiring["MES"] == set()



def test_a_root_never_rolls_back(db_dsn: str) -> None:
    """A gateway that flags the old contract active again (a glitch) does not undo the roll."""
    async def go() -> None:
        conn = await asyncpg.connect(db_dsn)
        try:
            r = roller("gateway", date(2025, 6, 13))
            await r._update_root(conn, "MES", [contract(M25, True), contract(U25)])
            await r._update_root(conn, "MES", [contract(M25), contract(U25, True)])
            await r._update_root(conn, "MES", [contract(M25, True), contract(U25)])
            assert r.front["MES"] == U25
            assert await conn.fetch("SELECT from_contract, to_contract FROM market.contract_rolls") == [(M25, U25)]
            assert await conn.fetchval("SELECT contract_id FROM market.contracts WHERE active") == U25
        finally:
            await conn.close()

    asyncio.run(go())
