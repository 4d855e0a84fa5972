// Command generate writes the two files the provider's main embeds, as upstream's
// provider/v4/cmd/pulumi-resource-kubernetes/generate.go does: the package schema with its version set,
// and the Terraform mapping, both re-serialised compactly.
//
// Usage: generate <version> <upstream cmd dir holding schema.json> <output dir>
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	if len(os.Args) != 4 {
		fail("usage: generate <version> <upstream cmd dir> <output dir>")
	}
	version, src, out := os.Args[1], os.Args[2], os.Args[3]
	if version == "" {
		fail("version must not be empty")
	}

	raw, err := os.ReadFile(filepath.Join(src, "schema.json"))
	if err != nil {
		fail("read schema: %v", err)
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		fail("cannot deserialize schema: %v", err)
	}
	spec.Version = version
	versioned, err := json.Marshal(spec)
	if err != nil {
		fail("cannot reserialize schema: %v", err)
	}
	write(filepath.Join(out, "schema-embed.json"), versioned)

	raw, err = os.ReadFile(filepath.Join(src, "terraform-mapping.json"))
	if err != nil {
		fail("read terraform mapping: %v", err)
	}
	var mapping any
	if err := json.Unmarshal(raw, &mapping); err != nil {
		fail("cannot deserialize terraform mapping: %v", err)
	}
	compact, err := json.Marshal(mapping)
	if err != nil {
		fail("cannot reserialize terraform mapping: %v", err)
	}
	write(filepath.Join(out, "terraform-mapping-embed.json"), compact)
}

func write(path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		fail("write %s: %v", path, err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "generate: "+format+"\n", args...)
	os.Exit(1)
}
