"""Importers: Markdown PRD and YAML plan (via one outline and a pure builder), beads JSONL.

Parsing is pure; writing the result goes through one store transaction. It may import
state/ and plan/ only: an import never dispatches or lands.
"""
