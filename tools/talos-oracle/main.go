// Command talos-oracle answers questions about Talos machine configs with Talos' own Go machinery, so the
// project's Python reimplementation of `talosctl gen secrets/gen config`, patching and talosconfig can be
// checked against the real thing; its api-* commands are machinery's API client against a live (lab) node, and
// `descriptors` dumps the Talos API's proto descriptors, for the project's own client and protos.
//
// Usage: talos-oracle <command> < request.json > answer.json
//
// One JSON object in, one JSON object out. An input that Talos rejects is an answer, not a failure: every
// answer carries `errors` (empty when Talos accepted the input), and `stage` says where it was refused; a
// panic inside machinery (talosctl would crash) is reported as stage "panic". Exit status 1 means the
// request itself was unusable (unknown field, missing value) and is reported on stderr; 2 is a usage error.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type command func(request []byte) (any, error)

// commands maps each subcommand to its handler.
//
// The api-* commands are machinery's API client against a live node (the lab's): each takes the talosconfig
// (or nothing, for maintenance mode's insecure TLS), endpoints and optional node(s) in the request, makes one
// call and reports its result or its gRPC code. `descriptors` dumps the Talos API's proto descriptors.
var commands = map[string]command{
	"info":               handle(info),
	"validate":           handle(validate),
	"encode":             handle(encode),
	"secrets-generate":   handle(generateSecrets),
	"secrets-load":       handle(loadSecrets),
	"generate":           handle(generateConfigs),
	"patch":              handle(patchConfig),
	"talosconfig":        handle(loadTalosconfig),
	"talosconfig-merge":  handle(mergeTalosconfig),
	"api-version":        handle(apiVersion),
	"api-apply":          handle(apiApply),
	"api-bootstrap":      handle(apiBootstrap),
	"api-kubeconfig":     handle(apiKubeconfig),
	"api-machine-config": handle(apiMachineConfig),
	"descriptors":        handle(dumpDescriptors),
}

func main() {
	if len(os.Args) != 2 || commands[os.Args[1]] == nil {
		names := make([]string, 0, len(commands))
		for name := range commands {
			names = append(names, name)
		}

		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: talos-oracle <%s> < request.json\n", strings.Join(names, "|"))
		os.Exit(2)
	}

	name := os.Args[1]

	request, err := io.ReadAll(os.Stdin)
	if err == nil {
		var answer any

		answer, err = commands[name](request)
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(answer)
		}
	}

	if err != nil {
		fmt.Fprintf(os.Stderr, "talos-oracle %s: %v\n", name, err)
		os.Exit(1)
	}
}

// panicAnswer reports a panic inside machinery: talosctl would crash on the same input, so Talos refused it.
type panicAnswer struct {
	Errors []string `json:"errors"`
	Stage  string   `json:"stage"`
}

// handle decodes the request strictly into Req, so a misspelt field fails loudly instead of being ignored.
func handle[Req any](fn func(Req) (any, error)) command {
	return func(request []byte) (answer any, err error) {
		var req Req

		decoder := json.NewDecoder(bytes.NewReader(request))
		decoder.DisallowUnknownFields()

		if err = decoder.Decode(&req); err != nil {
			return nil, fmt.Errorf("bad request: %w", err)
		}

		defer func() {
			if recovered := recover(); recovered != nil {
				answer, err = panicAnswer{Errors: []string{fmt.Sprintf("panic: %v", recovered)}, Stage: "panic"}, nil
			}
		}()

		return fn(req)
	}
}

// messages flattens Talos' (possibly nested, possibly wrapped) multierrors into one message per error.
func messages(err error) []string {
	if err == nil {
		return []string{}
	}

	var multi interface{ WrappedErrors() []error }
	if !errors.As(err, &multi) {
		return []string{err.Error()}
	}

	whole, inner := err.Error(), multi.(error).Error()
	if !strings.HasSuffix(whole, inner) {
		return []string{whole}
	}

	prefix := strings.TrimSuffix(whole, inner)

	var out []string
	for _, wrapped := range multi.WrappedErrors() {
		for _, message := range messages(wrapped) {
			out = append(out, prefix+message)
		}
	}

	return out
}
