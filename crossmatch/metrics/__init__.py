"""Evaluation metrics, one concern per module (ranking, alignment, transfer, ...)."""
