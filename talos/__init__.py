"""Talos Linux in plain Python: secrets bundle, machine configs, patches, talosconfig, the Talos API.

No Pulumi in here: the providers translate Pulumi's lifecycle into calls on this package.
"""
