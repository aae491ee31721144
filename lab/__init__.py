"""The lab: local Hetzner (Robot, Cloud, rescue systems, Image Factory) and Talos stand-ins on loopback.

Kept free of imports: the rescue shims import `lab.rescue.shim` with the system interpreter inside the
sandbox, where only the standard library is available.
"""
