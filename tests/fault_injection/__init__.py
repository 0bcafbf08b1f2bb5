"""Fault-injection suite (a package, so its test files may share names
with tests/test_*.py: tests/fault_injection/test_deploy.py and
tests/test_deploy.py)."""
