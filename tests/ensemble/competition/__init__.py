"""Tests of `ensemble.competition`: metric, layouts, landmark metrics."""
