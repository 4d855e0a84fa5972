// Command pulumi-resource-pulumi-nodejs is the plugin the Pulumi engine starts for resources of type
// `pulumi-nodejs:dynamic:Resource` (dynamic providers written in JavaScript or TypeScript).
//
// The engine starts it in the program's directory with its own flags and the engine address as the last
// argument, and expects the gRPC port on the first line of stdout. @pulumi/pulumi's
// `cmd/dynamic-provider` entry does all of that, so this program only locates that entry in the
// program's node_modules and replaces itself with `node <entry> <args...>`. Replacing the process (rather
// than starting a child) means the engine's kill on shutdown reaches Node.js directly.
package main

import (
	"fmt"
	"os"
	"syscall"

	"trellis.dev/tools/internal/nodesdk"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-pulumi-nodejs: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	entry, err := nodesdk.FindSDKFile(cwd, "cmd/dynamic-provider/index.js")
	if err != nil {
		return err
	}
	node, err := nodesdk.FindNode()
	if err != nil {
		return err
	}
	argv := append([]string{"node", entry}, os.Args[1:]...)
	// Exec only returns on failure.
	return syscall.Exec(node, argv, os.Environ())
}
