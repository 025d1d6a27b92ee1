"""The lake: where every Delta table lives, how the stream appends to it, and how readers see the current claims.

Used by streaming, batch, the API and the bench alike.
"""

from libs.lake.readers import current_claims, read_delta, removals, silver_claims
from libs.lake.tables import LakeTables, ensure_table, pipeline_identity
from libs.lake.writes import OnceAppender

__all__ = ["LakeTables", "OnceAppender", "current_claims", "ensure_table", "pipeline_identity", "read_delta",
           "removals", "silver_claims"]
