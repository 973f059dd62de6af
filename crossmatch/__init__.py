"""crossmatch: matching entities across data sources that share no ids."""
__version__ = "0.1.0"
