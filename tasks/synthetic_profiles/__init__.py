"""Synthetic profiles: a seeded, offline stand-in for TOFU with the same schema and the same task logic."""
