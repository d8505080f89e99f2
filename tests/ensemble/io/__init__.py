"""Tests of `ensemble.io`: the file formats and their readers and writers."""
