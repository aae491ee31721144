package main

import (
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/validation"
)

// metalMode is the runtime mode of a bare-metal node installed to disk (talosctl's own type is internal).
type metalMode struct{}

func (metalMode) String() string        { return "metal" }
func (metalMode) RequiresInstall() bool { return true }
func (metalMode) InContainer() bool     { return false }

type validateRequest struct {
	Config string `json:"config"`
}

type validateAnswer struct {
	Errors []string `json:"errors"`
	// Warnings are those a document still reports in strict mode (v1alpha1 turns its own into errors).
	Warnings []string `json:"warnings"`
	// Stage is where the config was rejected: "load" (YAML, unknown fields, document kinds) or "validate".
	Stage string `json:"stage,omitempty"`
}

// validate loads a machine config as Talos does on boot and validates it as `talosctl validate --mode metal
// --strict` does.
func validate(req validateRequest) (any, error) {
	cfg, err := configloader.NewFromBytes([]byte(req.Config))
	if err != nil {
		return validateAnswer{Errors: messages(err), Warnings: []string{}, Stage: "load"}, nil
	}

	warnings, err := cfg.Validate(metalMode{}, validation.WithLocal(), validation.WithStrict())
	answer := validateAnswer{Errors: messages(err), Warnings: append([]string{}, warnings...)}

	if err != nil {
		answer.Stage = "validate"
	}

	return answer, nil
}

type encodeRequest struct {
	Config string `json:"config"`
}

type encodeAnswer struct {
	Errors []string `json:"errors"`
	Config string   `json:"config,omitempty"`
}

// encode loads a machine config into Talos' typed documents and writes them back as Talos writes a config it
// generated or patched: two configs with the same encoding mean the same to Talos.
func encode(req encodeRequest) (any, error) {
	cfg, err := configloader.NewFromBytes([]byte(req.Config))
	if err != nil {
		return encodeAnswer{Errors: messages(err)}, nil
	}

	out, err := cfg.EncodeBytes(encoder.WithComments(encoder.CommentsDisabled))
	if err != nil {
		return encodeAnswer{Errors: messages(err)}, nil
	}

	return encodeAnswer{Errors: []string{}, Config: string(out)}, nil
}
