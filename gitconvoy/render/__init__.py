"""Presentation: the stable JSON shapes and the text and markdown views (tables, waves,
mermaid, the state diff in words).

Pure functions from snapshots and plans to text. It may import state/ and plan/ only; the
commands decide what to print and where.
"""
