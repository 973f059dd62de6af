"""Reading, validating and normalising inputs; adapters for the real datasets."""

from crossmatch.io.ingest import IngestResult, ingest
from crossmatch.io.readers import Table, read_table, read_tables

__all__ = ["IngestResult", "Table", "ingest", "read_table", "read_tables"]
