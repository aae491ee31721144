package main

import (
	"errors"
	"sort"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/siderolabs/talos/pkg/machinery/config/bundle"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
)

// generateRequest holds every `talosctl gen config` input explicitly: machinery's own defaults differ from
// talosctl's flags (no install disk, no installer image, its own version when no contract is given).
type generateRequest struct {
	SecretsYAML       string   `json:"secrets_yaml"`
	VersionContract   string   `json:"version_contract"`
	ClusterName       string   `json:"cluster_name"`
	Endpoint          string   `json:"endpoint"`
	KubernetesVersion string   `json:"kubernetes_version"`
	DNSDomain         string   `json:"dns_domain"`
	InstallDisk       string   `json:"install_disk"`
	InstallImage      string   `json:"install_image"`
	Discovery         *bool    `json:"discovery"`
	AdditionalSANs    []string `json:"additional_sans"`
	// Patches apply to every type, then PatchesControlPlane to the control plane, PatchesWorker to the worker.
	Patches             []string `json:"patches"`
	PatchesControlPlane []string `json:"patches_control_plane"`
	PatchesWorker       []string `json:"patches_worker"`
}

type generateAnswer struct {
	Errors       []string `json:"errors"`
	Stage        string   `json:"stage,omitempty"`
	ControlPlane string   `json:"controlplane,omitempty"`
	Worker       string   `json:"worker,omitempty"`
	Talosconfig  string   `json:"talosconfig,omitempty"`
}

// generateConfigs does what `talosctl gen config --with-secrets ... --with-docs=false --with-examples=false`
// does, with every flag given.
func generateConfigs(req generateRequest) (any, error) {
	if err := req.check(); err != nil {
		return nil, err
	}

	contract, err := parseContract(req.VersionContract)
	if err != nil {
		return nil, err
	}

	secretsBundle, loadErr, err := loadBundle(req.SecretsYAML)
	if err != nil {
		return nil, err
	}

	if loadErr == nil {
		loadErr = secretsBundle.Validate()
	}

	if loadErr != nil {
		return generateAnswer{Errors: messages(loadErr), Stage: "secrets"}, nil
	}

	options := []bundle.Option{
		bundle.WithVerbose(false),
		bundle.WithInputOptions(&bundle.InputOptions{
			ClusterName: req.ClusterName,
			Endpoint:    req.Endpoint,
			KubeVersion: strings.TrimPrefix(req.KubernetesVersion, "v"),
			GenOptions: []generate.Option{
				generate.WithVersionContract(contract),
				generate.WithSecretsBundle(secretsBundle),
				generate.WithInstallDisk(req.InstallDisk),
				generate.WithInstallImage(req.InstallImage),
				generate.WithAdditionalSubjectAltNames(req.AdditionalSANs),
				generate.WithDNSDomain(req.DNSDomain),
				generate.WithClusterDiscovery(*req.Discovery),
			},
		}),
	}

	for _, group := range []struct {
		texts  []string
		option func([]configpatcher.Patch) bundle.Option
	}{
		{req.Patches, bundle.WithPatch},
		{req.PatchesControlPlane, bundle.WithPatchControlPlane},
		{req.PatchesWorker, bundle.WithPatchWorker},
	} {
		patches, patchErr, err := loadPatches(group.texts)
		if err != nil {
			return nil, err
		}

		if patchErr != nil {
			return generateAnswer{Errors: messages(patchErr), Stage: "patches"}, nil
		}

		options = append(options, group.option(patches))
	}

	configs, err := bundle.NewBundle(options...)
	if err != nil {
		return generateAnswer{Errors: messages(err), Stage: "generate"}, nil
	}

	return encodeBundle(configs)
}

func (req generateRequest) check() error {
	var missing []string

	for name, value := range map[string]string{
		"secrets_yaml":       req.SecretsYAML,
		"cluster_name":       req.ClusterName,
		"endpoint":           req.Endpoint,
		"kubernetes_version": req.KubernetesVersion,
		"dns_domain":         req.DNSDomain,
		"install_image":      req.InstallImage,
	} {
		if value == "" {
			missing = append(missing, name)
		}
	}

	if req.Discovery == nil {
		missing = append(missing, "discovery")
	}

	if len(missing) > 0 {
		sort.Strings(missing)

		return errors.New("missing fields (give every input explicitly): " + strings.Join(missing, ", "))
	}

	return nil
}

func encodeBundle(configs *bundle.Bundle) (any, error) {
	answer := generateAnswer{Errors: []string{}}

	for _, out := range []struct {
		kind machine.Type
		into *string
	}{
		{machine.TypeControlPlane, &answer.ControlPlane},
		{machine.TypeWorker, &answer.Worker},
	} {
		data, err := configs.Serialize(encoder.CommentsDisabled, out.kind)
		if err != nil {
			return nil, err
		}

		*out.into = string(data)
	}

	talosconfig, err := yaml.Marshal(configs.TalosConfig())
	if err != nil {
		return nil, err
	}

	answer.Talosconfig = string(talosconfig)

	return answer, nil
}
