//go:build tools

// Package tools pins the etcd server in this module's go.mod. etcd's own server module replaces its sibling
// modules with relative paths, so `go install go.etcd.io/etcd/server/v3@v3.7.4` refuses it; from this module
// `go build go.etcd.io/etcd/server/v3` builds the pinned release with its published siblings instead.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
