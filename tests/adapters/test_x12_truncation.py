"""X12 837 adapter robustness: truncated, random and mutated inputs never raise and never lose a claim silently."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.adapters.x12 import X12Reason, parse_x12_text
from libs.model import Claim, Rejection

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "x12"
FILES = ("837p_multi.837", "837i_institutional.837")


@cache
def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


@cache
def complete_claims(name: str) -> tuple[Claim, ...]:
    results = list(parse_x12_text(fixture_text(name), name))
    assert all(isinstance(result, Claim) for result in results)
    return tuple(result for result in results if isinstance(result, Claim))


def parse_cut(name: str, length: int) -> tuple[list[Claim], list[Rejection]]:
    results = list(parse_x12_text(fixture_text(name)[:length], name))
    assert all(isinstance(result, Claim | Rejection) for result in results)
    return [r for r in results if isinstance(r, Claim)], [r for r in results if isinstance(r, Rejection)]


def complete_interchange_ends(text: str) -> set[int]:
    """Cut lengths at which the text is a whole number of complete interchanges (a valid file, not a truncation)."""
    ends = set()
    position = text.find("IEA")
    while position >= 0:
        terminator = text.index("~", position)
        ends.add(terminator)  # an IEA that lacks only its final terminator is accepted (with a warning)
        end = terminator + 1
        ends.add(end)
        while end < len(text) and text[end].isspace():
            end += 1
            ends.add(end)
        position = text.find("IEA", terminator)
    return ends


@pytest.mark.parametrize("name", FILES)
def test_every_cut_point_yields_a_prefix_of_the_claims_and_one_truncation(name: str) -> None:
    text = fixture_text(name)
    valid_ends = complete_interchange_ends(text)
    full = complete_claims(name)
    # Every segment boundary (just before, at and after each terminator) and a stride through segment interiors.
    boundaries = {index + shift for index, char in enumerate(text) if char == "~" for shift in (0, 1, 2)}
    for length in sorted((boundaries | set(range(1, len(text), 5))) & set(range(1, len(text)))):
        claims, rejections = parse_cut(name, length)
        assert list(full[: len(claims)]) == claims, f"cut at {length}: emitted claims differ from the complete file"
        if length in valid_ends:
            assert rejections == [], f"cut at {length} is a complete interchange"
            continue
        assert [r.reason for r in rejections] == [X12Reason.TRUNCATED], f"cut at {length}: {rejections}"


def test_cut_mid_claim_rejects_that_claim_and_keeps_the_earlier_ones() -> None:
    text = fixture_text("837p_multi.837")
    cut = text.index("SV1*HC:97110") + 10  # inside PCN0004's only service line
    claims, rejections = parse_cut("837p_multi.837", cut)
    assert [c.claim_id for c in claims] == ["PCN0001", "PCN0002", "PCN0003"]
    (rejection,) = rejections
    assert rejection.reason == X12Reason.TRUNCATED
    assert rejection.location == "segment 66 (CLM) / ST 0001"
    assert rejection.source.locator == "ISA 000000101 / ST 0001 / CLM 4 (segment 66)"
    assert "SAMPLESPOUSE" not in rejection.message
    assert "PCN0004" not in rejection.message


@pytest.mark.parametrize(
    ("marker", "claim_count", "unclosed"),
    [
        ("HL*3*1*22*1~", 2, "transaction set"),  # between two subscribers: both earlier claims are complete
        ("ST*837*0002", 4, "functional group"),  # after SE: only GE/IEA are missing
        ("IEA*1*000000101", 5, "interchange"),  # after GE
    ],
)
def test_cut_between_loops_reports_the_innermost_unclosed_envelope(marker: str, claim_count: int,
                                                                   unclosed: str) -> None:
    text = fixture_text("837p_multi.837")
    claims, rejections = parse_cut("837p_multi.837", text.index(marker) + (len(marker) if "HL" in marker else 0))
    assert len(claims) == claim_count
    (rejection,) = rejections
    assert rejection.reason == X12Reason.TRUNCATED
    assert unclosed in rejection.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_give_claims_or_rejections(data: bytes) -> None:
    results = list(parse_x12_text(data.decode("utf-8", errors="replace"), "random.bin"))
    assert results
    assert all(isinstance(result, Claim | Rejection) for result in results)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FILES), st.data())
def test_random_truncations_and_mutations_never_raise(name: str, data: st.DataObject) -> None:
    text = fixture_text(name)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)), label="cut")
    position = data.draw(st.integers(min_value=0, max_value=max(cut - 1, 0)), label="position")
    insert = data.draw(st.text(alphabet="*:~^|>0123456789AZ.-\n", max_size=3), label="insert")
    mutated = text[:position] + insert + text[position + 1 : cut]
    results = list(parse_x12_text(mutated, name))
    assert all(isinstance(result, Claim | Rejection) for result in results)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ISA*:~^|>GSTEHLCM0123456789\n ", max_size=300))
def test_x12_like_noise_never_raises(noise: str) -> None:
    results = list(parse_x12_text(fixture_text("837p_multi.837")[:106] + noise, "noise.837"))
    assert all(isinstance(result, Claim | Rejection) for result in results)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_after_a_valid_isa_never_raises(noise: str) -> None:
    results = list(parse_x12_text(fixture_text("837p_multi.837")[:106] + noise, "unicode.837"))
    assert all(isinstance(result, Claim | Rejection) for result in results)
