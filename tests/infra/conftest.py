"""One program run per stack for the whole session (the Pulumi mock runs dominate the suite's time)."""

from __future__ import annotations

import pytest

from tests.infra.mocks import StackRun, run_program

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def stack_runs() -> dict[str, StackRun]:
    """Every stack of the repository, each run once under mocks."""
    return {stack: run_program(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest, stack_runs: dict[str, StackRun]) -> StackRun:
    """Each stack in turn."""
    return stack_runs[request.param]
