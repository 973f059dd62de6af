"""Prefect 3 orchestration of the DVC pipeline (and the ``crossmatch`` CLI)."""
