"""Semantics-preserving optimizer passes, one module per pass; the order is in ``RULES``."""
