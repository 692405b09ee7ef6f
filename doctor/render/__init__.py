"""Render: a typed Report to text, JSON, Markdown and HTML."""
