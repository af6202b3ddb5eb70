package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestQuick runs the benchmark at its -quick sizes and checks the table
// holds every row (no figure is asserted: speed is not a test).
func TestQuick(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges and veths")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := Run(ctx, Options{Pods: 20, Wire: 20, Parallel: 4}, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	for _, row := range []string{"ADD p50", "ADD p99", "DEL p50", "DEL p99", "wire 20 pods"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("table lacks %q", row)
		}
	}
	// Nothing of ours is left in /run/netns.
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("sbt-%dx", os.Getpid())) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}
