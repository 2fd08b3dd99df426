"""Tests of the benchmark runner (bench/)."""
