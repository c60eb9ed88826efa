"""Helpers shared by every layer (the bottom of the dependency rule: it imports none of ours)."""
