"""Tests for mlops_trace.parsers."""
