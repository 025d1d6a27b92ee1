"""Rule profiles per source format: which rules apply to a source as catalogued, which become warnings, which are
skipped, and which period its dates are judged in.

Why: the rule catalog describes what a *submission* must carry (an 837 sent to a payer for adjudication). Adjudicated
and research extracts are not submissions: a CMS DE-SynPUF carrier file has no billing NPI, place of service, type of
bill, billed-charge total or units, and a Blue Button 2.0 EOB has no billing provider on carrier claims. Failing them
for fields their format cannot carry would reject every claim of a payer's own Medicare data (issue 11). So each
source format has a profile; the rule engine (libs.validation.rules.validate_claim) selects it by
`claim.source.format` and applies it to the issues the rules found:

* APPLY: the catalogued severity (every rule of the submission profile);
* WARN: an error of the catalogue is reported as a warning: the field is checked where present, but the format does
  not guarantee it, so its absence or a format convention must not reject the claim;
* SKIP: the rule is not run for that source, because what it judges does not exist there (timely filing of a claim
  that the payer already adjudicated; a payer routing default on Medicare's own files).

Dates of an extract are judged as of its own period: `DATE_TOO_OLD` counts the ten years back from the claim's
receipt date (else its last service date), not from today, so a 2008-2010 research file or a 2015 EOB is not old by
definition. `DATE_IN_FUTURE` still compares with the caller's as-of date: no claim of any source is in the future.

Profiles never turn a warning into an error and never touch the catalog: the page docs/validation-rules.md lists the
profiles from here (`claims rules --markdown`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from libs.model import SourceFormat
from libs.validation.catalog import ReasonCode, Severity
from libs.validation.issues import Issue

R = ReasonCode


class Treatment(StrEnum):
    """What a profile does with a rule's findings."""

    APPLY = "apply"
    WARN = "warning"
    SKIP = "skipped"


@dataclass(frozen=True)
class RuleProfile:
    """How the rules judge claims of some source formats; `reasons` says why for every code that is not APPLY."""

    name: str
    description: str
    formats: tuple[SourceFormat, ...]
    treatments: Mapping[ReasonCode, Treatment] = field(default_factory=dict)
    reasons: Mapping[ReasonCode, str] = field(default_factory=dict)
    own_period: bool = False  # DATE_TOO_OLD counted from the claim's own receipt / last service date

    def treatment(self, code: ReasonCode) -> Treatment:
        """The treatment of `code` (APPLY unless the profile says otherwise)."""
        return self.treatments.get(code, Treatment.APPLY)

    @property
    def is_submission(self) -> bool:
        """Whether every rule applies as catalogued (the engine's fast path)."""
        return not self.treatments and not self.own_period


def _profile(name: str, description: str, formats: tuple[SourceFormat, ...],
             rules: Mapping[ReasonCode, tuple[Treatment, str]], *, own_period: bool = False) -> RuleProfile:
    return RuleProfile(
        name=name, description=description, formats=formats,
        treatments=MappingProxyType({code: treatment for code, (treatment, _why) in rules.items()}),
        reasons=MappingProxyType({code: why for code, (_treatment, why) in rules.items()}),
        own_period=own_period,
    )


_ADJUDICATED = "the payer already adjudicated the claim: when it was filed was decided then"

SUBMISSION = _profile(
    "submission",
    "Claims submitted for adjudication (X12 837P/837I, FHIR Claim, canonical JSON, generated): every rule as "
    "catalogued, dates as of the caller's as-of date.",
    (SourceFormat.X12_837P, SourceFormat.X12_837I, SourceFormat.FHIR_CLAIM, SourceFormat.JSON,
     SourceFormat.SYNTHETIC),
    {},
)

FHIR_EOB = _profile(
    "adjudicated-eob",
    "FHIR ExplanationOfBenefit (CARIN Blue Button, the CMS Blue Button 2.0 API): adjudicated claims as a payer "
    "reports them, dates as of the claim's own period.",
    (SourceFormat.FHIR_EOB,),
    {
        R.MISSING_BILLING_NPI: (Treatment.WARN, "Blue Button carrier EOBs carry no billing provider, only the care "
                                                "team"),
        R.MISSING_TYPE_OF_BILL: (Treatment.WARN, "an EOB need not carry the type of bill (CMS sends its digits "
                                                 "apart; the adapter composes them when all three are there)"),
        R.MISSING_PLACE_OF_SERVICE: (Treatment.WARN, "an EOB item's location is optional in R4"),
        R.MISSING_PROCEDURE_CODE: (Treatment.WARN, "Blue Button items may omit productOrService"),
        R.TOTAL_CHARGE_MISMATCH: (Treatment.WARN, "adjudicated totals are the payer's figure; lines may be "
                                                  "reversed, split or left out of the EOB"),
        R.MISSING_PAYER: (Treatment.SKIP, "the EOB is the payer's own statement; Blue Button EOBs name no insurer"),
        R.TIMELY_FILING_EXCEEDED: (Treatment.SKIP, _ADJUDICATED),
    },
    own_period=True,
)

SYNPUF = _profile(
    "research-extract",
    "CMS DE-SynPUF carrier, inpatient and outpatient files: a research extract of adjudicated Medicare claims, "
    "dates as of the claim's own period.",
    (SourceFormat.SYNPUF_CARRIER, SourceFormat.SYNPUF_INPATIENT, SourceFormat.SYNPUF_OUTPATIENT),
    {
        R.MISSING_BILLING_NPI: (Treatment.WARN, "DE-SynPUF has no billing provider NPI column"),
        R.MISSING_PLACE_OF_SERVICE: (Treatment.WARN, "DE-SynPUF carrier lines have no place of service"),
        R.MISSING_TYPE_OF_BILL: (Treatment.WARN, "DE-SynPUF institutional files have no type of bill"),
        R.MISSING_TOTAL_CHARGE: (Treatment.WARN, "DE-SynPUF carrier claims have no billed-charge column"),
        R.MISSING_LINE_CHARGE: (Treatment.WARN, "DE-SynPUF carrier lines carry allowed and paid amounts only"),
        R.UNITS_INVALID: (Treatment.WARN, "DE-SynPUF has no units column"),
        R.MISSING_REVENUE_CODE: (Treatment.WARN, "DE-SynPUF institutional lines carry HCPCS codes, no revenue "
                                                 "centers"),
        R.MISSING_LINES: (Treatment.WARN, "DE-SynPUF inpatient claims list HCPCS lines only when the stay had some"),
        R.NPI_FORMAT: (Treatment.WARN, "DE-SynPUF provider NPIs are synthetic values that need not have an NPI's "
                                       "shape"),
        R.MISSING_PAYER: (Treatment.SKIP, "every DE-SynPUF claim is Medicare's"),
        R.TIMELY_FILING_EXCEEDED: (Treatment.SKIP, _ADJUDICATED),
    },
    own_period=True,
)

PROFILES: tuple[RuleProfile, ...] = (SUBMISSION, FHIR_EOB, SYNPUF)
PROFILE_BY_FORMAT: Mapping[SourceFormat, RuleProfile] = MappingProxyType(
    {fmt: profile for profile in PROFILES for fmt in profile.formats})


def profile_for(source_format: SourceFormat | str) -> RuleProfile:
    """The profile of a source format; an unknown format is held to the submission rules."""
    try:
        return PROFILE_BY_FORMAT.get(SourceFormat(source_format), SUBMISSION)
    except ValueError:
        return SUBMISSION


def apply_profile(profile: RuleProfile, issues: list[Issue]) -> list[Issue]:
    """`issues` as the profile judges them: skipped codes dropped, WARN codes reported as warnings."""
    judged: list[Issue] = []
    for issue in issues:
        treatment = profile.treatment(issue.code)
        if treatment is Treatment.SKIP:
            continue
        if treatment is Treatment.WARN and issue.severity is Severity.ERROR:
            judged.append(Issue(issue.code, Severity.WARNING, issue.field,
                                f"{issue.message} (a warning for {profile.name} sources)"))
        else:
            judged.append(issue)
    return judged


def skipped_codes(profile: RuleProfile) -> frozenset[ReasonCode]:
    """The codes a profile does not run."""
    return frozenset(code for code, treatment in profile.treatments.items() if treatment is Treatment.SKIP)
