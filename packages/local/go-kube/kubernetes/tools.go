//go:build tools

// Package tools pins the Kubernetes control plane from k8s.io/kubernetes in this module's go.mod (see the
// replace block there for why it cannot be built with `go install ...@version`).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
