"""The Talos API (apid, TCP 50000) in Python: gRPC over `ssl` with Ed25519 certificates, no talosctl.

`client.TalosClient` makes the calls (maintenance or authenticated mode), `errors` types their failures,
`waiting` waits for nodes to reach a state. Messages come from the project's own protos (`protos/`,
generated into `gen/` by `python -m talos.api.generate`).
"""
