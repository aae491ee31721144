package main

import (
	"runtime"
	"runtime/debug"
)

const machineryModule = "github.com/siderolabs/talos/pkg/machinery"

type infoRequest struct{}

type infoAnswer struct {
	Errors    []string `json:"errors"`
	Machinery string   `json:"machinery"`
	Go        string   `json:"go"`
}

// info reports which machinery this binary was built from, for the conformance summary.
func info(infoRequest) (any, error) {
	answer := infoAnswer{Errors: []string{}, Go: runtime.Version()}

	if build, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range build.Deps {
			if dep.Path == machineryModule {
				answer.Machinery = dep.Version
			}
		}
	}

	return answer, nil
}
