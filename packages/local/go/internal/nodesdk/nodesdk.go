// Package nodesdk finds the pieces of the @pulumi/pulumi npm package and the Node.js runtime that the
// language host and the dynamic-provider plugin start.
package nodesdk

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// SDKPackage is the npm package whose entry points we run.
const SDKPackage = "@pulumi/pulumi"

// FindSDKFile looks for node_modules/@pulumi/pulumi/<rel> in dir and each of its parents, the way
// Node.js resolves a bare import from a file in dir, and returns the first match.
func FindSDKFile(dir, rel string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		candidate := filepath.Join(d, "node_modules", filepath.FromSlash(SDKPackage), filepath.FromSlash(rel))
		if st, err := os.Stat(candidate); err == nil && !st.IsDir() {
			return candidate, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", fmt.Errorf(
		"cannot find %s/%s in any node_modules directory at or above %s: "+
			"add %s to the program's package.json and install dependencies (pnpm install)",
		SDKPackage, rel, abs, SDKPackage)
}

// FindNode returns the `node` executable on PATH. Trellis puts its pinned Node.js first on PATH
// (see pulumiEnv in packages/local/src/toolchain/pulumi.ts).
func FindNode() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New("cannot find `node` on PATH: the Node.js language host needs Node.js 22.18 or newer")
		}
		return "", err
	}
	return node, nil
}
