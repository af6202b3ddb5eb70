package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultStateDir(t *testing.T) {
	root := os.Geteuid() == 0
	cases := []struct {
		name     string
		env, xdg string
		want     string
	}{
		{"$SWITCHBOARD_STATE_DIR wins", "/srv/sb", "/run/user/1000", "/srv/sb"},
		{"root uses /run/switchboard, others $XDG_RUNTIME_DIR/switchboard", "", "/run/user/1000",
			map[bool]string{true: "/run/switchboard", false: "/run/user/1000/switchboard"}[root]},
		{"without $XDG_RUNTIME_DIR a non-root user gets /tmp/switchboard-<uid>", "", "",
			map[bool]string{true: "/run/switchboard", false: filepath.Join(os.TempDir(), fmt.Sprintf("switchboard-%d", os.Geteuid()))}[root]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SWITCHBOARD_STATE_DIR", tc.env)
			t.Setenv("XDG_RUNTIME_DIR", tc.xdg)
			if got := DefaultStateDir(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("--state-dir names the socket's directory", func(t *testing.T) {
		dir := "/var/lib/sb"
		if got := SocketPath(&Options{StateDir: &dir}); got != "/var/lib/sb/api.sock" {
			t.Errorf("got %q", got)
		}
	})
}

// TestNoNode checks the message when no node serves the socket: it does
// not exist, or a stale socket file refuses connections.
func TestNoNode(t *testing.T) {
	missing := t.TempDir()
	stale := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(stale, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	for _, dir := range []string{missing, stale} {
		for _, args := range [][]string{{"get", "pods"}, {"describe", "pod", "x"}, {"logs", "x"}, {"delete", "pod", "x"}} {
			t.Run(filepath.Base(dir)+" "+strings.Join(args, " "), func(t *testing.T) {
				d := dir
				_, stderr, err := run(t, &Options{StateDir: &d}, "", args...)
				want := fmt.Sprintf("error: no switchboard node is running (socket %s): start one with `switchboard up -f DIR`\n", filepath.Join(dir, SocketName))
				if err == nil || stderr != want {
					t.Errorf("err %v, stderr %q, want %q", err, stderr, want)
				}
			})
		}
	}
}

func TestServerAndKubeconfig(t *testing.T) {
	f := newPopulatedAPI(t)
	url := f.serveTCP()
	nowhere := t.TempDir() // no socket: the flags must not need one

	t.Run("--server uses TCP", func(t *testing.T) {
		stdout, stderr, err := run(t, &Options{StateDir: &nowhere, Server: &url}, "", "get", "svc", "-o", "name")
		if err != nil || stdout != "service/web\n" {
			t.Errorf("stdout %q stderr %q err %v", stdout, stderr, err)
		}
	})
	t.Run("--kubeconfig uses its cluster and its context's namespace", func(t *testing.T) {
		kc := writeFile(t, t.TempDir(), "config", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
contexts:
- name: local
  context:
    cluster: local
    namespace: data
current-context: local
`, url))
		stdout, stderr, err := run(t, &Options{StateDir: &nowhere, Kubeconfig: &kc}, "", "get", "pods", "-o", "name")
		if err != nil || stdout != "pod/db-0\n" {
			t.Errorf("stdout %q stderr %q err %v", stdout, stderr, err)
		}
	})
	t.Run("a refused TCP connection is kubectl's message", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close()
		_, stderr, err := run(t, &Options{Server: &dead}, "", "get", "pods")
		want := fmt.Sprintf("The connection to the server %s was refused - did you specify the right host or port?\n", strings.TrimPrefix(dead, "http://"))
		if err == nil || stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
	})
}
