package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func TestRunArgsCarryTheFlagsCmdRunParses(t *testing.T) {
	req := &pulumirpc.RunRequest{
		Project: "proj", Stack: "dev", MonitorAddress: "127.0.0.1:1234", DryRun: true, Parallel: 8,
		Organization: "org", Args: []string{"extra"},
	}
	loc := programLocation{root: "/p", dir: "/p/src", entry: ".", options: runtimeOptions{NodeArgs: []string{"--enable-source-maps"}}}
	got := runArgs(req, loc, "/nm/run/index.js", "127.0.0.1:99", "")
	want := []string{
		"--enable-source-maps", "/nm/run/index.js", "--monitor=127.0.0.1:1234", "--engine=127.0.0.1:99",
		"--organization=org", "--project=proj", "--stack=dev", "--root-directory=/p", "--pwd=/p/src",
		"--parallel=8", "--dry-run", ".", "extra",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("runArgs:\n got %q\nwant %q", got, want)
	}

	req.DryRun = false
	if slices.Contains(runArgs(req, loc, "/r", "", ""), "--dry-run") {
		t.Fatal("--dry-run passed for a real run")
	}
}

func TestRunEnvReplacesInheritedConfig(t *testing.T) {
	req := &pulumirpc.RunRequest{Config: map[string]string{"proj:a": "1"}, ConfigSecretKeys: []string{"proj:a"}}
	env, err := runEnv([]string{"PATH=/bin", "PULUMI_CONFIG={\"stale\":\"x\"}"}, req, runtimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := vars[k]; dup {
			t.Fatalf("%s set twice", k)
		}
		vars[k] = v
	}
	var config map[string]string
	if err := json.Unmarshal([]byte(vars["PULUMI_CONFIG"]), &config); err != nil || config["proj:a"] != "1" || len(config) != 1 {
		t.Fatalf("PULUMI_CONFIG = %q (%v)", vars["PULUMI_CONFIG"], err)
	}
	if vars["PULUMI_CONFIG_SECRET_KEYS"] != `["proj:a"]` || vars["PULUMI_NODEJS_TYPESCRIPT"] != "false" || vars["PATH"] != "/bin" {
		t.Fatalf("env = %v", vars)
	}
}

func TestParseOptions(t *testing.T) {
	s, err := structpb.NewStruct(map[string]any{"typescript": true, "nodeargs": "--a  --b", "packagemanager": "pnpm"})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := parseOptions(s)
	if err != nil || !opts.TypeScript || !slices.Equal(opts.NodeArgs, []string{"--a", "--b"}) {
		t.Fatalf("parseOptions = %+v, %v", opts, err)
	}
	bad, _ := structpb.NewStruct(map[string]any{"typescript": "yes"})
	if _, err := parseOptions(bad); err == nil || !strings.Contains(err.Error(), "typescript") {
		t.Fatalf("a non-boolean typescript option was accepted: %v", err)
	}
}
