"""The series a PromQL expression selects: metric names with their equality label matchers.

Why not promtool: promtool proves an expression parses (the tests run it on every rule and panel), but it has no
command that lists the selectors. This small extractor covers the PromQL the rules and dashboards use (functions,
aggregations with by/without, binary operators with on/ignoring, range vectors, offsets, Grafana's `$__` variables);
the tests check it against hand-made expressions, and promtool remains the judge of syntax.
"""

from __future__ import annotations

import re

_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                       "group_right", "inf", "nan", "atan2"})
_RANGES = re.compile(r"\[[^\]]*\]")
_OFFSETS = re.compile(r"\boffset\s+-?\d+[smhdwy]")
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRINGS_OUTSIDE_MATCHERS = re.compile(r'"[^"]*"(?![^{]*\})')
_SELECTOR = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?")
_EQUALITY = re.compile(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"')


def metric_selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """(metric, {label: value}) of every series selector in `expr`; only `=` matchers are returned as values."""
    text = _RANGES.sub(" ", expr)
    text = _OFFSETS.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _STRINGS_OUTSIDE_MATCHERS.sub(" ", text)
    selectors = []
    for match in _SELECTOR.finditer(text):
        name, matchers = match.group(1), match.group(2) or ""
        following = text[match.end():].lstrip()
        if name.lower() in _KEYWORDS or (following.startswith("(") and not matchers):
            continue  # a keyword or a function call
        labels = {label: value for label, op, value in _EQUALITY.findall(matchers) if op == "="}
        selectors.append((name, labels))
    return selectors


def matcher_labels(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, label names used in its matchers, any operator) for each selector; for label-name checks."""
    text = _LABEL_LISTS.sub(" ", _OFFSETS.sub(" ", _RANGES.sub(" ", expr)))
    text = _STRINGS_OUTSIDE_MATCHERS.sub(" ", text)
    found = []
    for match in _SELECTOR.finditer(text):
        name, matchers = match.group(1), match.group(2) or ""
        following = text[match.end():].lstrip()
        if name.lower() in _KEYWORDS or (following.startswith("(") and not matchers):
            continue
        found.append((name, {label for label, _op, _value in _EQUALITY.findall(matchers)}))
    return found
