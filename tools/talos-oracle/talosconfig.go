package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
)

type talosconfigRequest struct {
	Talosconfig string `json:"talosconfig"`
}

type talosconfigAnswer struct {
	Errors []string `json:"errors"`
	// Stage is where it was refused: "load" (client config) or "client" (credentials, context, client.New).
	Stage    string                  `json:"stage,omitempty"`
	Context  string                  `json:"context,omitempty"`
	Contexts map[string]contextFacts `json:"contexts,omitempty"`
}

// contextFacts are what the client makes of one context: its targets and its client certificate.
type contextFacts struct {
	Endpoints []string `json:"endpoints"`
	Nodes     []string `json:"nodes"`
	// Roles are the client certificate's Subject Organization values, which carry Talos roles.
	Roles       []string `json:"roles"`
	CommonName  string   `json:"common_name"`
	Issuer      []string `json:"issuer_organizations"`
	ExtKeyUsage []string `json:"ext_key_usage"`
	KeyType     string   `json:"key_type"`
	IsCA        bool     `json:"is_ca"`
	ValidHours  float64  `json:"valid_hours"`
	// ChainError is empty when the client certificate verifies against the context's CA for client auth.
	ChainError string `json:"chain_error"`
}

// loadTalosconfig reads a talosconfig with Talos' client config package, builds a client from it (TLS
// credentials included; nothing is dialled) and describes each context's client certificate.
func loadTalosconfig(req talosconfigRequest) (any, error) {
	cfg, err := clientconfig.FromString(req.Talosconfig)
	if err != nil {
		return talosconfigAnswer{Errors: messages(err), Stage: "load"}, nil
	}

	answer := talosconfigAnswer{Errors: []string{}, Context: cfg.Context, Contexts: map[string]contextFacts{}}

	for name, ctx := range cfg.Contexts {
		facts, err := describeContext(ctx)
		if err != nil {
			answer.Errors = append(answer.Errors, fmt.Sprintf("context %q: %v", name, err))

			continue
		}

		answer.Contexts[name] = facts
	}

	if err = buildClient(cfg); err != nil {
		answer.Errors = append(answer.Errors, messages(err)...)
	}

	if len(answer.Errors) > 0 {
		answer.Stage = "client"
	}

	return answer, nil
}

// buildClient goes through client.New, which resolves the current context and builds its TLS credentials.
func buildClient(cfg *clientconfig.Config) error {
	options := []client.OptionFunc{client.WithConfig(cfg)}

	if current, ok := cfg.Contexts[cfg.Context]; ok && len(current.Endpoints) == 0 {
		// gen config writes no endpoints; the client refuses to start without one, so lend it a placeholder.
		options = append(options, client.WithEndpoints("127.0.0.1"))
	}

	c, err := client.New(context.Background(), options...)
	if err != nil {
		return err
	}

	return c.Close()
}

func describeContext(ctx *clientconfig.Context) (contextFacts, error) {
	pair, err := client.CertificateFromConfigContext(ctx)
	if err != nil {
		return contextFacts{}, err
	}

	if pair == nil {
		return contextFacts{}, errors.New("no client certificate")
	}

	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return contextFacts{}, err
	}

	facts := contextFacts{
		Endpoints:   nonNil(ctx.Endpoints),
		Nodes:       nonNil(ctx.Nodes),
		Roles:       nonNil(cert.Subject.Organization),
		CommonName:  cert.Subject.CommonName,
		Issuer:      nonNil(cert.Issuer.Organization),
		ExtKeyUsage: extKeyUsages(cert.ExtKeyUsage),
		KeyType:     cert.PublicKeyAlgorithm.String(),
		IsCA:        cert.IsCA,
		ValidHours:  cert.NotAfter.Sub(cert.NotBefore).Hours(),
	}

	if err = verifyClient(ctx.CA, cert); err != nil {
		facts.ChainError = err.Error()
	}

	return facts, nil
}

func verifyClient(caBase64 string, cert *x509.Certificate) error {
	caPEM, err := base64.StdEncoding.DecodeString(caBase64)
	if err != nil {
		return fmt.Errorf("decoding ca: %w", err)
	}

	roots := x509.NewCertPool()

	block, _ := pem.Decode(caPEM)
	if block == nil || !roots.AppendCertsFromPEM(caPEM) {
		return errors.New("ca holds no PEM certificate")
	}

	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: time.Now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})

	return err
}

func extKeyUsages(usages []x509.ExtKeyUsage) []string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageServerAuth: "server_auth",
		x509.ExtKeyUsageClientAuth: "client_auth",
		x509.ExtKeyUsageAny:        "any",
	}

	out := []string{}
	for _, usage := range usages {
		name, ok := names[usage]
		if !ok {
			name = fmt.Sprintf("other(%d)", usage)
		}

		out = append(out, name)
	}

	return out
}

func nonNil(values []string) []string {
	if values == nil {
		return []string{}
	}

	return values
}

type talosconfigMergeRequest struct {
	Talosconfig string `json:"talosconfig"`
	Merge       string `json:"merge"`
}

type talosconfigMergeAnswer struct {
	Errors      []string `json:"errors"`
	Talosconfig string   `json:"talosconfig,omitempty"`
}

// mergeTalosconfig merges one talosconfig into another as `talosctl config merge` does, and writes the result
// as Config.Save would.
func mergeTalosconfig(req talosconfigMergeRequest) (any, error) {
	existing, err := clientconfig.FromString(req.Talosconfig)
	if err != nil {
		return talosconfigMergeAnswer{Errors: messages(err)}, nil
	}

	merged, err := clientconfig.FromString(req.Merge)
	if err != nil {
		return talosconfigMergeAnswer{Errors: messages(err)}, nil
	}

	existing.Merge(merged)

	out, err := existing.Bytes()
	if err != nil {
		return nil, err
	}

	return talosconfigMergeAnswer{Errors: []string{}, Talosconfig: string(out)}, nil
}
