"""Presentation: the stable JSON shapes and the text views."""
