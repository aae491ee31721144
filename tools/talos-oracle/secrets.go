package main

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
)

type secretsGenerateRequest struct {
	VersionContract string `json:"version_contract"`
}

type secretsAnswer struct {
	Errors      []string `json:"errors"`
	SecretsYAML string   `json:"secrets_yaml,omitempty"`
}

// generateSecrets makes a fresh bundle as `talosctl gen secrets --talos-version <contract>` does.
func generateSecrets(req secretsGenerateRequest) (any, error) {
	contract, err := parseContract(req.VersionContract)
	if err != nil {
		return nil, err
	}

	bundle, err := secrets.NewBundle(secrets.NewFixedClock(time.Now()), contract)
	if err != nil {
		return nil, fmt.Errorf("generating the bundle: %w", err)
	}

	out, err := yaml.Marshal(bundle)
	if err != nil {
		return nil, err
	}

	return secretsAnswer{Errors: []string{}, SecretsYAML: string(out)}, nil
}

type secretsLoadRequest struct {
	SecretsYAML string `json:"secrets_yaml"`
}

// loadSecrets loads a bundle as `talosctl gen config --with-secrets` does, validates it and writes it back
// as `gen secrets` would.
func loadSecrets(req secretsLoadRequest) (any, error) {
	bundle, loadErr, err := loadBundle(req.SecretsYAML)
	if err != nil {
		return nil, err
	}

	if loadErr != nil {
		return secretsAnswer{Errors: messages(loadErr)}, nil
	}

	if err = bundle.Validate(); err != nil {
		return secretsAnswer{Errors: messages(err)}, nil
	}

	out, err := yaml.Marshal(bundle)
	if err != nil {
		return nil, err
	}

	return secretsAnswer{Errors: []string{}, SecretsYAML: string(out)}, nil
}

// parseContract maps "v1.13" (or "v1.13.9") to machinery's contract; an empty value is refused, since a nil
// contract would silently mean "this machinery's own version".
func parseContract(version string) (*config.VersionContract, error) {
	if version == "" {
		return nil, fmt.Errorf("version_contract is required (e.g. \"v1.13\")")
	}

	return config.ParseContractFromVersion(version)
}

// loadBundle reads a bundle through secrets.LoadBundle (which only reads files), so the decoding is Talos'
// own. loadErr is Talos rejecting the text; err is a local failure.
func loadBundle(text string) (bundle *secrets.Bundle, loadErr, err error) {
	err = withFiles([]string{text}, func(paths []string) {
		bundle, loadErr = secrets.LoadBundle(paths[0])
	})

	return bundle, loadErr, err
}
