package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"trellis.dev/tools/internal/nodesdk"
)

// exitAfterLoggedError is the exit code @pulumi/pulumi's cmd/run uses when it has already shown the
// user what went wrong (nodeJSProcessExitedAfterLoggingUserActionableMessage in cmd/run/index.ts); the
// engine is then told to bail without adding a message of its own.
const exitAfterLoggedError = 32

// host implements pulumirpc.LanguageRuntimeServer for Node.js programs.
type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	tracing string

	mu            sync.Mutex
	engineAddress string
	running       map[*context.CancelCauseFunc]struct{}
}

func newHost(engineAddress, tracing string) *host {
	return &host{
		engineAddress: engineAddress,
		tracing:       tracing,
		running:       map[*context.CancelCauseFunc]struct{}{},
	}
}

// programLocation is where a program lives, from the request's ProgramInfo (or the deprecated fields
// that older engines send instead).
type programLocation struct {
	root, dir, entry string
	options          runtimeOptions
}

// runtimeOptions are the `runtime.options` of Pulumi.yaml that this host understands.
type runtimeOptions struct {
	// TypeScript asks @pulumi/pulumi to register ts-node. Off by default here, unlike Pulumi's own host:
	// Node.js 22.18+ strips types itself, and Trellis does not install ts-node.
	TypeScript bool
	// TSConfig is passed to ts-node when TypeScript is on.
	TSConfig string
	// NodeArgs are extra arguments for `node`, split on whitespace.
	NodeArgs []string
}

func locate(info *pulumirpc.ProgramInfo, pwd, program string) (programLocation, error) {
	loc := programLocation{root: pwd, dir: pwd, entry: program}
	if info != nil {
		loc.root, loc.dir, loc.entry = info.GetRootDirectory(), info.GetProgramDirectory(), info.GetEntryPoint()
		opts, err := parseOptions(info.GetOptions())
		if err != nil {
			return loc, err
		}
		loc.options = opts
	}
	if loc.dir == "" {
		return loc, errors.New("the engine sent no program directory")
	}
	if loc.root == "" {
		loc.root = loc.dir
	}
	if loc.entry == "" {
		// "." makes cmd/run use package.json's `exports` or `main`, then index.js/index.ts.
		loc.entry = "."
	}
	return loc, nil
}

func parseOptions(s *structpb.Struct) (runtimeOptions, error) {
	var opts runtimeOptions
	for key, value := range s.GetFields() {
		switch key {
		case "typescript":
			b, ok := value.GetKind().(*structpb.Value_BoolValue)
			if !ok {
				return opts, fmt.Errorf("runtime option typescript must be true or false, got %v", value.AsInterface())
			}
			opts.TypeScript = b.BoolValue
		case "tsconfig":
			opts.TSConfig = value.GetStringValue()
		case "nodeargs":
			opts.NodeArgs = strings.Fields(value.GetStringValue())
		default:
			// packagemanager and friends only matter to dependency installation, which pnpm owns here.
		}
	}
	return opts, nil
}

// runArgs builds the command line for @pulumi/pulumi's cmd/run entry. The flags are the ones its
// minimist parser declares (cmd/run/index.ts); `--key=value` keeps values that start with "-" intact.
func runArgs(req *pulumirpc.RunRequest, loc programLocation, runEntry, engineAddress, tracing string) []string {
	args := append([]string{}, loc.options.NodeArgs...)
	args = append(args, runEntry, "--monitor="+req.GetMonitorAddress())
	if engineAddress != "" {
		args = append(args, "--engine="+engineAddress)
	}
	if req.GetOrganization() != "" {
		args = append(args, "--organization="+req.GetOrganization())
	}
	args = append(args,
		"--project="+req.GetProject(),
		"--stack="+req.GetStack(),
		"--root-directory="+loc.root,
		"--pwd="+loc.dir,
	)
	if req.GetParallel() > 0 {
		args = append(args, "--parallel="+strconv.Itoa(int(req.GetParallel())))
	}
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if tracing != "" {
		args = append(args, "--tracing="+tracing)
	}
	args = append(args, loc.entry)
	return append(args, req.GetArgs()...)
}

// runEnv is the environment for the program: ours, minus anything a parent Pulumi run left behind,
// plus the config (PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS, read by @pulumi/pulumi runtime/config.ts)
// and the TypeScript switch (read by cmd/run/run.ts).
func runEnv(base []string, req *pulumirpc.RunRequest, opts runtimeOptions) ([]string, error) {
	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	ours := map[string]string{
		"PULUMI_CONFIG":             string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS": string(secretJSON),
		"PULUMI_NODEJS_TYPESCRIPT":  strconv.FormatBool(opts.TypeScript),
	}
	if opts.TSConfig != "" {
		ours["PULUMI_NODEJS_TSCONFIG_PATH"] = opts.TSConfig
	}
	env := make([]string, 0, len(base)+len(ours))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, mine := ours[name]; mine || name == "PULUMI_NODEJS_TSCONFIG_PATH" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range ours {
		env = append(env, k+"="+v)
	}
	sort.Strings(env[len(env)-len(ours):])
	return env, nil
}

func (h *host) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

// GetRequiredPlugins reports none: Trellis programs use the dynamic provider (which the engine finds on
// PATH) and no provider plugins to pre-install.
func (h *host) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

// GetRequiredPackages reports none, for the same reason as GetRequiredPlugins.
func (h *host) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if req.GetAttachDebugger() {
		return &pulumirpc.RunResponse{Error: "this language host cannot attach a debugger"}, nil
	}
	loc, err := locate(req.GetInfo(), req.GetPwd(), req.GetProgram()) //nolint:staticcheck // older engines
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	runEntry, err := nodesdk.FindSDKFile(loc.dir, "cmd/run/index.js")
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	node, err := nodesdk.FindNode()
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	env, err := runEnv(os.Environ(), req, loc.options)
	if err != nil {
		return nil, err
	}

	h.mu.Lock()
	engineAddress := h.engineAddress
	h.mu.Unlock()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h.track(&cancel, true)
	defer h.track(&cancel, false)

	cmd := exec.CommandContext(ctx, node, runArgs(req, loc, runEntry, engineAddress, h.tracing)...)
	cmd.Dir = loc.dir
	cmd.Env = env
	// The engine shows our stdout as info and our stderr as errors, line by line.
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 10 * time.Second

	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case context.Cause(ctx) != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("program run cancelled: %w", context.Cause(ctx))
	case errors.As(err, &exitErr) && exitErr.ExitCode() == exitAfterLoggedError:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
		}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("running %s: %v", node, err)}, nil
	}
}

// pluginEntry is the file node runs for a plugin: the entry point the engine names (PulumiPolicy.yaml's
// `main`), else package.json's `main`, relative to the plugin's directory.
func pluginEntry(loc programLocation) (string, error) {
	entry := loc.entry
	if entry == "." {
		data, err := os.ReadFile(filepath.Join(loc.dir, "package.json"))
		if err != nil {
			return "", fmt.Errorf("plugin %s names no entry point and has no package.json: %w", loc.dir, err)
		}
		var m struct {
			Main string `json:"main"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return "", fmt.Errorf("%s: %w", filepath.Join(loc.dir, "package.json"), err)
		}
		if m.Main == "" {
			return "", fmt.Errorf("%s has no main", filepath.Join(loc.dir, "package.json"))
		}
		entry = m.Main
	}
	if filepath.IsAbs(entry) {
		return entry, nil
	}
	return filepath.Join(loc.dir, entry), nil
}

// RunPlugin runs a plugin written in Node.js; the engine asks for it to start a policy pack
// (`--policy-pack`), whose @pulumi/policy server prints its port on stdout. With `typescript: false` (as
// every Trellis program and the policy pack set) node runs the entry point itself and strips its types,
// as Run does; with `typescript: true` it goes through @pulumi/pulumi's cmd/run-plugin, which registers
// ts-node, as Pulumi's own host does. Output streams back to the engine; the exit code ends the stream.
func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	loc, err := locate(req.GetInfo(), req.GetPwd(), req.GetProgram()) //nolint:staticcheck // older engines
	if err != nil {
		return err
	}
	node, err := nodesdk.FindNode()
	if err != nil {
		return err
	}
	args := append([]string{}, loc.options.NodeArgs...)
	if loc.options.TypeScript {
		runPlugin, err := nodesdk.FindSDKFile(loc.dir, "cmd/run-plugin/index.js")
		if err != nil {
			return err
		}
		args = append(args, runPlugin, loc.dir)
	} else {
		entry, err := pluginEntry(loc)
		if err != nil {
			return err
		}
		args = append(args, entry)
	}
	args = append(args, req.GetArgs()...)

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	ctx, cancel := context.WithCancelCause(server.Context())
	defer cancel(nil)
	h.track(&cancel, true)
	defer h.track(&cancel, false)
	cmd := exec.CommandContext(ctx, node, args...)
	// In the plugin's own directory, not the engine's Pwd (the stack's program): a plugin is a package of
	// its own, and @pulumi/policy reads the pack's version from ./package.json. The engine's other way of
	// starting a Node.js pack (the pulumi-analyzer-policy script) runs there too.
	cmd.Dir = loc.dir
	cmd.Env = req.GetEnv()
	if len(cmd.Env) == 0 {
		cmd.Env = os.Environ()
	}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		return fmt.Errorf("running %s: %w", node, err)
	}
	return server.Send(&pulumirpc.RunPluginResponse{
		Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)},
	})
}

func (h *host) track(cancel *context.CancelCauseFunc, add bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if add {
		h.running[cancel] = struct{}{}
	} else {
		delete(h.running, cancel)
	}
}

func (h *host) cancelAll(cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cancel := range h.running {
		(*cancel)(cause)
	}
}

// Cancel stops any running program (the engine calls it on Ctrl-C).
func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancelAll(errors.New("cancelled by the engine"))
	return &emptypb.Empty{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: sdk.Version.String()}, nil
}

// InstallDependencies installs nothing: the workspace's pnpm install owns node_modules.
func (h *host) InstallDependencies(
	_ *pulumirpc.InstallDependenciesRequest,
	stream pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	return stream.Send(&pulumirpc.InstallDependenciesResponse{
		Stdout: []byte("pulumi-language-nodejs (Trellis): dependencies are installed by pnpm; nothing to do\n"),
	})
}

func (h *host) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *host) About(ctx context.Context, _ *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	node, err := nodesdk.FindNode()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", node, err)
	}
	return &pulumirpc.AboutResponse{
		Executable: node,
		Version:    strings.TrimPrefix(strings.TrimSpace(string(out)), "v"),
		Metadata:   map[string]string{"languageHost": "trellis"},
	}, nil
}

// GetProgramDependencies lists the program's direct npm dependencies with their installed versions
// (falling back to the declared range when a package is not installed).
func (h *host) GetProgramDependencies(
	_ context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	loc, err := locate(req.GetInfo(), req.GetPwd(), req.GetProgram()) //nolint:staticcheck // older engines
	if err != nil {
		return nil, err
	}
	manifestDir, manifest, err := nearestManifest(loc.dir)
	if err != nil {
		return nil, err
	}
	declared := map[string]string{}
	for _, deps := range []map[string]string{manifest.DevDependencies, manifest.Dependencies} {
		for name, spec := range deps {
			declared[name] = spec
		}
	}
	names := make([]string, 0, len(declared))
	for name := range declared {
		names = append(names, name)
	}
	sort.Strings(names)
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, name := range names {
		version := declared[name]
		if installed, ok := installedVersion(manifestDir, name); ok {
			version = installed
		}
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: name, Version: version})
	}
	return resp, nil
}

type packageManifest struct {
	Version         string            `json:"version"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
}

func nearestManifest(dir string) (string, packageManifest, error) {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "package.json"))
		if err == nil {
			var m packageManifest
			if err := json.Unmarshal(data, &m); err != nil {
				return "", m, fmt.Errorf("%s: %w", filepath.Join(d, "package.json"), err)
			}
			return d, m, nil
		}
		if filepath.Dir(d) == d {
			return "", packageManifest{}, fmt.Errorf("no package.json at or above %s", dir)
		}
	}
}

func installedVersion(dir, name string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "node_modules", filepath.FromSlash(name), "package.json"))
		if err == nil {
			var m packageManifest
			if json.Unmarshal(data, &m) == nil && m.Version != "" {
				return m.Version, true
			}
			return "", false
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}
