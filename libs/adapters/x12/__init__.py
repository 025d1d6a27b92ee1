"""X12 837 adapter: 837P (005010X222) and 837I (005010X223) files into canonical claims, streaming.

Why it exists: payers receive claims as X12 837 interchanges; this is where their loops become `Claim`s and where
everything that cannot become one becomes a `Rejection` with a stable reason code (`X12Reason`) and a location. The
reader is hand-written (see `segments`), tolerant where senders commonly deviate (newlines after terminators, a
component separator other than ISA16's) and strict where the standard is clear (the ISA header, envelope counts).

Tolerated deviations are appended to the optional `warnings` list and logged; they never cost a claim.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from libs.adapters.common import open_input
from libs.adapters.x12.parser import X12Parser
from libs.adapters.x12.reasons import ENVELOPE_REASONS, X12Reason, X12Warning, X12WarningCode
from libs.adapters.x12.segments import BYTE_ORDER_MARK
from libs.model import Claim, Rejection

CHUNK_BYTES = 1 << 20

__all__ = [
    "ENVELOPE_REASONS",
    "X12Reason",
    "X12Warning",
    "X12WarningCode",
    "parse_x12_text",
    "read_x12",
    "sniff_x12",
]


def _decoded_chunks(path: Path) -> Iterator[str]:
    # UTF-8 covers the X12 basic and extended character sets; a stray invalid byte becomes U+FFFD instead of
    # failing the whole file (it can only sit inside a data element, which the rules then judge).
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with open_input(path) as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)


def read_x12(path: Path, *, warnings: list[X12Warning] | None = None) -> Iterator[Claim | Rejection]:
    """Claims and rejections of an 837 file, yielded as the file is read (memory stays bounded by one claim).

    Raises libs.adapters.errors.InputUnreadableError (when iteration starts) if the file cannot be opened; everything
    inside it, including non-X12 content, comes out as a Rejection.
    """
    return X12Parser(path.name, warnings).parse(_decoded_chunks(path))


def parse_x12_text(
    text: str, file_name: str, *, warnings: list[X12Warning] | None = None
) -> Iterator[Claim | Rejection]:
    """Claims and rejections of 837 text already in memory (a Kafka message, a test fixture)."""
    return X12Parser(file_name, warnings).parse([text])


def sniff_x12(head: bytes) -> bool:
    """True when the first non-blank bytes are an ISA segment ('ISA' followed by a separator, not a letter/digit)."""
    stripped = head.lstrip().removeprefix(BYTE_ORDER_MARK.encode()).lstrip()
    if not stripped.startswith(b"ISA"):
        return False
    return len(stripped) == 3 or not chr(stripped[3]).isalnum()
