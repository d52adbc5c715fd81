"""Loads the conformance harness in a checkout; see fixtures/plugin/ and docs/DESIGN.md.

An installed copy loads the same module through its ``pytest11`` entry point.
"""

pytest_plugins = ["qdrant_conformance.fixtures.plugin"]
