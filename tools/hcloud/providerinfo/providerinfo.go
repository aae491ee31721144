// Package providerinfo maps the Hetzner Cloud Terraform provider onto Pulumi tokens for the bridge.
//
// Upstream's pulumi-hcloud/provider module is not served by the Go module proxy this project reaches, so the project
// keeps this equivalent mapping: every `hcloud_<name>` resource and data source becomes `hcloud:index/<name>:<Name>`
// (the tokens the pulumi_hcloud Python package uses), with the same auto-naming and `id` handling as upstream.
package providerinfo

import (
	"context"

	"github.com/hetznercloud/terraform-provider-hcloud/hcloud"
	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Version is the plugin version; the build sets it to the pinned pulumi_hcloud package's version.
var Version = "0.0.0-dev"

// Info builds the bridge's provider description. metadata is the generated bridge-metadata.json (nil while
// generating it).
func Info(metadata []byte) tfbridge.ProviderInfo {
	ctx := context.Background()
	info := tfbridge.ProviderInfo{
		P:            pftfbridge.MuxShimWithPF(ctx, shimv2.NewProvider(hcloud.Provider()), hcloud.NewPluginProvider()),
		Name:         "hcloud",
		Description:  "Hetzner Cloud resources, bridged from terraform-provider-hcloud for talos-hetzner",
		GitHubOrg:    "hetznercloud",
		License:      "Apache-2.0",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Version:      Version,
		Resources: map[string]*tfbridge.ResourceInfo{
			"hcloud_server": {PreCheckCallback: defaultAliasIps},
		},
	}
	// Pulumi ids are strings; a resource whose Terraform `id` attribute is typed otherwise is exposed as a string.
	info.P.ResourcesMap().Range(func(name string, res shim.Resource) bool {
		if id, ok := res.Schema().GetOk("id"); ok && id.Type() != shim.TypeString {
			r := info.Resources[name]
			if r == nil {
				r = &tfbridge.ResourceInfo{}
				info.Resources[name] = r
			}
			if r.Fields == nil {
				r.Fields = map[string]*tfbridge.SchemaInfo{}
			}
			r.Fields["id"] = &tfbridge.SchemaInfo{Type: "string"}
		}
		return true
	})
	info.MustComputeTokens(tokens.SingleModule("hcloud_", "index", tokens.MakeStandard("hcloud")))
	info.SetAutonaming(255, "-")
	return info
}

// defaultAliasIps gives every entry of a server's `networks` an explicit empty `aliasIps` list: the Terraform
// provider otherwise reports a permanent diff for an omitted list (terraform-provider-hcloud issue 650).
func defaultAliasIps(
	_ context.Context, config resource.PropertyMap, _ resource.PropertyMap,
) (resource.PropertyMap, error) {
	networks, ok := config["networks"]
	if !ok || !networks.IsArray() {
		return config, nil
	}
	for _, network := range networks.ArrayValue() {
		if !network.IsObject() {
			continue
		}
		if _, set := network.ObjectValue()["aliasIps"]; !set {
			network.ObjectValue()["aliasIps"] = resource.NewProperty([]resource.PropertyValue{})
		}
	}
	return config, nil
}
