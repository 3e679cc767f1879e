"""Importers: Markdown PRD and YAML plan (via one outline and a pure builder), beads JSONL."""
