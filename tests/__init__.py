"""Tests of ens, laid out like the source; `helpers` holds what several test modules share."""
