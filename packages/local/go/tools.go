//go:build tools

// Package tools pins the Pulumi CLI in this module's go.mod, so that
// `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` from this directory builds the pinned version
// with the same dependency graph every time.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
