"""The protected claim as the producer sends it, and the view of it that rules and screens see.

Why one model for the wire: the stream's checker, the daily batch, the bench's baseline consumer and `claims reveal`
all start from a *protected* record (libs.phi.protector): the claim with tokenized member ids, its encrypted leaves
sealed into `phi_sealed`, and the `phi_derived` / `phi_envelope` blocks. `ProtectedClaim` is that record, typed: it
parses in one step from JSON bytes (pydantic's Rust parser, strict types), it *is* a `Claim` for the rules, and its
`phi_derived` block carries the facts rules need from PHI they cannot see (libs.phi.derived).

Strict parsing on the wire is deliberate: the producer writes exactly the model's JSON (ISO dates, integers as
integers, amounts as decimal strings), so anything else is a malformed message, reported with its path; and a message
that parses here is one Spark's `from_json` with the schema derived from the same model reads too (tested).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from libs.model import Claim
from libs.phi.derived import PhiDerived


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DerivedBlock(_Block):
    """`phi_derived`: non-identifying facts computed from PHI before it was protected (libs.phi.derived)."""

    patient_age_years: int | None = None
    member_days_after_death: int | None = None
    patient_zip3: str | None = None

    def facts(self) -> PhiDerived:
        """The block as the rules' PhiDerived mapping."""
        return {"patient_age_years": self.patient_age_years,
                "member_days_after_death": self.member_days_after_death, "patient_zip3": self.patient_zip3}


class EnvelopeBlock(_Block):
    """`phi_envelope`: the wrapped data key of the record's sealed block (libs.phi.envelope)."""

    dek_id: str
    provider: str
    kek_id: str
    kek_version: str
    wrapped_dek: str


class ProtectedClaim(Claim):
    """A claim message: the canonical claim with its PHI protected, plus the protection blocks."""

    phi_derived: DerivedBlock | None = None
    phi_envelope: EnvelopeBlock | None = None
    phi_sealed: str | None = None

    @classmethod
    def from_json(cls, value: bytes | str) -> ProtectedClaim:
        """Parse and validate a message value (strict types); pydantic.ValidationError names each bad path."""
        return cls.model_validate_json(value, strict=True)

    def derived(self) -> PhiDerived | None:
        """The `phi_derived` facts, or None when the record has none (then the rules find no age or death)."""
        return self.phi_derived.facts() if self.phi_derived is not None else None
