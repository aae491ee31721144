package main

import (
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
)

type patchRequest struct {
	Config  string   `json:"config"`
	Patches []string `json:"patches"`
}

type patchAnswer struct {
	Errors []string `json:"errors"`
	// Stage is where patching failed: "load" (the patches) or "apply".
	Stage  string `json:"stage,omitempty"`
	Config string `json:"config,omitempty"`
}

// patchConfig applies patches in order as `talosctl machineconfig patch --patch @file ...` does.
func patchConfig(req patchRequest) (any, error) {
	patches, loadErr, err := loadPatches(req.Patches)
	if err != nil {
		return nil, err
	}

	if loadErr != nil {
		return patchAnswer{Errors: messages(loadErr), Stage: "load"}, nil
	}

	out, err := configpatcher.Apply(configpatcher.WithBytes([]byte(req.Config)), patches)
	if err != nil {
		return patchAnswer{Errors: messages(err), Stage: "apply"}, nil
	}

	patched, err := out.Bytes()
	if err != nil {
		return patchAnswer{Errors: messages(err), Stage: "apply"}, nil
	}

	return patchAnswer{Errors: []string{}, Config: string(patched)}, nil
}

// loadPatches loads patch texts through configpatcher.LoadPatches as `@file` arguments, the way talosctl
// reads them (adjacent JSON patches are joined there). loadErr is Talos rejecting a patch.
func loadPatches(texts []string) (patches []configpatcher.Patch, loadErr, err error) {
	err = withFiles(texts, func(paths []string) {
		args := make([]string, len(paths))
		for i, path := range paths {
			args[i] = "@" + path
		}

		patches, loadErr = configpatcher.LoadPatches(args)
	})

	return patches, loadErr, err
}
