"""Tests of `ensemble.synthetic`: the procedural demo data."""
