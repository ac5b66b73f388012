"""Counters and gauges, rendered in the Prometheus text format for ``/metrics``."""

from __future__ import annotations

import math
from collections import Counter


class Metrics:
    """Process-wide counters (monotonic) and gauges (current values), with optional labels."""

    def __init__(self, prefix: str = "mechtrade") -> None:
        self.prefix = prefix
        self.counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.help: dict[str, tuple[str, str]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self.help[name] = (kind, text)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        self.counters[(name, tuple(sorted(labels.items())))] += amount

    def set(self, name: str, value: float, **labels: str) -> None:
        self.gauges[(name, tuple(sorted(labels.items())))] = value

    def value(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self.counters.get(key, self.gauges.get(key, 0))

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in self.counters.items() if n == name)

    def render(self) -> str:
        lines: list[str] = []
        series = [(k, v, "counter") for k, v in self.counters.items()] + [
            (k, v, "gauge") for k, v in self.gauges.items()
        ]
        described: set[str] = set()
        for (name, labels), value, kind in sorted(series, key=lambda s: s[0]):
            full = f"{self.prefix}_{name}"
            if name not in described:
                kind, text = self.help.get(name, (kind, name.replace("_", " ")))
                lines += [f"# HELP {full} {text}", f"# TYPE {full} {kind}"]
                described.add(name)
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            text = _number(value)
            lines.append(f"{full}{{{label_text}}} {text}" if label_text else f"{full} {text}")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """Exact for whole numbers (a counter of 1234567 prints so, not 1.23457e+06); floats in full."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if math.isnan(value) or math.isinf(value):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[str(value)]
    return repr(float(value))
