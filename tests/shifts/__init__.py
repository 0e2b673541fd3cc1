"""Tests of the shifts package, a file per feature."""
