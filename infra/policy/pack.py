"""Adapts the plain rule functions in `rules.py` to pulumi-policy validation policies.

Why separate from `__main__.py`: constructing a PolicyPack starts the analyzer server, so tests build and exercise
these policy objects without ever constructing the pack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policy.rules import RESOURCE_RULES, STACK_RULES, ResourceRule, StackResource

PACK_NAME = "medical-claims-hipaa"


def _resource_validator(rule: ResourceRule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type):
            return
        for message in rule.check(args.resource_type, args.props):
            report_violation(message, None)

    return validate


def _stack_validator(
    check: Callable[[Sequence[StackResource]], list[str]],
) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [StackResource(resource.resource_type, resource.name, resource.props)
                     for resource in args.resources]
        for message in check(resources):
            report_violation(message, None)

    return validate


def build_policies() -> list[Policy]:
    """Every guardrail as a mandatory policy (a violation blocks `pulumi up`)."""
    policies: list[Policy] = [
        ResourceValidationPolicy(name=rule.name, description=rule.description, validate=_resource_validator(rule),
                                 enforcement_level=EnforcementLevel.MANDATORY)
        for rule in RESOURCE_RULES
    ]
    policies += [
        StackValidationPolicy(name=name, description=description, validate=_stack_validator(check),
                              enforcement_level=EnforcementLevel.MANDATORY)
        for name, description, check in STACK_RULES
    ]
    return policies
