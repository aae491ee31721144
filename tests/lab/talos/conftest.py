"""The lab node is tested through the project's own client, on standalone nodes."""

from lab.talos.testing import cluster, talos_network, talos_nodes  # noqa: F401
