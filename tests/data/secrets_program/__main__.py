"""A minimal program for the engine tests: the cluster's secrets bundle only.

It proves the whole chain (engine -> language host -> dynamic-provider launcher -> configure() ->
check/create/diff/read/delete) without servers; the project's own program is tested in tests/e2e.
"""

import pulumi
from pulumi.runtime.config import is_config_secret

from providers.cluster_secrets import SECRETS_BUNDLE_CONFIG, ClusterSecrets, ClusterSecretsArgs

config = pulumi.Config()
bundle_key = f"{pulumi.get_project()}:{SECRETS_BUNDLE_CONFIG}"
if config.get(SECRETS_BUNDLE_CONFIG) and not is_config_secret(bundle_key):
    raise pulumi.RunError(
        f"config {SECRETS_BUNDLE_CONFIG} is stored in plain text (fix: pulumi config rm {SECRETS_BUNDLE_CONFIG}, "
        f"then pulumi config set --secret {SECRETS_BUNDLE_CONFIG} < secrets.yaml, and rotate the cluster's secrets)"
    )
secrets = ClusterSecrets("cluster-secrets", ClusterSecretsArgs(talos_version=config.require("talosVersion")))
pulumi.export("secretsFingerprint", secrets.fingerprint)
pulumi.export("secretsYaml", secrets.secretsYaml)
