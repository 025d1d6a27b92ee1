"""The analytical warehouse: one schema source (schema.sql, DuckDB dialect) for DuckDB locally and Redshift in AWS."""
