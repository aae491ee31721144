"""Fixtures for the provider tests: Talos API ports in each mode (shared with the hetzner tests)."""

from tests.hetzner.talos_ports import configured_port, maintenance_port

__all__ = ["configured_port", "maintenance_port"]
