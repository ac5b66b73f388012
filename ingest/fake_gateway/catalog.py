"""The contract catalog the fake serves (MES/MNQ front and next month, one expired contract, ES, NQ)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Contract:
    id: str
    name: str
    description: str
    tickSize: float  # noqa: N815 - wire names
    tickValue: float  # noqa: N815
    activeContract: bool  # noqa: N815
    symbolId: str  # noqa: N815

    def to_json(self) -> dict:
        return asdict(self)

    def matches(self, text: str) -> bool:
        text = text.lower()
        return any(text in s.lower() for s in (self.id, self.name, self.description, self.symbolId))


MES_M25 = "CON.F.US.MES.M25"
MES_U25 = "CON.F.US.MES.U25"


def default_catalog() -> list[Contract]:
    return [
        Contract(MES_M25, "MESM5", "Micro E-mini S&P 500: June 2025", 0.25, 1.25, True, "F.US.MES"),
        Contract(MES_U25, "MESU5", "Micro E-mini S&P 500: September 2025", 0.25, 1.25, False, "F.US.MES"),
        Contract("CON.F.US.MES.H25", "MESH5", "Micro E-mini S&P 500: March 2025", 0.25, 1.25, False, "F.US.MES"),
        Contract("CON.F.US.MNQ.M25", "MNQM5", "Micro E-mini Nasdaq-100: June 2025", 0.25, 0.5, True, "F.US.MNQ"),
        Contract("CON.F.US.MNQ.U25", "MNQU5", "Micro E-mini Nasdaq-100: September 2025", 0.25, 0.5, False,
                 "F.US.MNQ"),
        Contract("CON.F.US.EP.M25", "ESM5", "E-mini S&P 500: June 2025", 0.25, 12.5, True, "F.US.EP"),
        Contract("CON.F.US.ENQ.M25", "NQM5", "E-mini NASDAQ-100: June 2025", 0.25, 5.0, True, "F.US.ENQ"),
    ]
