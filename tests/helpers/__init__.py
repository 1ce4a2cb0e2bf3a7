"""Test-only helpers: independent reference implementations used by several test modules."""
