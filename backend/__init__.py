"""Ironclad backend service."""
