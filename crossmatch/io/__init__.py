"""Reading, validating and normalising inputs; adapters for the real datasets."""

from crossmatch.io.ingest import IngestResult, ingest
from crossmatch.io.readers import LazyTable, Table, read_table, read_tables, scan_table, scan_tables

__all__ = ["IngestResult", "LazyTable", "Table", "ingest", "read_table", "read_tables", "scan_table", "scan_tables"]
