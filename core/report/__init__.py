"""Sweep reports: their numbers, their sections and the document they make."""
