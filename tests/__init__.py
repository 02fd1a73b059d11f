"""Test suite of the chat server (a package, so ``tests.support`` imports from the repo root)."""
