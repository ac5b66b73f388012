"""Exponential backoff with jitter, the one way every retry loop here waits between attempts.

The delay after the n-th failure in a row is ``initial_s * 2**(n-1)``, capped at ``max_s``, and then
drawn at random from the upper half of that (``[delay/2, delay)``): clients that failed together do
not come back together, and no wait exceeds the cap.
"""

from __future__ import annotations

import random


class Backoff:
    """``delay = backoff.next()`` after each failure, ``backoff.reset()`` after a success."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0  # in a row, since the last reset

    def delay(self, attempt: int) -> float:
        """The jittered wait after failure number ``attempt`` (1 = the first)."""
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(max(attempt - 1, 0), 64))
        return ceiling * (0.5 + random.random() / 2)

    def next(self) -> float:
        """Count a failure; the wait before the next attempt."""
        self.failures += 1
        return self.delay(self.failures)

    def reset(self) -> None:
        """An attempt succeeded: the next failure waits about ``initial_s`` again."""
        self.failures = 0
