"""The dfc runtime: the ``df`` schema for stock PostgreSQL and the worker that executes plans."""
