"""Tests of `analysis`: the computations and the report sections."""
