"""Validation rules: reason-code catalog and the Python rule engine."""
