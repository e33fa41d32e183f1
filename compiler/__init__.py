"""The dfc compiler: parses .dsql files into a typed IR, checks it, optimizes it and emits plans.

Pipeline (written once, in :mod:`compiler.pipeline`): parse → lower → check → optimize → emit.
"""
