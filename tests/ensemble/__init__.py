"""Tests of the `ensemble` package, one folder per subpackage."""
