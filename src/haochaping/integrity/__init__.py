"""Integrity (防刷评、防恶意差评): detectors that flag suspect ratings, and their review."""
