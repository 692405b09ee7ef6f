"""Static analysis: facts from the module tree, the traced graph and the target's source, before any training step.

`analysis.Analysis` holds the three sources, each computed on first use and cached; the checks
in `checks` turn them into catalogue metrics (doctor/catalogue/static.py). The probe
`doctor/collect/probes/static_facts.py` runs them and writes the Metrics document.
"""
