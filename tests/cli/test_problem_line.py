"""A command's error line stays one line whatever the terminal's width, and prints its text verbatim."""

from __future__ import annotations

import io

from rich.console import Console

from libs.pipeline.console import print_problem


def _printed(message: str, **kwargs: str) -> str:
    buffer = io.StringIO()
    print_problem(Console(file=buffer, width=40, color_system=None), message, **kwargs)
    return buffer.getvalue()


def test_a_long_error_is_not_wrapped_to_a_narrow_terminal():
    message = ("/a/rather/long/checkout/path/tests/fixtures/synpuf/beneficiary.csv: expected a DE-SynPUF claims CSV, "
               "found a beneficiary summary file")
    assert _printed(message) == f"error: {message}\n"


def test_square_brackets_in_the_message_are_text_not_markup():
    assert _printed("topic [raw] missing: run [bold]make topics[/bold]") == \
        "error: topic [raw] missing: run [bold]make topics[/bold]\n"


def test_the_label_names_the_kind_of_problem():
    assert _printed("port 9100 unavailable", label="metrics not served", style="yellow") == \
        "metrics not served: port 9100 unavailable\n"
