// Command pulumi-resource-hcloud serves the Hetzner Cloud Terraform provider to the Pulumi engine through the
// bridge.
//
// Upstream's main embeds a generated schema that its module does not contain. This one generates the schema and
// the bridge metadata at build time (`pulumi-resource-hcloud tfgen schema --out hcloud-schema ...`, run by the
// build next to the binary) and reads them from there at startup.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	"talos-hetzner.local/tools/hcloud/providerinfo"
)

const generatedDir = "hcloud-schema"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "tfgen" {
		os.Args = append(os.Args[:1], os.Args[2:]...)
		pftfgen.MainWithMuxer("hcloud", providerinfo.Info(nil))
		return
	}
	schema, metadata, err := readGenerated()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-hcloud: %v (rebuild with: .venv/bin/python -m tools.build hcloud)\n", err)
		os.Exit(1)
	}
	pftfbridge.MainWithMuxer(context.Background(), "hcloud", providerinfo.Info(metadata), schema)
}

// readGenerated loads what `tfgen schema` wrote into hcloud-schema/ next to this binary.
func readGenerated() (schema, metadata []byte, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(filepath.Dir(self), generatedDir)
	if schema, err = os.ReadFile(filepath.Join(dir, "schema.json")); err != nil {
		return nil, nil, err
	}
	if metadata, err = os.ReadFile(filepath.Join(dir, "bridge-metadata.json")); err != nil {
		return nil, nil, err
	}
	return schema, metadata, nil
}
