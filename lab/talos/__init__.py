"""The lab's Talos node: apid over the real wire protocol and TLS, driven by simulated boots and installs.

`node.TalosNode` is the machine (boots, sequences, faults); `api` its gRPC services, `server` its TLS
listener, `resources` the COSI resources it serves, `machineconfig` how it reads configs, `storage` and
`disk_storage` what survives a reboot, `boot` the datacenter hook, `testing` fixtures for a node on its own.
"""
