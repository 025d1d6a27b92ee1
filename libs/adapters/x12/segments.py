"""The X12 segment reader: delimiters from the fixed-width ISA header, then one segment at a time.

Why hand-written: pyx12 only ships maps for the X222A1/X223A1 errata and refuses the A2/A3 files payers send today,
and the other maintained parser needs pydantic v1. Reading segments needs no map anyway: the ISA header is fixed
width (106 characters), so the element separator is its 4th character, the repetition separator ISA11, the component
separator ISA16 and the segment terminator the character right after ISA16. Every interchange (ISA..IEA) declares its
own delimiters, so they are re-read at each ISA.

The reader works on an iterator of text chunks (a file read 1 MiB at a time, or one string), splits on the terminator
with `str.find` (no per-character Python loop, no regex) and keeps memory bounded by the longest segment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from libs.adapters.x12.reasons import X12Reason

ISA_LENGTH = 106  # 'ISA' + 16 fixed-width elements + 16 element separators + the segment terminator
# 0-based offsets of the 16 element separators inside the ISA header (ISA01 is 2 wide, ISA02 10, ISA03 2, ...).
ISA_SEPARATOR_OFFSETS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
ISA_COMPONENT_OFFSET = 104  # ISA16
ISA_REPETITION_OFFSET = 82  # ISA11: the repetition separator since 00501 (it was a standards identifier before)
# Characters stripped around segments: files commonly put a newline (or CRLF) after each terminator.
LINE_BREAKS = "\r\n"
BYTE_ORDER_MARK = "\ufeff"
# Characters that may stand in for the declared component separator when a sender's composites disagree with ISA16.
# Data characters that legitimately occur inside composites (digits, letters, '.', '-', space) are never candidates.
COMPONENT_CANDIDATES = ">:<^|!\\+`@#$%&=;"
_COMPACT_AFTER = 1 << 20  # drop consumed text from the buffer once this many characters were consumed


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The delimiters one interchange declares in its ISA header."""

    element: str
    component: str
    segment: str
    repetition: str | None = None


class Segment:
    """One segment. `elements[0]` is the tag, so `elements[1]` is e.g. CLM01, as the implementation guides number it."""

    __slots__ = ("delimiters", "elements", "ordinal", "tag", "terminated")

    def __init__(self, elements: list[str], ordinal: int, delimiters: Delimiters, terminated: bool = True) -> None:
        self.elements = elements
        self.tag = elements[0]  # kept apart: it is read for every segment, several times
        self.ordinal = ordinal  # 1-based position of the segment in the file (the first ISA is 1)
        self.delimiters = delimiters
        self.terminated = terminated  # False for trailing text the file ends with, without a segment terminator

    def __repr__(self) -> str:
        return f"Segment({self.tag}, ordinal={self.ordinal})"  # never the elements: they may hold PHI

    def get(self, position: int) -> str:
        """Element `position` (1-based), or '' when the segment is shorter: X12 drops trailing empty elements."""
        return self.elements[position] if position < len(self.elements) else ""

    def where(self, position: int | None = None) -> str:
        """'segment 27 (CLM02)': a location without any element value."""
        name = self.tag if position is None else f"{self.tag}{position:02d}"
        return f"segment {self.ordinal} ({name})"


@dataclass(frozen=True, slots=True)
class ReaderProblem:
    """The reader cannot go on: the input is not X12, an ISA header is malformed, or it ends inside an ISA."""

    reason: X12Reason
    message: str
    ordinal: int  # the segment position where the problem was found (the would-be next segment)


@dataclass(slots=True)
class _Buffer:
    """Text not yet consumed, refilled from the chunk iterator on demand."""

    chunks: Iterator[str]
    text: str = ""
    pos: int = 0
    exhausted: bool = False

    def fill(self) -> bool:
        """Append the next chunk; False when the input is exhausted."""
        if self.exhausted:
            return False
        for chunk in self.chunks:
            if chunk:
                if self.pos >= _COMPACT_AFTER:
                    self.text, self.pos = self.text[self.pos :], 0
                self.text += chunk
                return True
        self.exhausted = True
        return False

    def ensure(self, count: int) -> bool:
        """Make at least `count` unconsumed characters available; False when the input ends first."""
        while len(self.text) - self.pos < count:
            if not self.fill():
                return False
        return True

    def skip_blank(self) -> bool:
        """Skip whitespace and a byte order mark; False when nothing else is left."""
        while True:
            text, pos = self.text, self.pos
            while pos < len(text) and (text[pos].isspace() or text[pos] == BYTE_ORDER_MARK):
                pos += 1
            self.pos = pos
            if pos < len(text):
                return True
            if not self.fill():
                return False


def _describe_char(char: str) -> str:
    """A character named by code point only: the input may be anything, including text with PHI."""
    return f"U+{ord(char):04X}"


def parse_isa_header(header: str) -> Delimiters | str:
    """The delimiters of a 106-character ISA header, or a PHI-free explanation of why it is not one."""
    element = header[3]
    if element.isalnum() or element.isspace():
        return f"ISA element separator (4th character) must be a punctuation character, found {_describe_char(element)}"
    misplaced = [offset for offset in ISA_SEPARATOR_OFFSETS if header[offset] != element]
    if misplaced or header.count(element, 0, ISA_LENGTH - 1) != len(ISA_SEPARATOR_OFFSETS):
        where = f"offset {misplaced[0]}" if misplaced else "an extra separator inside a fixed-width element"
        return (
            f"ISA must be {ISA_LENGTH} characters with its 16 elements at fixed widths; element separator "
            f"{_describe_char(element)} expected at offsets {', '.join(map(str, ISA_SEPARATOR_OFFSETS))}, "
            f"mismatch at {where}"
        )
    component, segment = header[ISA_COMPONENT_OFFSET], header[ISA_LENGTH - 1]
    if component.isalnum() or segment.isalnum() or len({element, component, segment}) < 3:
        return (
            f"ISA16 component separator {_describe_char(component)} and segment terminator {_describe_char(segment)} "
            f"must be punctuation distinct from the element separator {_describe_char(element)}"
        )
    repetition = header[ISA_REPETITION_OFFSET]
    # Before 00501, ISA11 held the standards identifier 'U': no repetition separator then.
    has_repetition = not repetition.isalnum() and repetition not in (element, component, segment)
    return Delimiters(element=element, component=component, segment=segment,
                      repetition=repetition if has_repetition else None)


def _read_header(buffer: _Buffer, ordinal: int, first: bool) -> Segment | ReaderProblem:
    """The ISA at the buffer position (blanks already skipped): fixed width, so read by position, not terminator."""
    complete = buffer.ensure(3)
    head = buffer.text[buffer.pos : buffer.pos + 3]
    if head != "ISA":
        if not complete and "ISA".startswith(head):
            return ReaderProblem(X12Reason.TRUNCATED, f"the input ends inside the ISA header at segment {ordinal}",
                                 ordinal)
        context = "at the start of the input" if first else f"after IEA (segment {ordinal - 1})"
        return ReaderProblem(
            X12Reason.NOT_ISA, f"expected an ISA segment {context}, found character {_describe_char(head[0])}", ordinal
        )
    if not buffer.ensure(ISA_LENGTH):
        available = buffer.text[buffer.pos :]
        element = available[3] if len(available) > 3 else ""
        if any(available[offset] != element for offset in ISA_SEPARATOR_OFFSETS if offset < len(available)):
            # What is there already contradicts the fixed widths: a malformed header, not merely a cut one.
            return ReaderProblem(
                X12Reason.BAD_ISA,
                f"ISA must be {ISA_LENGTH} characters with its 16 elements at fixed widths; the input has "
                f"{len(available)} characters and separators at other offsets (segment {ordinal})",
                ordinal,
            )
        return ReaderProblem(
            X12Reason.TRUNCATED,
            f"the input ends inside the ISA header at segment {ordinal}: {len(available)} of {ISA_LENGTH} characters",
            ordinal,
        )
    header = buffer.text[buffer.pos : buffer.pos + ISA_LENGTH]
    parsed = parse_isa_header(header)
    if isinstance(parsed, str):
        return ReaderProblem(X12Reason.BAD_ISA, f"{parsed} (segment {ordinal})", ordinal)
    buffer.pos += ISA_LENGTH
    return Segment(header[: ISA_LENGTH - 1].split(parsed.element), ordinal, parsed)


def _read_body(buffer: _Buffer, delimiters: Delimiters, ordinal: int) -> Iterator[Segment]:
    """Segments after an ISA, split on its terminator, until IEA, a stray ISA (left unread) or the end of input."""
    terminator = delimiters.segment
    while True:
        end = buffer.text.find(terminator, buffer.pos)
        while end < 0:
            searched = len(buffer.text) - buffer.pos  # relative: filling may compact the buffer
            if not buffer.fill():
                break
            end = buffer.text.find(terminator, buffer.pos + searched)
        if end < 0:
            tail = buffer.text[buffer.pos :].strip(LINE_BREAKS)
            buffer.pos = len(buffer.text)
            if tail.strip():
                yield Segment(tail.split(delimiters.element), ordinal + 1, delimiters, terminated=False)
            return
        start = buffer.pos
        raw = buffer.text[start:end].strip(LINE_BREAKS)
        buffer.pos = end + 1
        if not raw:
            continue
        if raw.startswith("ISA") and (len(raw) == 3 or not raw[3].isalnum()):
            buffer.pos = start  # a new interchange without the IEA of this one: re-read it as a header
            return
        ordinal += 1
        segment = Segment(raw.split(delimiters.element), ordinal, delimiters)
        yield segment
        if segment.tag == "IEA":
            return


def read_segments(chunks: Iterable[str]) -> Iterator[Segment | ReaderProblem]:
    """Segments of every interchange in the input, in order; a ReaderProblem ends the stream.

    The input must start with an ISA (after blanks); after each IEA only another ISA or blanks may follow. A segment
    whose text starts with 'ISA' inside an interchange (a missing IEA) restarts header parsing, so a new interchange
    with other delimiters is still read correctly; the parser reports the unclosed interchange.
    """
    buffer = _Buffer(iter(chunks))
    ordinal = 0
    first = True
    while buffer.skip_blank():
        header = _read_header(buffer, ordinal + 1, first)
        yield header
        if isinstance(header, ReaderProblem):
            return
        ordinal, first = header.ordinal, False
        for segment in _read_body(buffer, header.delimiters, ordinal):
            ordinal = segment.ordinal
            yield segment
    if first:
        yield ReaderProblem(X12Reason.NOT_ISA, "expected an ISA segment, found an empty input", 1)


@dataclass(slots=True)
class CompositeSplitter:
    """Splits composite elements (SV101 'HC:99213:25', HI 'ABK:E119', CLM05 '11:B:1').

    Senders sometimes declare one component separator in ISA16 and use another in their composites (ISA16 ':' but
    'HC>99213'). When the declared one is absent and exactly one other candidate separator occurs in the value, that
    one is unambiguous and used; `on_deviation` is told once per interchange so that the deviation is reported.
    """

    on_deviation: Callable[[Segment, int, str], None]
    _reported: set[str] = field(default_factory=set)

    def new_interchange(self) -> None:
        """Each interchange declares its own delimiters, so deviations are reported again per interchange."""
        self._reported.clear()

    def split(self, segment: Segment, position: int) -> list[str]:
        """The components of element `position` of `segment` ([] when the element is empty)."""
        value = segment.get(position)
        if not value:
            return []
        delimiters = segment.delimiters
        if delimiters.component in value:
            return value.split(delimiters.component)
        reserved = (delimiters.element, delimiters.segment, delimiters.repetition)
        found = [char for char in COMPONENT_CANDIDATES if char in value and char not in reserved]
        if len(found) != 1:
            return [value]
        if found[0] not in self._reported:
            self._reported.add(found[0])
            self.on_deviation(segment, position, found[0])
        return value.split(found[0])
