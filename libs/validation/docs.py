"""Render the rule catalog as Markdown: the text of docs/validation-rules.md, printed by `claims rules --markdown`.

Why generated: the catalog, the rule constants (cutover date, tolerances, limits) and the page must never disagree;
a test compares the committed page with this output, so the doc cannot drift from the code.
"""

from __future__ import annotations

from libs.codesets import ICD10_EFFECTIVE
from libs.validation.amounts import SYNPUF_TOLERANCE_PER_LINE, SYNPUF_TOLERANCE_RATIO
from libs.validation.catalog import RULES, RuleSpec, Severity
from libs.validation.context import MAX_CLAIM_AGE_YEARS
from libs.validation.dates import TIMELY_FILING_DAYS
from libs.validation.diagnoses import POA_VALUES
from libs.validation.lines import MAX_DIAGNOSIS_POINTERS, MAX_MODIFIERS
from libs.validation.profiles import PROFILES, RuleProfile, Treatment

REGENERATE = ".venv/bin/python -m apps.cli.main rules --markdown > docs/validation-rules.md"


def _cell(text: str) -> str:
    """A Markdown table cell: pipes escaped so a description cannot break the table."""
    return text.replace("|", "\\|")


def _table(specs: tuple[RuleSpec, ...]) -> list[str]:
    rows = ["| Code | Severity | Field | Description |", "|---|---|---|---|"]
    rows.extend(
        f"| `{spec.code.value}` | {spec.severity.value} | `{_cell(spec.field)}` | {_cell(spec.description)} |"
        for spec in specs
    )
    return rows


def _profiles() -> list[str]:
    """The rule profiles per source format: what each does differently from the catalogue, and why."""
    lines = [
        "## Rule profiles per source format",
        "",
        "The source format of a claim (`source.format`) selects a rule profile. A submission is held to every rule "
        "above; an adjudicated or research extract is not failed for fields its format cannot carry: those rules "
        "report a *warning* instead of an error, or are *skipped*. Extract profiles judge `DATE_TOO_OLD` as of the "
        "claim's own period (ten years back from its receipt date, else its last service date); `DATE_IN_FUTURE` "
        "is always judged against the as-of date. Profiles are defined in `libs/validation/profiles.py`.",
        "",
    ]
    for profile in PROFILES:
        formats = ", ".join(f"`{fmt.value}`" for fmt in profile.formats)
        lines += [f"### {profile.name}", "", f"{_cell(profile.description)} Formats: {formats}.", ""]
        if not profile.treatments:
            lines += ["Every rule applies as catalogued.", ""]
            continue
        lines += ["| Code | Treatment | Why |", "|---|---|---|"]
        lines += [f"| `{code.value}` | {profile.treatments[code].value} | {_cell(profile.reasons[code])} |"
                  for code in sorted(profile.treatments, key=lambda c: (_order(profile, c), c.value))]
        lines.append("")
    return lines


def _order(profile: RuleProfile, code: object) -> int:
    return 0 if profile.treatments.get(code) is Treatment.WARN else 1  # type: ignore[call-overload]


def _notes() -> list[str]:
    cutover = ICD10_EFFECTIVE.isoformat()
    percent = f"{SYNPUF_TOLERANCE_RATIO * 100:.0f}%"
    poa = ", ".join(sorted(POA_VALUES))
    return [
        "## Notes",
        "",
        "### The as-of date",
        "",
        "Every date rule is judged relative to an *as-of* date that the caller passes, never the wall clock inside "
        "a rule. `claims validate` defaults it to today; `--as-of YYYY-MM-DD` replays a historical file as of its "
        "receipt (the 2005-2006 sample X12 files, the 2008-2010 SynPUF files). A service date after the as-of "
        "date is `DATE_IN_FUTURE`; "
        f"one more than {MAX_CLAIM_AGE_YEARS} years before it is `DATE_TOO_OLD` (both reported once per claim, on "
        "the latest or earliest date). `TIMELY_FILING_EXCEEDED` compares the last service date with "
        f"`source.received_date` (or the as-of date when the source has no receipt date): more than "
        f"{TIMELY_FILING_DAYS} days is late.",
        "",
        "### ICD-9-CM / ICD-10-CM cutover",
        "",
        "The code system of a diagnosis is what the source declared (the X12 HI qualifier: ABK/ABF are ICD-10-CM, "
        "BK/BF are ICD-9-CM); it is never guessed from the code. Services before "
        f"{cutover} must use ICD-9-CM (`ICD10_BEFORE_EFFECTIVE` otherwise), services on or after it ICD-10-CM "
        "(`ICD9_AFTER_CUTOVER` otherwise). The deciding date is the claim's statement 'through' date "
        "(`service_date_to`, which institutional claims carry as the statement period end), else the latest line "
        "date, else the statement 'from' date. ICD-10-CM codes are looked up in the shipped tabular list "
        "(simple-icd-10-cm, dotted or dotless input): unknown codes are `ICD10_UNKNOWN`, categories that have more "
        "specific codes below them are `ICD10_NOT_BILLABLE`. The table is the current release only: a code that was "
        "billable in an earlier fiscal year and has since been expanded (e.g. M54.5 before October 2021) is judged "
        "by today's table. ICD-9-CM codes are checked for shape only.",
        "",
        "### Required fields",
        "",
        "A professional claim may carry its place of service on every line instead of the header (as SynPUF carrier "
        "lines do). A line without its own service date takes the claim's statement from date. The member ID may "
        "sit on the patient or the subscriber; when the claim has no separate patient, the subscriber's birth date "
        "is compared with the first service date for `BIRTH_AFTER_SERVICE`. `LINE_DATE_OUTSIDE_HEADER` checks each "
        "bound of the statement period that the header gives.",
        "",
        "### NPI check digit is a warning",
        "",
        "An NPI must be 10 digits starting with 1 or 2 (`NPI_FORMAT`, an error). Its last digit is a Luhn check "
        "digit over the prefix 80840 and the first nine digits. Official sample files routinely carry NPIs that "
        "fail it and payers accept such claims, so `NPI_CHECK_DIGIT` is a warning: the claim stays valid. Every "
        "provider NPI present is checked: billing, rendering, attending, referring, facility and line rendering. "
        "Messages describe a bad NPI (length, check digit) without repeating it.",
        "",
        "### Amounts: SynPUF tolerance and FHIR EOB reversals",
        "",
        "`TOTAL_CHARGE_MISMATCH` compares the header total with the sum of the line charges to the cent, and is "
        "skipped when no line carries a charge. CMS DE-SynPUF amounts are rounded and perturbed field by field to "
        "protect beneficiaries, so for `synpuf-*` sources the difference may be up to "
        f"${SYNPUF_TOLERANCE_PER_LINE} per charged line or {percent} of the header total, whichever is larger. "
        "FHIR ExplanationOfBenefit lines may legitimately be negative: an adjudicated EOB reverses a line by "
        "repeating it with negated amounts, and the header total includes the reversals. For `fhir-eob` sources "
        "`AMOUNT_NEGATIVE` therefore checks the header amounts only, and on a reversal line (negative charge) "
        "`ALLOWED_EXCEEDS_BILLED` and `PAID_EXCEEDS_ALLOWED` compare magnitudes.",
        "",
        "### Codes and code sets",
        "",
        "Codes are strings, so leading zeros survive (`0305`, `0001U`). Place of service, modifiers, revenue codes, "
        "type-of-bill digits and frequency codes are judged against the shipped code tables in effect on the date "
        "of service (the line's own date, else the statement from date). A procedure code is checked as HCPCS when "
        "the line declares HCPCS or no system. A type of bill may arrive as 4 digits with a leading 0 (`0131`). "
        f"A line may carry at most {MAX_MODIFIERS} modifiers and {MAX_DIAGNOSIS_POINTERS} diagnosis pointers; a "
        f"present-on-admission indicator, when given, is one of {poa}.",
        "",
        "### Field paths and messages",
        "",
        "The `field` of an issue is a concrete path into the canonical claim with 0-based list indexes: "
        "`lines[1].procedure_code` is the second line, `diagnoses[0].code` the principal diagnosis; messages name "
        "the line by its 1-based line number. The table above gives the generic field of each code. Messages say "
        "what was expected and what was found; they may quote codes, amounts and dates of service and never carry "
        "PHI (names, member IDs, birth dates, addresses).",
    ]


def render_markdown() -> str:
    """The full text of docs/validation-rules.md."""
    errors = sum(1 for spec in RULES if spec.severity is Severity.ERROR)
    warnings = len(RULES) - errors
    lines = [
        "# Validation rules",
        "",
        f"<!-- Generated by `{REGENERATE}`; do not edit by hand. -->",
        "",
        "Every claim, whatever its source (X12 837P/837I, FHIR R4, CMS SynPUF, JSON, generated), is judged by the "
        "same rule set after it has been turned into the canonical claim. Each finding is reported with a stable "
        "reason code, a severity, the concrete field it concerns and a PHI-free message. An *error* makes the claim "
        "invalid (it goes to quarantine with its reason codes); a *warning* is reported and the claim flows on. The "
        "Python engine (`libs.validation`) and the Spark path share this catalog "
        f"(`libs/validation/catalog.py`): {len(RULES)} codes, {errors} errors and {warnings} warnings.",
        "",
        *_table(RULES),
        "",
        *_profiles(),
        *_notes(),
    ]
    return "\n".join(lines) + "\n"
