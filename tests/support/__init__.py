"""Helpers shared by the tests: reference models, universes, live-service harnesses, fakes.

Test modules import from here; ``tests/conftest.py`` holds only fixtures and hooks.
"""
