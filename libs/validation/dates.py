"""Date rules, all judged relative to an as-of date so that a historical file can be judged as of its receipt.

`as_of` is today in the streaming path and `claims validate --as-of DATE` for replaying old files (the 2005-2006
sample X12 files, the 2008-2010 SynPUF files). A claim's dates must be in order, inside the header's statement
period, not in the future, not more than ten years old, and the claim must be received within the timely-filing
limit of 365 days after the last date of service (the Medicare limit, 42 CFR 424.44).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from libs.model import Claim
from libs.validation.catalog import ReasonCode as R
from libs.validation.context import MAX_CLAIM_AGE_YEARS, RuleContext
from libs.validation.issues import Issue, make_issue
from libs.validation.registry import rule

TIMELY_FILING_DAYS = 365


def _dated_fields(claim: Claim, ends_first: bool) -> Iterator[tuple[str, date]]:
    """(field path, date) for every service date on the header, then the lines; to-dates first when `ends_first`."""
    header = (("service_date_from", claim.service_date_from), ("service_date_to", claim.service_date_to))
    for path, value in reversed(header) if ends_first else header:
        if value is not None:
            yield path, value
    for index, line in enumerate(claim.lines):
        pair = ((".service_date_from", line.service_date_from), (".service_date_to", line.service_date_to))
        for suffix, value in reversed(pair) if ends_first else pair:
            if value is not None:
                yield f"lines[{index}]{suffix}", value


def _field_of(claim: Claim, wanted: date, ends_first: bool) -> str:
    """The field holding `wanted`, preferring to-dates for a latest date and from-dates for an earliest one.

    Only called once a rule has fired, so the scan stays off the hot path.
    """
    return next(path for path, value in _dated_fields(claim, ends_first) if value == wanted)


@rule(R.DATE_RANGE_INVERTED)
def date_ranges_in_order(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """A from date must not be after its to date, on the header and on every line."""
    start, end = claim.service_date_from, claim.service_date_to
    if start is not None and end is not None and start > end:
        yield make_issue(R.DATE_RANGE_INVERTED, "service_date_from",
                         f"expected the statement from date on or before the to date {end.isoformat()}; "
                         f"found {start.isoformat()}")
    for index, line in enumerate(claim.lines):
        start, end = line.service_date_from, line.service_date_to
        if start is not None and end is not None and start > end:
            yield make_issue(R.DATE_RANGE_INVERTED, f"lines[{index}].service_date_from",
                             f"line {line.line_number}: expected the from date on or before the to date "
                             f"{end.isoformat()}; found {start.isoformat()}")


@rule(R.LINE_DATE_OUTSIDE_HEADER)
def line_dates_inside_header(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Line dates must fall inside the header statement period (each bound is checked when the header gives it)."""
    period_start, period_end = claim.service_date_from, claim.service_date_to
    if period_start is None and period_end is None:
        return
    for index, line in enumerate(claim.lines):
        start = line.service_date_from
        end = line.service_date_to or start
        if start is None or end is None:
            continue
        if (period_start is not None and start < period_start) or (period_end is not None and end > period_end):
            period = f"{_iso(period_start)}..{_iso(period_end)}"
            yield make_issue(R.LINE_DATE_OUTSIDE_HEADER, f"lines[{index}].service_date_from",
                             f"line {line.line_number}: expected service dates within the statement period "
                             f"{period}; found {start.isoformat()}..{end.isoformat()}")


def _iso(value: date | None) -> str:
    return value.isoformat() if value is not None else "open"


@rule(R.DATE_IN_FUTURE)
def service_dates_not_in_future(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """No service date may be after the as-of date (reported once, on the latest date)."""
    last = ctx.last_service_date
    if last is not None and last > ctx.as_of:
        yield make_issue(R.DATE_IN_FUTURE, _field_of(claim, last, ends_first=True),
                         f"expected service dates on or before the as-of date {ctx.as_of.isoformat()}; "
                         f"found {last.isoformat()}")


@rule(R.DATE_TOO_OLD)
def service_dates_recent(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """No service date may be more than ten years before the as-of date (reported once, on the earliest date)."""
    first = ctx.first_service_date
    if first is not None and first < ctx.oldest_allowed:
        yield make_issue(R.DATE_TOO_OLD, _field_of(claim, first, ends_first=False),
                         f"expected service dates on or after {ctx.oldest_allowed.isoformat()} ({MAX_CLAIM_AGE_YEARS} "
                         f"years before the as-of date {ctx.as_of.isoformat()}); found {first.isoformat()}")


@rule(R.TIMELY_FILING_EXCEEDED)
def filed_in_time(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """The claim must be received (or, without a receipt date, judged) within 365 days of the last service date."""
    last = ctx.last_service_date
    if last is None:
        return
    received = claim.source.received_date
    filed = received or ctx.as_of
    days = (filed - last).days
    if days > TIMELY_FILING_DAYS:
        basis = "received" if received is not None else "as of"
        yield make_issue(R.TIMELY_FILING_EXCEEDED, _field_of(claim, last, ends_first=True),
                         f"expected the claim within {TIMELY_FILING_DAYS} days of the last service date "
                         f"{last.isoformat()}; {basis} {filed.isoformat()}, {days} days later")


RULES = (
    date_ranges_in_order,
    line_dates_inside_header,
    service_dates_not_in_future,
    service_dates_recent,
    filed_in_time,
)
