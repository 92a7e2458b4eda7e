"""Ironclad Lab helper library (placeholder until the lab library lands)."""
