"""Mandatory tags on every taggable AWS resource, applied once by a stack transformation.

Why a transformation rather than `tags=` everywhere: a resource added later cannot forget them. HIPAA asset inventory
relies on `data-classification=phi`; cost reports rely on `owner` and `environment`.
`is_taggable_type` answers "does this resource type accept tags?" from the provider SDK itself, so tests and the policy
pack check every taggable resource without a hand-kept list.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from functools import cache
from typing import Any

import pulumi

from infra.config import PROJECT, StackConfig

REQUIRED_TAG_KEYS = ("data-classification", "owner", "environment")
PHI_CLASSIFICATION = "phi"


def standard_tags(config: StackConfig) -> dict[str, str]:
    """The tags every resource of the stack carries; the mandatory keys win over `extraTags`."""
    tags = dict(config.extra_tags)
    if config.cost_center:
        tags["cost-center"] = config.cost_center
    tags.update({
        "project": PROJECT,
        "managed-by": "pulumi",
        "data-classification": PHI_CLASSIFICATION,
        "owner": config.owner,
        "environment": config.environment.value,
    })
    return tags


def merge_tags(existing: Mapping[str, str] | None, standard: Mapping[str, str]) -> dict[str, str]:
    """Resource-specific tags are kept; the standard tags override them (nobody can declassify a resource)."""
    return {**(existing or {}), **standard}


def register_tagging(standard: Mapping[str, str]) -> None:
    """Add `standard` to the `tags` of every resource registered after this call that has a `tags` input."""
    frozen = dict(standard)

    def add_tags(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not isinstance(args.props, dict) or "tags" not in args.props:
            return None
        existing = args.props.get("tags")
        if existing is None or isinstance(existing, Mapping):
            tags: Any = merge_tags(existing, frozen)
        else:
            tags = pulumi.Output.from_input(existing).apply(lambda value: merge_tags(value, frozen))
        return pulumi.ResourceTransformationResult(props={**args.props, "tags": tags}, opts=args.opts)

    pulumi.runtime.register_stack_transformation(add_tags)


@cache
def is_taggable_type(type_token: str) -> bool:
    """True when the pulumi-aws resource behind `type_token` (e.g. `aws:s3/bucket:Bucket`) accepts `tags`."""
    package, _, rest = type_token.partition(":")
    module_path, _, class_name = rest.partition(":")
    if package != "aws" or not class_name:
        return False
    module_name = module_path.split("/", 1)[0]
    module_fqn = "pulumi_aws" if module_name == "index" else f"pulumi_aws.{module_name}"
    try:
        module = importlib.import_module(module_fqn)
    except ImportError:
        return False
    args_class = getattr(module, f"{class_name}Args", None)
    if args_class is None:
        return False
    return "tags" in inspect.signature(args_class.__init__).parameters
