"""Thin adapters that run doctor.watch inside a framework's own training loop (pip install doctor[lightning] / [hf])."""
