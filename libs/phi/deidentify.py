"""HIPAA Safe Harbor de-identification (45 CFR 164.514(b)(2)) of claim records for export outside the organisation.

Why an allowlist: the export is *built* from a fixed list of non-identifying fields, instead of deleting known PHI
from a copy. A column added to silver tomorrow (a fax number, a device ID, a note) therefore never reaches an export
by accident. The 18 Safe Harbor identifier kinds are handled as follows:

 1 names .......................... dropped (patient, subscriber; provider person names and payer names too: free text)
 2 geography below state .......... street, city, county dropped; state kept; ZIP -> first three digits, or ``000``
                                    for the 17 ZIP3s with 20,000 or fewer people (data/restricted_zip3.json)
 3 dates .......................... every date reduced to its year (birth, death, service, admission, discharge,
                                    received); age is exported, "90+" over 89, and no birth year (it would reveal
                                    ages over 89); service after death is a yes/no flag, not a day count
 4-5 telephone, fax ............... dropped           6 e-mail ........................ dropped
 7 SSN ............................ dropped           8 medical record number ......... dropped
 9 health plan beneficiary number . dropped (member IDs and their tokens: a token is derived from the ID)
10 account numbers ................ dropped          11 certificate / license numbers .. dropped (incl. tax IDs)
12 vehicle IDs, 13 device IDs, 14 URLs, 15 IP addresses, 16 biometric IDs, 17 photos: never in the allowlist
18 any other unique number ........ claim IDs replaced by a keyed surrogate (HMAC under a key that never leaves the
                                    organisation, so the recipient cannot reverse it; it links a replacement to the
                                    claim it replaces); source file names and locators dropped

Provider NPIs, taxonomies and the provider's state are kept: they identify providers, not patients, and NPPES
publishes them. Codes (diagnosis, procedure, revenue, NDC, DRG) and amounts are kept. The covered entity must still
have no actual knowledge that the remaining information could identify a person (164.514(b)(2)(ii)): see
docs/security.md.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac
from pydantic import ValidationError

from libs.model import Claim
from libs.phi.derived import AGE_CAP, PHI_DERIVED_KEY, PhiDerived, derive_phi
from libs.phi.errors import PhiError
from libs.phi.keys import token_keys_from_settings
from libs.phi.tokens import derive_key
from libs.settings import Settings

SURROGATE_DOMAIN = "deid/claim-id"
_DATE_RE = re.compile(r"^(\d{4})-\d{2}-\d{2}$")
_PROVIDER_ROLES = ("billing_provider", "rendering_provider", "attending_provider", "referring_provider", "facility")
_SCALAR = (str, int, float, bool)


class ExportRejectReason(StrEnum):
    """Why an input record was not exported (each one is reported with its file and line)."""

    JSON_MALFORMED = "EXPORT_JSON_MALFORMED"
    NOT_A_CLAIM = "EXPORT_NOT_A_CLAIM"


class DeidentifyError(PhiError):
    """An input record is neither a protected record nor a canonical claim."""

    def __init__(self, reason: ExportRejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _scalar(value: Any) -> Any:
    """Scalars only: a nested object where a code is expected must not smuggle anything into the export."""
    return value if isinstance(value, _SCALAR) else None


def _scalars(value: Any) -> list[Any]:
    return [item for item in value if isinstance(item, _SCALAR)] if isinstance(value, list) else []


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _year(value: Any) -> int | None:
    """Year of an ISO date string, the only date element Safe Harbor allows."""
    match = _DATE_RE.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def export_age(age: Any) -> str | None:
    """'47', or '90+' for ages over 89 (phi_derived reports those as 90); negative or missing -> None."""
    if not isinstance(age, int) or isinstance(age, bool) or age < 0:
        return None
    return f"{AGE_CAP}+" if age >= AGE_CAP else str(age)


def _provider(value: Any) -> dict[str, Any] | None:
    provider = _obj(value)
    if not provider:
        return None
    return {"npi": _scalar(provider.get("npi")), "taxonomy": _scalar(provider.get("taxonomy")),
            "entity_type": _scalar(provider.get("entity_type")),
            "state": _scalar(_obj(provider.get("address")).get("state"))}


class Deidentifier:
    """Turns protected records (PhiProtector.protect output) or canonical claim dicts into Safe Harbor records."""

    def __init__(self, surrogate_key: bytes) -> None:
        self._surrogate_key = surrogate_key

    @classmethod
    def from_settings(cls, settings: Settings) -> Deidentifier:
        """Surrogate key derived (HKDF, own domain) from the active tokenization key."""
        keys = token_keys_from_settings(settings.security)
        return cls(derive_key(keys.secret(keys.active_version()), SURROGATE_DOMAIN))

    def surrogate(self, claim_id: Any) -> str | None:
        """Keyed, irreversible stand-in for a claim ID: same ID -> same surrogate within this key."""
        if not isinstance(claim_id, str) or not claim_id:
            return None
        mac = hmac.HMAC(self._surrogate_key, hashes.SHA256())
        mac.update(claim_id.encode("utf-8"))
        return mac.finalize()[:16].hex()

    @staticmethod
    def _derived(record: dict[str, Any]) -> PhiDerived:
        derived = record.get(PHI_DERIVED_KEY)
        if isinstance(derived, dict):
            return {"patient_age_years": derived.get("patient_age_years"),
                    "member_days_after_death": derived.get("member_days_after_death"),
                    "patient_zip3": derived.get("patient_zip3")}
        try:
            return derive_phi(Claim.model_validate(record))
        except ValidationError as exc:
            fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors(include_input=False)})[:5]
            msg = f"expected a protected record (with phi_derived) or a canonical claim; invalid fields: {fields}"
            raise DeidentifyError(ExportRejectReason.NOT_A_CLAIM, msg) from None

    def deidentify(self, record: Any) -> dict[str, Any]:
        """The Safe Harbor form of one record; DeidentifyError when it is not a claim record."""
        if not isinstance(record, dict):
            msg = f"expected a JSON object per record, found {type(record).__name__}"
            raise DeidentifyError(ExportRejectReason.NOT_A_CLAIM, msg)
        derived = self._derived(record)
        person = _obj(record.get("patient")) or _obj(record.get("subscriber"))
        zip3 = derived["patient_zip3"]
        days_after_death = derived["member_days_after_death"]
        source = _obj(record.get("source"))
        return {
            "claim_key": self.surrogate(record.get("claim_id")),
            "original_claim_key": self.surrogate(record.get("original_claim_id")),
            "claim_type": _scalar(record.get("claim_type")),
            "frequency_code": _scalar(record.get("frequency_code")),
            "source_format": _scalar(source.get("format")),
            **{role: _provider(record.get(role)) for role in _PROVIDER_ROLES},
            "payer_id": _scalar(_obj(record.get("payer")).get("payer_id")),
            "patient": {
                "gender": _scalar(person.get("gender")),
                "relationship_code": _scalar(person.get("relationship_code")),
                "age": export_age(derived["patient_age_years"]),
                "state": _scalar(_obj(person.get("address")).get("state")),
                # phi_derived already applied the restricted-ZIP3 rule; re-check shape in case of odd input.
                "zip3": zip3 if isinstance(zip3, str) and re.fullmatch(r"\d{3}", zip3) else None,
                "service_after_death": days_after_death > 0 if isinstance(days_after_death, int) else None,
            },
            "place_of_service": _scalar(record.get("place_of_service")),
            "type_of_bill": _scalar(record.get("type_of_bill")),
            "service_year_from": _year(record.get("service_date_from")),
            "service_year_to": _year(record.get("service_date_to")),
            "admission_year": _year(record.get("admission_date")),
            "discharge_year": _year(record.get("discharge_date")),
            "received_year": _year(source.get("received_date")),
            "diagnoses": [
                {"code": _scalar(d.get("code")), "system": _scalar(d.get("system")),
                 "present_on_admission": _scalar(d.get("present_on_admission")),
                 "qualifier": _scalar(d.get("qualifier"))}
                for d in map(_obj, record.get("diagnoses") or []) if d
            ],
            "lines": [self._line(line) for line in map(_obj, record.get("lines") or []) if line],
            "total_charge": _scalar(record.get("total_charge")),
            "allowed_amount": _scalar(record.get("allowed_amount")),
            "paid_amount": _scalar(record.get("paid_amount")),
            "drg_code": _scalar(record.get("drg_code")),
        }

    @staticmethod
    def _line(line: dict[str, Any]) -> dict[str, Any]:
        return {
            "line_number": _scalar(line.get("line_number")),
            "procedure_code": _scalar(line.get("procedure_code")),
            "procedure_system": _scalar(line.get("procedure_system")),
            "modifiers": _scalars(line.get("modifiers")),
            "revenue_code": _scalar(line.get("revenue_code")),
            "units": _scalar(line.get("units")),
            "unit_type": _scalar(line.get("unit_type")),
            "charge": _scalar(line.get("charge")),
            "allowed_amount": _scalar(line.get("allowed_amount")),
            "paid_amount": _scalar(line.get("paid_amount")),
            "service_year_from": _year(line.get("service_date_from")),
            "service_year_to": _year(line.get("service_date_to")),
            "place_of_service": _scalar(line.get("place_of_service")),
            "diagnosis_pointers": _scalars(line.get("diagnosis_pointers")),
            "rendering_provider": _provider(line.get("rendering_provider")),
            "ndc": _scalar(line.get("ndc")),
        }
