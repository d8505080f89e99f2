"""Whole-command suites: every `ens` command's clean failures (no traceback, nothing written)."""
