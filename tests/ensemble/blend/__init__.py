"""Tests of `ensemble.blend`: weights, fits, fusion, combiners."""
