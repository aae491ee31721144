"""The talos-hetzner Pulumi program: the stack's Hetzner servers -> a bootstrapped Talos cluster.

Thin on purpose: the stack config is read and validated (components/stack.py), TalosCluster wires the rest.
"""

import pulumi

from components.cluster import TalosCluster, TalosClusterArgs
from components.stack import StackConfigError, read_stack_config, rescue_public_key

try:
    stack = read_stack_config()
except StackConfigError as error:
    raise pulumi.RunError(str(error)) from None

cluster = TalosCluster(stack.cluster_name, TalosClusterArgs(stack, rescue_public_key()))
pulumi.export("endpoint", stack.endpoint)
pulumi.export("nodes", cluster.addresses)
pulumi.export("talosconfig", cluster.talosconfig)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("secretsFingerprint", cluster.secrets.fingerprint)
pulumi.export("secretsYaml", cluster.secrets.secretsYaml)
pulumi.export(
    "rescuePasswords", pulumi.Output.secret({name: node.install.rescuePassword for name, node in cluster.nodes.items()})
)
