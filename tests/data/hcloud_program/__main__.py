"""Two Cloud servers: `plain` is deleted by destroy, `kept` is retained (destroy never wipes it)."""

import pulumi
import pulumi_hcloud as hcloud

for name, retain in (("plain", False), ("kept", True)):
    server = hcloud.Server(
        name,
        name=f"engine-{name}",
        server_type="cx23",
        image="debian-12",
        location="fsn1",
        labels={"purpose": "engine-test"},
        opts=pulumi.ResourceOptions(retain_on_delete=retain),
    )
    pulumi.export(f"{name}Id", server.id)
    pulumi.export(f"{name}Ipv4", server.ipv4_address)
