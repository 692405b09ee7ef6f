"""Judge: load YAML rules, evaluate them against metrics, rank causes."""
