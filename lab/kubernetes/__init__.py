"""The lab's minimal Kubernetes API: what each control plane answers on `:6443` after bootstrap, so that
the official `kubernetes` client can list the cluster's nodes with the kubeconfig Talos hands out.

`server.KubernetesApi` serves it; `objects` holds the API shapes, `access` authentication and authorisation,
`tls` the serving certificate and TLS settings.
"""

from lab.kubernetes.objects import NodeInfo
from lab.kubernetes.server import API_PORT, KubernetesApi

__all__ = ["API_PORT", "KubernetesApi", "NodeInfo"]
