"""Loads the conformance harness; see fixtures/plugin.py and docs/DESIGN.md."""

pytest_plugins = ["fixtures.plugin"]
