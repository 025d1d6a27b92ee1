"""The 837 walker: envelopes (ISA/GS/ST), the HL hierarchy and claim boundaries, in one pass over the segments.

Why this shape: a file can hold 100k claims, so claims are emitted as soon as they are known to be complete - when
the next CLM, HL or SE arrives - and only the current transaction set's HL parties are kept. Every claim becomes a
Claim or a Rejection; envelope problems become envelope-level Rejections; a truncated input rejects only the claim it
cuts (earlier claims were already emitted), with exactly one X12_TRUNCATED per cut.

HL hierarchy (both guides): 2000A billing provider (level 20) > 2000B subscriber (22) > optional 2000C patient (23).
A CLM belongs to the HL it follows; HL02 links each level to its parent, and the chain must be 23 > 22 > 20 or 22 > 20.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from libs.adapters.common import describe_validation_error
from libs.adapters.x12.loops import (
    Parties,
    billing_provider_values,
    claim_values,
    patient_values,
    subscriber_values,
)
from libs.adapters.x12.reasons import X12Reason, X12Warning, X12WarningCode
from libs.adapters.x12.segments import CompositeSplitter, ReaderProblem, Segment, read_segments
from libs.adapters.x12.values import X12ValueError
from libs.model import Claim, ClaimType, Rejection, Source, SourceFormat

logger = logging.getLogger(__name__)

TRANSACTION_837 = "837"
# Implementation guide identifiers in GS08 / ST03; errata suffixes (A1, A2, A3) do not change the loop structure.
GUIDE_FORMATS = {"X222": SourceFormat.X12_837P, "X223": SourceFormat.X12_837I}
CLAIM_TYPES = {SourceFormat.X12_837P: ClaimType.PROFESSIONAL, SourceFormat.X12_837I: ClaimType.INSTITUTIONAL}
# Source.format is required; a file-level rejection before any GS/ST names a guide falls back to the 837P value.
UNKNOWN_FORMAT = SourceFormat.X12_837P
BILLING_PROVIDER_LEVEL, SUBSCRIBER_LEVEL, PATIENT_LEVEL = "20", "22", "23"
ENVELOPE_TAGS = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE"})


@dataclass(slots=True)
class _Hl:
    """One HL loop: its segments until the next HL or CLM, and (once built) the parties they describe."""

    segment: Segment
    segments: list[Segment]
    built: Any = None  # billing provider dict / (subscriber, payer) / patient dict, or the X12ValueError raised

    @property
    def hl_id(self) -> str:
        return self.segment.get(1)

    @property
    def parent_id(self) -> str:
        return self.segment.get(2)

    @property
    def level(self) -> str:
        return self.segment.get(3)


@dataclass(slots=True)
class _Transaction:
    st: Segment
    format: SourceFormat | None  # None: not a supported 837, its segments are skipped up to SE
    segment_count: int = 1
    claim_count: int = 0
    hls: dict[str, _Hl] = field(default_factory=dict)
    current_hl: _Hl | None = None
    claim: list[Segment] | None = None
    claim_hl: _Hl | None = None

    @property
    def control_number(self) -> str:
        return self.st.get(2)


class X12Parser:
    """Turns a stream of text chunks of one input into Claims and Rejections; tolerated deviations go to `warnings`."""

    def __init__(self, file_name: str, warnings: list[X12Warning] | None = None) -> None:
        self.file_name = file_name
        self.warnings: list[X12Warning] = warnings if warnings is not None else []
        self._splitter = CompositeSplitter(on_deviation=self._component_deviation)
        self._isa: Segment | None = None
        self._gs: Segment | None = None
        self._group_st_count = 0
        self._interchange_gs_count = 0
        self._transaction: _Transaction | None = None
        self._format: SourceFormat | None = None
        self._last_ordinal = 0

    # ---------------------------------------------------------------------------------------------- entry point
    def parse(self, chunks: Iterable[str]) -> Iterator[Claim | Rejection]:
        """Every claim and rejection of the input, in input order."""
        for item in read_segments(chunks):
            if isinstance(item, ReaderProblem):
                if self._isa is not None:
                    yield from self._close_open(f"segment {item.ordinal} is not a valid interchange start", "ISA")
                locator = f"segment {item.ordinal}"
                yield self._rejection(locator, item.reason, item.message, locator)
                return
            transaction = self._transaction
            if (
                transaction is not None and transaction.format is not None and item.terminated
                and item.tag not in ENVELOPE_TAGS
            ):
                # Fast path for the bulk of the file: a data segment inside a supported transaction set.
                self._last_ordinal = item.ordinal
                transaction.segment_count += 1
                result = self._body(transaction, item)
                if result is not None:
                    yield result
            else:
                yield from self._segment(item)
        if self._isa is not None:
            yield from self._close_open(f"the input ends after segment {self._last_ordinal}", "ISA")

    # ---------------------------------------------------------------------------------------------- envelopes
    def _segment(self, segment: Segment) -> Iterator[Claim | Rejection]:
        tag = segment.tag
        if not segment.terminated:
            # A cut segment cannot be trusted ('SV1*HC:99213*40.0' may have lost digits); the end of input reports
            # the truncation. Only a final IEA repeating ISA13 is plainly complete without its terminator.
            complete_iea = (
                tag == "IEA" and len(segment.elements) == 3 and self._isa is not None
                and segment.get(2) == self._isa.get(13)
            )
            if not complete_iea:
                return
            self._warn(X12WarningCode.MISSING_FINAL_TERMINATOR, segment.where(),
                       f"the input ends with IEA without a segment terminator at {segment.where()}; accepted")
        self._last_ordinal = segment.ordinal
        transaction = self._transaction
        if transaction is not None and tag not in ("ISA", "IEA", "GS", "GE", "ST"):
            transaction.segment_count += 1  # SE01 counts ST through SE
        if tag == "ISA":
            yield from self._start_interchange(segment)
        elif tag == "IEA":
            yield from self._end_interchange(segment)
        elif tag == "GS":
            yield from self._start_group(segment)
        elif tag == "GE":
            yield from self._end_group(segment)
        elif tag == "ST":
            yield from self._start_transaction(segment)
        elif tag == "SE":
            yield from self._end_transaction(segment)
        elif transaction is None:
            self._warn(X12WarningCode.SEGMENT_OUTSIDE_TRANSACTION, segment.where(),
                       f"{segment.where()} is outside any ST..SE transaction set; ignored")
        elif transaction.format is not None:
            result = self._body(transaction, segment)
            if result is not None:
                yield result

    def _start_interchange(self, isa: Segment) -> Iterator[Claim | Rejection]:
        if self._isa is not None:
            yield from self._close_open(f"a new ISA starts at segment {isa.ordinal}", "ISA")
        self._isa, self._interchange_gs_count = isa, 0
        self._splitter.new_interchange()

    def _end_interchange(self, iea: Segment) -> Iterator[Claim | Rejection]:
        if self._isa is None:
            return
        if self._gs is not None or self._transaction is not None:
            yield from self._close_open(f"IEA at segment {iea.ordinal} closes the interchange first", "GS")
        yield from self._check_trailer(
            iea, self._interchange_gs_count, header=self._isa, header_position=13, header_name="ISA13", unit="GS groups"
        )
        self._isa = None

    def _start_group(self, gs: Segment) -> Iterator[Claim | Rejection]:
        if self._gs is not None or self._transaction is not None:
            yield from self._close_open(f"a new GS starts at segment {gs.ordinal}", "GS")
        self._gs, self._group_st_count = gs, 0
        self._interchange_gs_count += 1

    def _end_group(self, ge: Segment) -> Iterator[Claim | Rejection]:
        if self._gs is None:
            self._warn(X12WarningCode.SEGMENT_OUTSIDE_TRANSACTION, ge.where(), f"GE without GS at {ge.where()}")
            return
        if self._transaction is not None:
            yield from self._close_open(f"GE at segment {ge.ordinal} closes the group first", "ST")
        yield from self._check_trailer(
            ge, self._group_st_count, header=self._gs, header_position=6, header_name="GS06", unit="ST transaction sets"
        )
        self._gs = None

    def _start_transaction(self, st: Segment) -> Iterator[Claim | Rejection]:
        if self._transaction is not None:
            yield from self._close_open(f"a new ST starts at segment {st.ordinal}", "ST")
        self._group_st_count += 1
        guide = st.get(3) or (self._gs.get(8) if self._gs is not None else "")
        fmt = next((value for key, value in GUIDE_FORMATS.items() if key in guide), None)
        self._transaction = _Transaction(st=st, format=fmt if st.get(1) == TRANSACTION_837 else None)
        if fmt is not None:
            self._format = fmt
        if st.get(1) != TRANSACTION_837:
            message = f"ST01 {st.get(1)[:6]!r} is not an 837 health care claim at {st.where()}; transaction skipped"
        elif fmt is None:
            message = (f"implementation guide {guide[:20]!r} (ST03/GS08) is neither 005010X222 (837P) nor "
                       f"005010X223 (837I) at {st.where()}; transaction skipped")
        else:
            return
        yield self._rejection(self._where(st), X12Reason.UNSUPPORTED_TRANSACTION, message)

    def _end_transaction(self, se: Segment) -> Iterator[Claim | Rejection]:
        transaction = self._transaction
        if transaction is None:
            self._warn(X12WarningCode.SEGMENT_OUTSIDE_TRANSACTION, se.where(), f"SE without ST at {se.where()}")
            return
        if transaction.format is not None and (result := self._finish_claim(transaction)) is not None:
            yield result
        declared = se.get(1)
        if declared != str(transaction.segment_count):
            yield self._rejection(
                self._where(se), X12Reason.SEGMENT_COUNT,
                f"SE01 declares {declared[:10]!r} segments but the transaction set has {transaction.segment_count} "
                f"(ST through SE) at {se.where()}; its {transaction.claim_count} claims were still emitted",
            )
        if se.get(2) != transaction.control_number:
            yield self._rejection(
                self._where(se), X12Reason.CONTROL_NUMBER,
                f"SE02 {se.get(2)[:9]!r} does not repeat ST02 {transaction.control_number[:9]!r} at {se.where()}; "
                f"its {transaction.claim_count} claims were still emitted",
            )
        self._transaction = None

    def _check_trailer(
        self, trailer: Segment, counted: int, *, header: Segment, header_position: int, header_name: str, unit: str
    ) -> Iterator[Rejection]:
        """GE/IEA: element 1 counts the enclosed units, element 2 repeats the header's control number."""
        if trailer.get(1) != str(counted):
            yield self._rejection(
                trailer.where(), X12Reason.SEGMENT_COUNT,
                f"{trailer.tag}01 declares {trailer.get(1)[:10]!r} {unit} but {counted} were read at "
                f"{trailer.where()}; their claims were still emitted",
            )
        if trailer.get(2).strip() != header.get(header_position).strip():
            yield self._rejection(
                trailer.where(), X12Reason.CONTROL_NUMBER,
                f"{trailer.tag}02 {trailer.get(2)[:9]!r} does not repeat {header_name} "
                f"{header.get(header_position)[:9]!r} at {trailer.where()}; their claims were still emitted",
            )

    def _close_open(self, why: str, level: str) -> Iterator[Rejection]:
        """Close what is open at `level` and below without its trailer: one X12_TRUNCATED for the innermost part."""
        transaction = self._transaction
        if transaction is not None and transaction.claim is not None:
            clm = transaction.claim[0]
            yield self._rejection(
                self._where(clm), X12Reason.TRUNCATED,
                f"the claim starting at {clm.where()} may be incomplete: its transaction set "
                f"ST {transaction.control_number[:9]} has no SE ({why})",
                locator=self._claim_locator(transaction, clm),
            )
        elif transaction is not None:
            yield self._rejection(self._where(transaction.st), X12Reason.TRUNCATED,
                                  f"transaction set at {transaction.st.where()} has no SE ({why})")
        elif self._gs is not None and level in ("GS", "ISA"):
            yield self._rejection(self._gs.where(), X12Reason.TRUNCATED,
                                  f"functional group at {self._gs.where()} has no GE ({why})")
        elif self._isa is not None and level == "ISA":
            yield self._rejection(self._isa.where(), X12Reason.TRUNCATED,
                                  f"interchange at {self._isa.where()} has no IEA ({why})")
        self._transaction = None
        if level in ("GS", "ISA"):
            self._gs = None
        if level == "ISA":
            self._isa = None

    # ---------------------------------------------------------------------------------------------- claims
    def _body(self, transaction: _Transaction, segment: Segment) -> Claim | Rejection | None:
        """Route a data segment to the open claim or HL; a claim that this segment closes is returned."""
        tag = segment.tag
        if tag == "HL":
            finished = self._finish_claim(transaction)
            hl = _Hl(segment, [segment])
            transaction.hls[hl.hl_id] = hl
            transaction.current_hl = hl
            return finished
        if tag == "CLM":
            finished = self._finish_claim(transaction)
            transaction.claim_count += 1
            transaction.claim, transaction.claim_hl = [segment], transaction.current_hl
            return finished
        if transaction.claim is not None:
            transaction.claim.append(segment)
        elif transaction.current_hl is not None:
            transaction.current_hl.segments.append(segment)
        # else: BHT and the 1000A submitter / 1000B receiver loops, which the canonical claim does not carry
        return None

    def _finish_claim(self, transaction: _Transaction) -> Claim | Rejection | None:
        """The open claim (if any) as a Claim, or a Rejection saying why it cannot be one."""
        segments = transaction.claim
        if segments is None:
            return None
        transaction.claim = None
        if transaction.format is None:  # claims are only collected in supported transaction sets
            return None
        clm = segments[0]
        locator = self._claim_locator(transaction, clm)
        try:
            parties = self._parties(transaction, transaction.claim_hl, clm)
            values = claim_values(segments, CLAIM_TYPES[transaction.format], parties, self._splitter)
            values["source"] = Source(format=transaction.format, file=self.file_name, locator=locator)
            return Claim.model_validate(values)
        except X12ValueError as error:
            return self._rejection(self._where(error.segment), error.reason, error.message, locator=locator)
        except ValidationError as error:
            return self._rejection(
                self._where(clm), X12Reason.INVALID_CLAIM,
                f"the claim at {clm.where()} does not fit the canonical model: {describe_validation_error(error)}",
                locator=locator,
            )

    def _parties(self, transaction: _Transaction, hl: _Hl | None, clm: Segment) -> Parties:
        """Billing provider, subscriber, payer and patient from the HL chain above the claim."""
        patient_hl = subscriber_hl = None
        if hl is not None and hl.level == PATIENT_LEVEL:
            patient_hl = hl
            subscriber_hl = transaction.hls.get(hl.parent_id)
        elif hl is not None and hl.level == SUBSCRIBER_LEVEL:
            subscriber_hl = hl
        billing_hl = transaction.hls.get(subscriber_hl.parent_id) if subscriber_hl is not None else None
        if (
            subscriber_hl is None or subscriber_hl.level != SUBSCRIBER_LEVEL
            or billing_hl is None or billing_hl.level != BILLING_PROVIDER_LEVEL
        ):
            found = "no HL" if hl is None else f"HL at {hl.segment.where()} with level code {hl.level[:4]!r}"
            raise X12ValueError(
                X12Reason.CLAIM_WITHOUT_HL, clm,
                f"CLM at {clm.where()} must follow a subscriber (HL03 22) or patient (HL03 23) HL whose HL02 parents "
                f"lead to a billing provider (HL03 20); found {found}",
            )
        billing = self._built(billing_hl, billing_provider_values)
        subscriber, payer = self._built(subscriber_hl, subscriber_values)
        patient = self._built(patient_hl, patient_values) if patient_hl is not None else None
        return Parties(billing_provider=billing, subscriber=subscriber, payer=payer, patient=patient)

    @staticmethod
    def _built(hl: _Hl, build: Callable[[list[Segment]], Any]) -> Any:
        """The parties of an HL, mapped once for all its claims; a mapping error rejects each of them."""
        if hl.built is None:
            try:
                hl.built = build(hl.segments)
            except X12ValueError as error:
                hl.built = error
            hl.segments = []  # mapped: the segments are no longer needed
        if isinstance(hl.built, X12ValueError):
            raise hl.built
        return hl.built

    # ---------------------------------------------------------------------------------------------- reporting
    def _claim_locator(self, transaction: _Transaction, clm: Segment) -> str:
        return (f"ISA {self._isa_control()} / ST {transaction.control_number} / CLM {transaction.claim_count} "
                f"(segment {clm.ordinal})")

    def _isa_control(self) -> str:
        return self._isa.get(13) if self._isa is not None else "?"

    def _where(self, segment: Segment) -> str:
        """'segment 37 (CLM) / ST 0021': a segment located inside its transaction set."""
        transaction = self._transaction
        return f"{segment.where()} / ST {transaction.control_number}" if transaction is not None else segment.where()

    def _envelope_locator(self) -> str:
        transaction = self._transaction
        return f"ISA {self._isa_control()}" + (f" / ST {transaction.control_number}" if transaction else "")

    def _rejection(self, location: str, reason: X12Reason, message: str, locator: str | None = None) -> Rejection:
        """A rejection; `locator` defaults to the envelope (ISA / ST) the reader is in."""
        if locator is None:
            locator = self._envelope_locator()
        source = Source(format=self._format or UNKNOWN_FORMAT, file=self.file_name, locator=locator)
        return Rejection(source=source, location=location, reason=reason.value, message=message)

    def _warn(self, code: X12WarningCode, location: str, message: str) -> None:
        self.warnings.append(X12Warning(code=code, location=location, message=message))
        logger.warning("%s: %s (%s)", code.value, message, self.file_name)

    def _component_deviation(self, segment: Segment, position: int, used: str) -> None:
        declared = segment.delimiters.component
        self._warn(
            X12WarningCode.COMPONENT_SEPARATOR, segment.where(position),
            f"composite {segment.tag}{position:02d} uses {used!r} as component separator while ISA16 declares "
            f"{declared!r} (first seen at {segment.where()}); accepted for this interchange",
        )
