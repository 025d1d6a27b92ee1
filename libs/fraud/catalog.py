"""Fraud and anomaly scenario codes: what the generator injects and labels, and what the screening rules alert on.

Kept apart from validation reason codes because a fraud alert does not make a claim invalid: the claim flows on to
silver and an alert goes to `medical-claims-alerts` for investigation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FraudCode(StrEnum):
    """Stable fraud scenario codes."""

    EXACT_DUPLICATE = "FRAUD_EXACT_DUPLICATE"
    EXCLUDED_PROVIDER = "FRAUD_EXCLUDED_PROVIDER"
    SERVICE_AFTER_DEATH = "FRAUD_SERVICE_AFTER_DEATH"
    IMPOSSIBLE_DAY = "FRAUD_IMPOSSIBLE_DAY"
    UPCODING = "FRAUD_UPCODING"
    OUTLIER_CHARGE = "FRAUD_OUTLIER_CHARGE"
    UNBUNDLING = "FRAUD_UNBUNDLING"
    EXCESS_UNITS = "FRAUD_EXCESS_UNITS"


@dataclass(frozen=True)
class FraudSpec:
    """What a fraud code means."""

    code: FraudCode
    description: str


FRAUD_RULES: tuple[FraudSpec, ...] = (
    FraudSpec(FraudCode.EXACT_DUPLICATE,
              "Same member, billing provider, from/through dates, procedure, place of service and billed amount "
              "as an earlier claim (the CMS exact-duplicate key)."),
    FraudSpec(FraudCode.EXCLUDED_PROVIDER, "Billing or rendering NPI is on the excluded-provider list at service."),
    FraudSpec(FraudCode.SERVICE_AFTER_DEATH, "Service date after the member's date of death."),
    FraudSpec(FraudCode.IMPOSSIBLE_DAY,
              "A rendering provider bills more timed service minutes in one day than a day can hold."),
    FraudSpec(FraudCode.UPCODING,
              "A provider's share of the highest E/M level far exceeds its specialty's expected mix."),
    FraudSpec(FraudCode.OUTLIER_CHARGE, "A line charge far above the procedure's expected charge distribution."),
    FraudSpec(FraudCode.UNBUNDLING, "A column-1/column-2 code pair billed for the same member on the same day."),
    FraudSpec(FraudCode.EXCESS_UNITS, "Units above the medically unlikely edit (MUE) limit for the procedure."),
)
