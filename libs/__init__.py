"""Domain core and platform glue shared by every app: pure functions wherever possible."""
