// Command pulumi-language-nodejs is Trellis's Node.js language host for the Pulumi engine.
//
// Pulumi's own host is not served by the Go module proxy reachable here, so Trellis carries this one.
// The engine starts it as `pulumi-language-nodejs [--logtostderr] [-v=N] [--tracing URL] <engine-address>`,
// reads the gRPC port from the first line of stdout, and calls the pulumirpc.LanguageRuntime service.
// `Run` starts `node` with @pulumi/pulumi's `cmd/run` entry from the program's node_modules; that entry
// talks to the engine's resource monitor itself. The rest of the service answers what `pulumi up`,
// `preview`, `destroy`, `refresh`, `stack output` and `about` ask, and `RunPlugin` starts plugins written in
// Node.js (the policy pack of `--policy-pack`); code generation, packing and linking are not needed by
// Trellis and answer Unimplemented.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"google.golang.org/grpc"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func main() {
	if err := serve(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	flags := flag.NewFlagSet("pulumi-language-nodejs", flag.ContinueOnError)
	tracing := flags.String("tracing", "", "emit tracing to a Zipkin-compatible endpoint")
	// The engine forwards its logging flags to every plugin; this host logs nothing of its own.
	_ = flags.Bool("logtostderr", false, "log to stderr (accepted for compatibility)")
	_ = flags.Int("v", 0, "log verbosity (accepted for compatibility)")
	_ = flags.Bool("logflow", false, "flow logging settings to child processes (accepted for compatibility)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	engineAddress := ""
	if flags.NArg() > 0 {
		// The engine address is the last positional argument.
		engineAddress = flags.Arg(flags.NArg() - 1)
	}

	host := newHost(engineAddress, *tracing)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("cannot serve the language runtime: %w", err)
	}
	// The engine reads exactly one line from stdout: the port.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		return err
	}
	host.cancelAll(context.Canceled)
	return nil
}
