package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/cosi-project/runtime/pkg/resource"
	"github.com/cosi-project/runtime/pkg/state"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	machineapi "github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	configres "github.com/siderolabs/talos/pkg/machinery/resources/config"
)

// callTimeout bounds one call against the node; the node is local, so anything longer is a hang.
const callTimeout = 30 * time.Second

// target says how machinery's client reaches the node, as talosctl would.
type target struct {
	// Talosconfig is the client config to use (client.WithConfig); empty means maintenance mode: TLS without a
	// client certificate and without verifying the node, as `talosctl --insecure` does.
	Talosconfig string `json:"talosconfig"`
	// Endpoints override the talosconfig's (client.WithEndpoints); required in maintenance mode.
	Endpoints []string `json:"endpoints"`
	// Node, when set, asks the endpoint to proxy the call there (client.WithNode, `node` metadata).
	Node string `json:"node"`
	// Nodes, when set, makes the call one-to-many (client.WithNodes, `nodes` metadata).
	Nodes []string `json:"nodes"`
}

// callAnswer is what every wire command reports: the refusal, if any, and its gRPC code.
type callAnswer struct {
	Errors []string `json:"errors"`
	// Stage is where it failed: "client" (client.New refused the options) or "call".
	Stage string `json:"stage,omitempty"`
	// Code is the gRPC status code name of a failed call ("PermissionDenied", "Unavailable", ...).
	Code string `json:"code,omitempty"`
}

// withClient builds machinery's client for t, runs fn with a context carrying t's node metadata, and turns a
// failure into the answer's errors.
func withClient(t target, fn func(ctx context.Context, c *client.Client) error) (callAnswer, error) {
	options, err := clientOptions(t)
	if err != nil {
		return callAnswer{}, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()

	c, err := client.New(ctx, options...)
	if err != nil {
		return callAnswer{Errors: messages(err), Stage: "client"}, nil
	}

	defer c.Close() //nolint:errcheck

	switch {
	case t.Node != "":
		ctx = client.WithNode(ctx, t.Node)
	case len(t.Nodes) > 0:
		ctx = client.WithNodes(ctx, t.Nodes...)
	}

	if err = fn(ctx, c); err != nil {
		return callAnswer{Errors: messages(err), Stage: "call", Code: grpcCode(err).String()}, nil
	}

	return callAnswer{Errors: []string{}}, nil
}

// grpcCode is the gRPC code of a failed call; COSI's client turns NotFound into its own error type, which
// talosctl recognises with state.IsNotFoundError.
func grpcCode(err error) codes.Code {
	if state.IsNotFoundError(err) {
		return codes.NotFound
	}

	return status.Code(err)
}

func clientOptions(t target) ([]client.OptionFunc, error) {
	if t.Node != "" && len(t.Nodes) > 0 {
		return nil, errors.New("bad request: give node or nodes, not both")
	}

	var options []client.OptionFunc

	if t.Talosconfig == "" {
		if len(t.Endpoints) == 0 {
			return nil, errors.New("bad request: maintenance mode needs endpoints")
		}

		options = append(options, client.WithTLSConfig(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec
	} else {
		cfg, err := clientconfig.FromString(t.Talosconfig)
		if err != nil {
			return nil, fmt.Errorf("bad request: talosconfig: %w", err)
		}

		options = append(options, client.WithConfig(cfg))
	}

	if len(t.Endpoints) > 0 {
		options = append(options, client.WithEndpoints(t.Endpoints...))
	}

	return options, nil
}

type versionRequest struct {
	target
}

type versionAnswer struct {
	callAnswer
	Tag          string `json:"tag,omitempty"`
	SHA          string `json:"sha,omitempty"`
	Arch         string `json:"arch,omitempty"`
	Platform     string `json:"platform,omitempty"`
	PlatformMode string `json:"platform_mode,omitempty"`
	// Configured is whether the reply carries `features`, which a node only sends with a machine config.
	Configured bool `json:"configured"`
	RBAC       bool `json:"rbac"`
	// Hostnames are the replies' metadata.hostname, one per node that answered.
	Hostnames []string `json:"hostnames,omitempty"`
}

// apiVersion calls MachineService/Version as `talosctl version` does.
func apiVersion(req versionRequest) (any, error) {
	var answer versionAnswer

	called, err := withClient(req.target, func(ctx context.Context, c *client.Client) error {
		resp, err := c.Version(ctx)
		if err != nil {
			return err
		}

		for _, message := range resp.GetMessages() {
			answer.Hostnames = append(answer.Hostnames, message.GetMetadata().GetHostname())
		}

		first := resp.GetMessages()[0]
		answer.Tag = first.GetVersion().GetTag()
		answer.SHA = first.GetVersion().GetSha()
		answer.Arch = first.GetVersion().GetArch()
		answer.Platform = first.GetPlatform().GetName()
		answer.PlatformMode = first.GetPlatform().GetMode()
		answer.Configured = first.GetFeatures() != nil
		answer.RBAC = first.GetFeatures().GetRbac()

		return nil
	})
	answer.callAnswer = called

	return answer, err
}

type applyRequest struct {
	target
	Config string `json:"config"`
	// Mode is the ApplyConfigurationRequest.Mode name: REBOOT, AUTO, NO_REBOOT, STAGED or TRY.
	Mode   string `json:"mode"`
	DryRun bool   `json:"dry_run"`
}

type applyAnswer struct {
	callAnswer
	Mode        string   `json:"mode,omitempty"`
	ModeDetails string   `json:"mode_details,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

// apiApply calls MachineService/ApplyConfiguration as `talosctl apply-config` does.
func apiApply(req applyRequest) (any, error) {
	mode, ok := machineapi.ApplyConfigurationRequest_Mode_value[req.Mode]
	if !ok {
		return nil, fmt.Errorf("bad request: mode %q is not an ApplyConfigurationRequest.Mode name", req.Mode)
	}

	var answer applyAnswer

	called, err := withClient(req.target, func(ctx context.Context, c *client.Client) error {
		resp, err := c.ApplyConfiguration(ctx, &machineapi.ApplyConfigurationRequest{
			Data:   []byte(req.Config),
			Mode:   machineapi.ApplyConfigurationRequest_Mode(mode),
			DryRun: req.DryRun,
		})
		if err != nil {
			return err
		}

		first := resp.GetMessages()[0]
		answer.Mode = first.GetMode().String()
		answer.ModeDetails = first.GetModeDetails()
		answer.Warnings = first.GetWarnings()

		return nil
	})
	answer.callAnswer = called

	return answer, err
}

type bootstrapRequest struct {
	target
}

// apiBootstrap calls MachineService/Bootstrap as `talosctl bootstrap` does.
func apiBootstrap(req bootstrapRequest) (any, error) {
	return withClient(req.target, func(ctx context.Context, c *client.Client) error {
		return c.Bootstrap(ctx, &machineapi.BootstrapRequest{})
	})
}

type kubeconfigRequest struct {
	target
}

type kubeconfigAnswer struct {
	callAnswer
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// apiKubeconfig calls MachineService/Kubeconfig and unpacks the archive as `talosctl kubeconfig` does.
func apiKubeconfig(req kubeconfigRequest) (any, error) {
	var answer kubeconfigAnswer

	called, err := withClient(req.target, func(ctx context.Context, c *client.Client) error {
		kubeconfig, err := c.Kubeconfig(ctx)
		answer.Kubeconfig = string(kubeconfig)

		return err
	})
	answer.callAnswer = called

	return answer, err
}

type machineConfigRequest struct {
	target
	// ID is the MachineConfig resource: "v1alpha1" (active) or "persistent".
	ID string `json:"id"`
}

type machineConfigAnswer struct {
	callAnswer
	Namespace   string            `json:"namespace,omitempty"`
	Type        string            `json:"type,omitempty"`
	ID          string            `json:"id,omitempty"`
	Version     string            `json:"version,omitempty"`
	Phase       string            `json:"phase,omitempty"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Config is the machine config the resource carries, as Talos' config loader read it back.
	Config string `json:"config,omitempty"`
}

// apiMachineConfig reads a MachineConfigs.config.talos.dev resource through COSI (State/Get), decoded into
// machinery's typed resource, as `talosctl get machineconfig` does.
func apiMachineConfig(req machineConfigRequest) (any, error) {
	var answer machineConfigAnswer

	called, err := withClient(req.target, func(ctx context.Context, c *client.Client) error {
		pointer := resource.NewMetadata(configres.NamespaceName, configres.MachineConfigType, req.ID, resource.VersionUndefined)

		got, err := c.COSI.Get(ctx, pointer)
		if err != nil {
			return err
		}

		machineConfig, ok := got.(*configres.MachineConfig)
		if !ok {
			return fmt.Errorf("COSI returned %T, not the typed MachineConfig", got)
		}

		config, err := machineConfig.Provider().Bytes()
		if err != nil {
			return err
		}

		md := machineConfig.Metadata()
		answer.Namespace, answer.Type, answer.ID = md.Namespace(), md.Type(), md.ID()
		answer.Version, answer.Phase, answer.Owner = md.Version().String(), md.Phase().String(), md.Owner()
		answer.Annotations, answer.Labels = md.Annotations().Raw(), md.Labels().Raw()
		answer.Config = string(config)

		return nil
	})
	answer.callAnswer = called

	return answer, err
}
