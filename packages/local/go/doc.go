// Package tools is Trellis's Go tools module: the pinned Pulumi CLI (built from source because the
// registries reachable here serve no Pulumi binaries) plus two small programs written for Trellis:
//
//   - cmd/pulumi-language-nodejs: a Node.js language host that the Pulumi engine launches for
//     `runtime: nodejs` projects. It runs the program with @pulumi/pulumi's own `cmd/run` entry.
//   - cmd/pulumi-resource-pulumi-nodejs: the dynamic-provider plugin, which starts @pulumi/pulumi's
//     `cmd/dynamic-provider` entry.
//
// packages/local/src/toolchain/pulumi.ts builds all three into the per-user tool cache.
package tools
