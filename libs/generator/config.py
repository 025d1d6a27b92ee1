"""Generator settings: one frozen value, so that the same config always yields the same claims byte for byte."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from libs.codesets import ICD10_EFFECTIVE

DEFAULT_ANCHOR_DATE = date(2026, 10, 31)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate.

    `anchor_date` plays "today" for the synthetic payer: every valid claim is serviced within `window_days` before it
    and received on or before it, so validation as of the anchor date (or a few weeks later) finds no timely-filing or
    future-date problem. The rates are per-claim probabilities; population sizes default to a scale of `count`.
    """

    count: int
    seed: int
    defect_rate: float = 0.05
    fraud_rate: float = 0.02
    anchor_date: date = DEFAULT_ANCHOR_DATE
    replacement_rate: float = 0.01
    void_rate: float = 0.005
    institutional_rate: float = 0.18
    window_days: int = 300
    providers: int | None = None
    members: int | None = None
    facilities: int | None = None

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be >= 0, found {self.count}")
        for name in ("defect_rate", "fraud_rate", "replacement_rate", "void_rate", "institutional_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, found {value}")
        if self.defect_rate + self.fraud_rate + self.replacement_rate + self.void_rate > 1.0:
            raise ValueError("defect_rate + fraud_rate + replacement_rate + void_rate must not exceed 1")
        if not 30 <= self.window_days <= 330:
            # Above ~330 days a claim serviced at the start of the window could exceed timely filing (365 days)
            # when validated a few weeks after the anchor date.
            raise ValueError(f"window_days must be between 30 and 330, found {self.window_days}")
        if self.anchor_date - timedelta(days=self.window_days) < ICD10_EFFECTIVE:
            # Clean claims carry ICD-10-CM codes, which are only valid for services from the cutover on.
            raise ValueError(
                f"anchor_date minus window_days must not precede the ICD-10-CM cutover {ICD10_EFFECTIVE}, "
                f"found {self.anchor_date - timedelta(days=self.window_days)}"
            )
        for name in ("providers", "members", "facilities"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 when given, found {value}")

    @property
    def provider_count(self) -> int:
        """Individual practitioners: about 200 claims each, so per-provider statistics (E/M mix) are meaningful."""
        return self.providers or min(5000, max(24, self.count // 200))

    @property
    def member_count(self) -> int:
        """Members: about 5 claims each over the window."""
        return self.members or min(2_000_000, max(50, self.count // 5))

    @property
    def facility_count(self) -> int:
        """Hospitals and other institutional billers."""
        return self.facilities or min(500, max(4, self.count // 2000))
