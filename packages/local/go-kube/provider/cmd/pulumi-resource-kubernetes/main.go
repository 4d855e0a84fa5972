// Command pulumi-resource-kubernetes is the Pulumi Kubernetes provider v4.25.0, built from its Go module.
//
// Upstream's main (provider/v4/cmd/pulumi-resource-kubernetes/main.go) embeds schema-embed.json and
// terraform-mapping-embed.json, which `go generate` writes next to it and which its module zip therefore lacks.
// This main is the same program; the installer writes the two files here first with ../generate (the same
// steps as upstream's generate.go), and stamps the version with -X .../pkg/version.Version.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

const providerName = "kubernetes"

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve(providerName, version.Version, pulumiSchema, terraformMapping)
}
