"""The CME Globex trading week: Sunday 17:00 to Friday 16:00 Chicago, with a daily 16:00-17:00 break.

Exchange holidays are not modelled: on a holiday the staleness watchdog may reconnect a silent
feed a few times, which costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

CHICAGO = ZoneInfo("America/Chicago")
SESSION_OPEN = time(17)
SESSION_CLOSE = time(16)


def market_open(now: datetime | None = None) -> bool:
    local = (now or datetime.now(UTC)).astimezone(CHICAGO)
    day, t = local.weekday(), local.time()  # Monday = 0
    if day == 5:
        return False
    if day == 6:
        return t >= SESSION_OPEN
    if day == 4:
        return t < SESSION_CLOSE
    return not SESSION_CLOSE <= t < SESSION_OPEN
