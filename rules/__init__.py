"""Built-in rules: one YAML file per rule under <family>/, shipped as package data."""
