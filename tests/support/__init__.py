"""Helpers shared by tests (real servers and the like); not a test module."""
