"""Seeded synthetic claims with labelled defect and fraud injection.

    from libs.generator import GeneratorConfig, generate_claims, Label
    for claim, labels in generate_claims(GeneratorConfig(count=1000, seed=7)):
        ...

Every claim is a canonical `libs.model.Claim`; `labels` says which validation rule it was built to fail (kind
"defect", rule = a ReasonCode value) or which fraud scenario it carries (kind "fraud", rule = a FraudCode value).
"""

from libs.generator.config import DEFAULT_ANCHOR_DATE, GeneratorConfig
from libs.generator.engine import claim_id_for, claim_json, generate_claims, generate_records
from libs.generator.labels import Label, LabelKind

__all__ = [
    "DEFAULT_ANCHOR_DATE",
    "GeneratorConfig",
    "Label",
    "LabelKind",
    "claim_id_for",
    "claim_json",
    "generate_claims",
    "generate_records",
]
