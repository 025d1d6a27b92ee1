"""Fraud and anomaly screening: scenario codes and rules."""
