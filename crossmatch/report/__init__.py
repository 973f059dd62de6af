"""Turning metrics into the human report: headline numbers, markdown tables, figures."""
