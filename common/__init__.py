"""Small helpers shared by the hetzner and talos libraries: deadlines, waiting, retry policies."""
