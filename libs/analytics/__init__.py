"""Analytics over the warehouse: the marts (one SQL source for DuckDB, Redshift and Spark) and the query functions
that the CLI (`claims analytics ...`) and the API serve."""
