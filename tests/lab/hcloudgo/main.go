// Command hcloudgo drives the lab's Cloud API with hcloud-go, the client inside the pulumi-hcloud provider,
// along the calls the provider makes for servers, SSH keys and DNS (hetzner.md §9). It prints one JSON
// object with what it observed; any error is fatal and names the step.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

type report map[string]any

func main() {
	ctx := context.Background()
	client := hcloud.NewClient(
		hcloud.WithToken(os.Getenv("HCLOUD_TOKEN")),
		hcloud.WithEndpoint(os.Getenv("HCLOUD_ENDPOINT")),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(20 * time.Millisecond)}),
	)
	out := report{}
	must := func(step string, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
			os.Exit(1)
		}
	}

	serverType, _, err := client.ServerType.Get(ctx, "cx23")
	must("server type", err)
	image, _, err := client.Image.GetForArchitecture(ctx, "debian-12", serverType.Architecture)
	must("image", err)
	key, _, err := client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "ops", PublicKey: os.Getenv("PUBLIC_KEY"), Labels: map[string]string{}})
	must("ssh key create", err)
	found, _, err := client.SSHKey.GetByName(ctx, "ops")
	must("ssh key by name", err)
	out["ssh_key_same"] = found.ID == key.ID && found.Fingerprint == key.Fingerprint

	created, _, err := client.Server.Create(ctx, hcloud.ServerCreateOpts{
		Name: "cp-go", ServerType: serverType, Image: image, Location: &hcloud.Location{Name: "fsn1"},
		SSHKeys: []*hcloud.SSHKey{key}, UserData: "#lab", Labels: map[string]string{"role": "cp"},
	})
	must("server create", err)
	must("wait create", client.Action.WaitFor(ctx, append([]*hcloud.Action{created.Action}, created.NextActions...)...))
	server, _, err := client.Server.GetByID(ctx, created.Server.ID)
	must("server get", err)
	out["status"] = string(server.Status)
	out["ipv4"] = server.PublicNet.IPv4.IP.String()
	out["ipv6"] = server.PublicNet.IPv6.Network.String()
	out["server_type"] = server.ServerType.Name
	out["location"] = server.Location.Name

	rescue, _, err := client.Server.EnableRescue(ctx, server, hcloud.ServerEnableRescueOpts{Type: hcloud.ServerRescueTypeLinux64, SSHKeys: []*hcloud.SSHKey{key}})
	must("enable rescue", err)
	must("wait rescue", client.Action.WaitFor(ctx, rescue.Action))
	out["root_password_set"] = rescue.RootPassword != ""
	reset, _, err := client.Server.Reset(ctx, server)
	must("reset", err)
	must("wait reset", client.Action.WaitFor(ctx, reset))
	afterReset, _, err := client.Server.GetByID(ctx, server.ID)
	must("server get after reset", err)
	out["status_after_reset"] = string(afterReset.Status)

	missing, _, err := client.Server.GetByID(ctx, 1)
	must("missing server", err)
	out["missing_is_nil"] = missing == nil
	byName, _, err := client.Server.GetByName(ctx, "cp-go")
	must("server by name", err)
	out["by_name_same"] = byName.ID == server.ID

	zone, _, err := client.Zone.Create(ctx, hcloud.ZoneCreateOpts{Name: "example.com", Mode: hcloud.ZoneModePrimary})
	must("zone create", err)
	must("wait zone", client.Action.WaitFor(ctx, zone.Action))
	rrset := &hcloud.ZoneRRSet{Zone: zone.Zone, Name: "api", Type: hcloud.ZoneRRSetTypeA}
	ttl := 60
	for _, ip := range []string{"127.0.1.10", "127.0.2.10"} {
		action, _, err := client.Zone.AddRRSetRecords(ctx, rrset, hcloud.ZoneRRSetAddRecordsOpts{Records: []hcloud.ZoneRRSetRecord{{Value: ip}}, TTL: &ttl})
		must("add records", err)
		must("wait add", client.Action.WaitFor(ctx, action))
	}
	got, _, err := client.Zone.GetRRSetByNameAndType(ctx, zone.Zone, "api", hcloud.ZoneRRSetTypeA)
	must("rrset get", err)
	values := []string{}
	for _, record := range got.Records {
		values = append(values, record.Value)
	}
	out["rrset_values"] = values
	out["rrset_ttl"] = *got.TTL

	deleted, _, err := client.Server.DeleteWithResult(ctx, server)
	must("server delete", err)
	must("wait delete", client.Action.WaitFor(ctx, deleted.Action))
	_, err = client.SSHKey.Delete(ctx, key)
	must("ssh key delete", err)

	_, _, err = client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "bad name", ServerType: serverType, Image: image})
	var apiErr hcloud.Error
	out["invalid_input_fields"] = errors.As(err, &apiErr) && apiErr.Code == hcloud.ErrorCodeInvalidInput
	if details, ok := apiErr.Details.(hcloud.ErrorDetailsInvalidInput); ok && len(details.Fields) > 0 {
		out["invalid_field"] = details.Fields[0].Name
	}
	must("encode", json.NewEncoder(os.Stdout).Encode(out))
}
