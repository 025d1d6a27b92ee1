"""pulumi-policy pack enforcing the HIPAA guardrails (`pulumi preview --policy-pack infra/policy`)."""
