"""Client tests run against standalone lab Talos nodes."""

from lab.talos.testing import cluster, talos_network, talos_nodes  # noqa: F401
