"""Probes: short seeded bursts, each measuring one thing on the device."""
