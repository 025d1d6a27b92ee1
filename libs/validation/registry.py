"""How a validation rule is declared: a pure function over (claim, context) tagged with the reason codes it reports.

Why a declared code list per rule: the catalog is the contract shared with the Spark engine and the docs. Declaring
the codes next to each check lets a test prove that every catalog code has a rule and that no rule reports a code it
did not declare.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from libs.model import Claim
from libs.validation.catalog import ReasonCode
from libs.validation.context import RuleContext
from libs.validation.issues import Issue

Check = Callable[[Claim, RuleContext], Iterator[Issue]]


@dataclass(frozen=True)
class Rule:
    """A named check and the reason codes it may report."""

    name: str
    codes: tuple[ReasonCode, ...]
    check: Check
    summary: str

    def __call__(self, claim: Claim, context: RuleContext) -> Iterator[Issue]:
        return self.check(claim, context)


def rule(*codes: ReasonCode) -> Callable[[Check], Rule]:
    """Declare `check` as a rule reporting `codes` (the first docstring line becomes its summary)."""
    if not codes:
        raise ValueError("a rule must declare at least one reason code")

    def wrap(check: Check) -> Rule:
        summary = (check.__doc__ or "").strip().splitlines()[0] if check.__doc__ else check.__name__
        return Rule(name=check.__name__, codes=tuple(codes), check=check, summary=summary)

    return wrap


def blank(value: str | None) -> bool:
    """Whether a code or identifier is absent: None, empty or only spaces (X12 pads some elements)."""
    return value is None or not value.strip()


# Quoting a code in a message helps whoever fixes the claim, but a value in the wrong field may be PHI (a name typed
# into a code field). Only values shaped like codes (short, alphanumeric, with a digit unless at most 2 characters,
# like the modifier 'LT') are quoted; anything else is described by its length.
_CODE_SHAPE = re.compile(r"[A-Za-z0-9.]{1,8}")


def show_code(value: str) -> str:
    """A code for an error message: quoted when it is shaped like a code, else described without its content."""
    if _CODE_SHAPE.fullmatch(value) and (len(value) <= 2 or any(char.isdigit() for char in value)):
        return f"'{value}'"
    return f"a {len(value)}-character value"
