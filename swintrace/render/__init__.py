"""Renderers: pure functions from a Trace to Markdown, HTML or a terminal tree."""
