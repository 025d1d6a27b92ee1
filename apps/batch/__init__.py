"""The daily batch app (spark-submit entry point in main.py)."""
