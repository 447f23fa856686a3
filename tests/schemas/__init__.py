"""Tests of Ketch's JSON Schemas, the generated config.json validator and the semantic rules."""
