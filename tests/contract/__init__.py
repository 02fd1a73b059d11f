"""Tests against one in-process server: the public contract, one behaviour each."""
