"""The `claims` command line."""
