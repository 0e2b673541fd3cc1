"""Tests of the patrols package, a file per feature."""
