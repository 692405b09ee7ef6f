"""Report templates (Jinja) and their CSS, shipped as package data."""
