// Command pulumi-language-python is this project's Python language host for the Pulumi engine.
//
// Upstream's language host is its own Go module (sdk/python/cmd/pulumi-language-python/v3) with no tags, and the Go
// module proxy this project can reach serves no version of it, so the project keeps this small equivalent. It
// implements the part of the LanguageRuntime service that `pulumi preview/up/refresh/destroy` use:
//
//   - Handshake / GetPluginInfo / Cancel;
//   - GetRequiredPackages: the resource plugins of the installed Pulumi packages (their pulumi-plugin.json);
//   - Run: runs the program with the Python executor script that the SDK module ships
//     (pulumi-language-python-exec), found next to this binary, in the virtualenv named by the project's
//     `runtime.options.virtualenv` (resolved by the SDK's toolchain package, as upstream does).
//
// Everything else (program generation, dependency installation, plugins written in Python, debugging, type
// checkers) answers Unimplemented.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	executorName = "pulumi-language-python-exec"
	// The executor exits with this code after it has already shown the user an actionable error.
	exitAfterUserMessage = 32
	// How long the language host keeps running without a healthy engine.
	healthTimeout = 5 * time.Minute
)

func main() {
	showVersion := flag.Bool("version", false, "print the plugin version and exit")
	flag.String("tracing", "", "accepted for compatibility with the engine; tracing is not supported")
	executor := flag.String("use-executor", "", "the Python executor script (default: next to this binary)")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	if err := serve(*executor, flag.Arg(0)); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

func serve(executor, engineAddress string) error {
	if executor == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("cannot locate this binary: %w", err)
		}
		executor = filepath.Join(filepath.Dir(self), executorName)
	}
	if _, err := os.Stat(executor); err != nil {
		return fmt.Errorf("missing executor %s (install it next to this binary): %w", executor, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cancel := make(chan bool)
	go func() {
		<-ctx.Done()
		close(cancel)
	}()

	host := newHost(executor, stop)
	if engineAddress != "" {
		if err := host.watchEngine(engineAddress); err != nil {
			return err
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("cannot start the gRPC server: %w", err)
	}
	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	return <-handle.Done
}

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	executor      string
	engineAddress string
	shutdown      context.CancelFunc // stops serving
	runs          context.Context    // cancelled by the Cancel RPC
	cancelRuns    context.CancelFunc
}

func newHost(executor string, shutdown context.CancelFunc) *host {
	runs, cancelRuns := context.WithCancel(context.Background())
	return &host{executor: executor, shutdown: shutdown, runs: runs, cancelRuns: cancelRuns}
}

// watchEngine remembers the engine's address and stops serving when the engine goes away.
func (h *host) watchEngine(address string) error {
	h.engineAddress = address
	if err := rpcutil.Healthcheck(context.Background(), address, healthTimeout, h.shutdown); err != nil {
		return fmt.Errorf("cannot watch the engine at %s: %w", address, err)
	}
	return nil
}

func (h *host) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if err := h.watchEngine(req.GetEngineAddress()); err != nil {
		return nil, err
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancelRuns()
	return &emptypb.Empty{}, nil
}

// pythonToolchain resolves the interpreter for a program from its `runtime.options` (virtualenv, toolchain).
func pythonToolchain(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	opts := toolchain.PythonOptions{Root: info.GetRootDirectory(), ProgramDir: info.GetProgramDirectory()}
	options := info.GetOptions().AsMap()
	if venv, ok := options["virtualenv"]; ok {
		s, isString := venv.(string)
		if !isString {
			return nil, errors.New("runtime option `virtualenv` in Pulumi.yaml must be a string")
		}
		opts.Virtualenv = s
	}
	if tc, ok := options["toolchain"]; ok {
		switch tc {
		case "pip":
			opts.Toolchain = toolchain.Pip
		case "uv":
			opts.Toolchain = toolchain.Uv
		case "poetry":
			opts.Toolchain = toolchain.Poetry
		default:
			return nil, fmt.Errorf("runtime option `toolchain` in Pulumi.yaml: unsupported value %v (pip, uv, poetry)", tc)
		}
	}
	return toolchain.ResolveToolchain(opts)
}

// listPluginsScript prints, as JSON, the pulumi-plugin.json of every installed distribution that ships one in a
// top-level package (that is how Pulumi provider SDKs name the resource plugin they need).
const listPluginsScript = `
import importlib.metadata, json
found = []
for dist in importlib.metadata.distributions():
    for f in dist.files or ():
        if f.name == "pulumi-plugin.json" and len(f.parts) == 2:
            try:
                found.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                pass
print(json.dumps(found))
`

type pluginJSON struct {
	Resource bool   `json:"resource"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Server   string `json:"server"`
}

func (h *host) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	tc, err := pythonToolchain(req.GetInfo())
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", listPluginsScript)
	if err != nil {
		return nil, err
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the installed Pulumi packages: %w", err)
	}
	var plugins []pluginJSON
	if err := json.Unmarshal(out, &plugins); err != nil {
		return nil, fmt.Errorf("listing the installed Pulumi packages: %w", err)
	}
	var packages []*pulumirpc.PackageDependency
	for _, p := range plugins {
		if !p.Resource || p.Name == "" || p.Version == "" {
			continue
		}
		packages = append(packages, &pulumirpc.PackageDependency{
			Kind:    "resource",
			Name:    p.Name,
			Version: "v" + strings.TrimPrefix(p.Version, "v"),
			Server:  p.Server,
		})
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: packages}, nil
}

// executorArgs is the executor's command line: engine coordinates as flags, then the entry point and its arguments.
func (h *host) executorArgs(req *pulumirpc.RunRequest) []string {
	args := []string{h.executor}
	flags := [][2]string{
		{"monitor", req.GetMonitorAddress()},
		{"engine", h.engineAddress},
		{"project", req.GetProject()},
		{"root_directory", req.GetInfo().GetRootDirectory()},
		{"stack", req.GetStack()},
		{"pwd", req.GetPwd()},
		{"dry_run", strconv.FormatBool(req.GetDryRun())},
		{"parallel", strconv.Itoa(int(req.GetParallel()))},
		{"organization", req.GetOrganization()},
	}
	for _, f := range flags {
		if f[1] != "" {
			args = append(args, "--"+f[0], f[1])
		}
	}
	args = append(args, req.GetInfo().GetEntryPoint())
	return append(args, req.GetArgs()...)
}

// programEnv passes the stack's configuration (decrypted by the engine) and the names of its secret keys.
func programEnv(base []string, req *pulumirpc.RunRequest) ([]string, error) {
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	keys, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	return append(base, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(keys)), nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if h.engineAddress == "" {
		return nil, errors.New("the engine must call Handshake (or pass its address) before Run")
	}
	if req.GetAttachDebugger() {
		return &pulumirpc.RunResponse{Error: "attaching a debugger is not supported by this language host"}, nil
	}
	tc, err := pythonToolchain(req.GetInfo())
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	runCtx, stopRun := context.WithCancel(h.runs)
	defer stopRun()
	context.AfterFunc(ctx, stopRun)
	cmd, err := tc.Command(runCtx, h.executorArgs(req)...)
	if err != nil {
		return nil, err
	}
	base := cmd.Env
	if base == nil {
		base = os.Environ()
	}
	if cmd.Env, err = programEnv(base, req); err != nil {
		return nil, fmt.Errorf("encoding the stack configuration: %w", err)
	}
	// Interrupt first so the program can flush; kill if it does not stop.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr

	err = cmd.Run()
	_ = os.Stdout.Sync()
	_ = os.Stderr.Sync()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == exitAfterUserMessage:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with non-zero exit code: %d", exitErr.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run the Python executor: %v", err)}, nil
	}
}
