package main

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// The Talos API as machinery compiles it: each import registers its proto files' descriptors.
	_ "github.com/cosi-project/runtime/api/v1alpha1"
	_ "github.com/siderolabs/talos/pkg/machinery/api/common"
	_ "github.com/siderolabs/talos/pkg/machinery/api/machine"
	_ "github.com/siderolabs/talos/pkg/machinery/api/resource/config"
	_ "github.com/siderolabs/talos/pkg/machinery/api/resource/definitions/block"
	_ "github.com/siderolabs/talos/pkg/machinery/api/resource/definitions/enums"
	_ "github.com/siderolabs/talos/pkg/machinery/api/resource/definitions/runtime"
	_ "github.com/siderolabs/talos/pkg/machinery/api/storage"
)

type descriptorsRequest struct {
	// Files are proto file paths as Talos compiles them ("machine/machine.proto", "v1alpha1/state.proto").
	Files []string `json:"files"`
}

type descriptorsAnswer struct {
	Errors   []string                `json:"errors"`
	Messages map[string]messageFacts `json:"messages"`
	Enums    map[string]enumFacts    `json:"enums"`
	Services map[string]serviceFacts `json:"services"`
	// Files maps each file path to its proto package.
	Files map[string]string `json:"files"`
}

// messageFacts are what decides a message's wire form: its file and, per field name, the field's facts.
type messageFacts struct {
	File   string                `json:"file"`
	Fields map[string]fieldFacts `json:"fields"`
}

type fieldFacts struct {
	Number int32 `json:"number"`
	// Kind is the protobuf type ("string", "message", "enum", "uint64", ...).
	Kind string `json:"kind"`
	// Cardinality is "optional", "required" or "repeated".
	Cardinality string `json:"cardinality"`
	// TypeName is the full name of a message or enum field's type.
	TypeName string `json:"type_name"`
	Oneof    string `json:"oneof"`
	Presence bool   `json:"presence"`
}

type enumFacts struct {
	File   string           `json:"file"`
	Values map[string]int32 `json:"values"`
}

type serviceFacts struct {
	File    string         `json:"file"`
	Methods map[string]rpc `json:"methods"`
}

// rpc is one method: its path as served, its messages and which sides stream.
type rpc struct {
	Path            string `json:"path"`
	Input           string `json:"input"`
	Output          string `json:"output"`
	ClientStreaming bool   `json:"client_streaming"`
	ServerStreaming bool   `json:"server_streaming"`
}

// dumpDescriptors describes every message (nested ones included), enum and service of the named files, from
// the descriptors machinery's generated Go code registers.
func dumpDescriptors(req descriptorsRequest) (any, error) {
	answer := descriptorsAnswer{
		Errors:   []string{},
		Messages: map[string]messageFacts{},
		Enums:    map[string]enumFacts{},
		Services: map[string]serviceFacts{},
		Files:    map[string]string{},
	}

	for _, path := range req.Files {
		file, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			answer.Errors = append(answer.Errors, fmt.Sprintf("%s: %v", path, err))

			continue
		}

		answer.Files[path] = string(file.Package())
		addEnums(answer.Enums, file.Enums())
		addMessages(answer, file.Messages())

		for i := range file.Services().Len() {
			service := file.Services().Get(i)
			facts := serviceFacts{File: path, Methods: map[string]rpc{}}

			for j := range service.Methods().Len() {
				method := service.Methods().Get(j)
				facts.Methods[string(method.Name())] = rpc{
					Path:            fmt.Sprintf("/%s/%s", service.FullName(), method.Name()),
					Input:           string(method.Input().FullName()),
					Output:          string(method.Output().FullName()),
					ClientStreaming: method.IsStreamingClient(),
					ServerStreaming: method.IsStreamingServer(),
				}
			}

			answer.Services[string(service.FullName())] = facts
		}
	}

	return answer, nil
}

func addMessages(answer descriptorsAnswer, messages protoreflect.MessageDescriptors) {
	for i := range messages.Len() {
		message := messages.Get(i)
		facts := messageFacts{File: message.ParentFile().Path(), Fields: map[string]fieldFacts{}}

		for j := range message.Fields().Len() {
			field := message.Fields().Get(j)
			facts.Fields[string(field.Name())] = describeField(field)
		}

		answer.Messages[string(message.FullName())] = facts

		addEnums(answer.Enums, message.Enums())
		addMessages(answer, message.Messages())
	}
}

func describeField(field protoreflect.FieldDescriptor) fieldFacts {
	facts := fieldFacts{
		Number:      int32(field.Number()),
		Kind:        field.Kind().String(),
		Cardinality: field.Cardinality().String(),
		Presence:    field.HasPresence(),
	}

	switch {
	case field.Message() != nil:
		facts.TypeName = string(field.Message().FullName())
	case field.Enum() != nil:
		facts.TypeName = string(field.Enum().FullName())
	}

	if oneof := field.ContainingOneof(); oneof != nil {
		facts.Oneof = string(oneof.Name())
	}

	return facts
}

func addEnums(out map[string]enumFacts, enums protoreflect.EnumDescriptors) {
	for i := range enums.Len() {
		enum := enums.Get(i)
		facts := enumFacts{File: enum.ParentFile().Path(), Values: map[string]int32{}}

		for j := range enum.Values().Len() {
			value := enum.Values().Get(j)
			facts.Values[string(value.Name())] = int32(value.Number())
		}

		out[string(enum.FullName())] = facts
	}
}
