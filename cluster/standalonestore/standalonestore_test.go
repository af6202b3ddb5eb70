package standalonestore

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

func TestNewLoadsManifestsWithAdmission(t *testing.T) {
	dir := t.TempDir()
	good := `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  ports:
  - port: 80
`
	bad := `apiVersion: v1
kind: Service
metadata:
  name: Bad_Name
  namespace: default
spec:
  ports:
  - port: 80
`
	for name, body := range map[string]string{"good.yaml": good, "bad.yaml": bad} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cidr := netip.MustParsePrefix("10.100.0.0/16")
	store, problems, err := New(ctx, Config{Paths: []string{dir}, ServiceCIDR: cidr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cluster.Get[*corev1.Service](store, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	// Admission defaults and allocates, as `switchboard up`'s store.
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !cidr.Contains(ip) || svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("service spec %+v", svc.Spec)
	}
	// The invalid object is a problem naming its file; the rest loads.
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "bad.yaml") {
		t.Fatalf("problems = %v", problems)
	}
	if _, _, err := New(ctx, Config{Paths: []string{filepath.Join(dir, "missing")}}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing path: %v", err)
	}
}
