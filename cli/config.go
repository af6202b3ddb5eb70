package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options are the root command's persistent flags the commands read. Each
// field points at the flag's value (nil or "" means unset).
type Options struct {
	StateDir   *string // --state-dir: where the node keeps api.sock
	Server     *string // --server: http://127.0.0.1:PORT of a node's TCP listener
	Kubeconfig *string // --kubeconfig: a real cluster, through clientcmd
}

func (o *Options) value(p func(*Options) *string) string {
	if o == nil {
		return ""
	}
	if v := p(o); v != nil {
		return strings.TrimSpace(*v)
	}
	return ""
}

// SocketName is the file name of the local API socket inside the state
// directory.
const SocketName = "api.sock"

// DefaultStateDir is where a node keeps its state when --state-dir is not
// given: $SWITCHBOARD_STATE_DIR, else /run/switchboard for root, else
// $XDG_RUNTIME_DIR/switchboard, else /tmp/switchboard-<uid>.
func DefaultStateDir() string {
	if d := os.Getenv("SWITCHBOARD_STATE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/switchboard"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "switchboard")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("switchboard-%d", os.Geteuid()))
}

// SocketPath is the local API socket the commands use with these options.
func SocketPath(opts *Options) string {
	dir := opts.value(func(o *Options) *string { return o.StateDir })
	if dir == "" {
		dir = DefaultStateDir()
	}
	return filepath.Join(dir, SocketName)
}

// NoNodeError says that no node answers on the local API socket.
type NoNodeError struct {
	Socket string
	Err    error // the underlying stat or dial error
}

func (e *NoNodeError) Error() string {
	return fmt.Sprintf("no switchboard node is running (socket %s): start one with `switchboard up -f DIR`", e.Socket)
}

func (e *NoNodeError) Unwrap() error { return e.Err }

// noNode tells whether a dial error means nobody serves the socket: it
// does not exist, or nobody listens on it (a stale socket file).
func noNode(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTSOCK)
}

// RESTConfig builds the client-go configuration the commands use:
// --kubeconfig selects a real cluster (with --server overriding its
// server), --server alone a node's TCP listener, and otherwise the node's
// unix socket <state-dir>/api.sock, reached with Host "http://localhost".
// A missing socket is reported at once as a *NoNodeError.
func RESTConfig(opts *Options) (*rest.Config, error) {
	cfg, _, err := loadConfig(opts)
	return cfg, err
}

// loadConfig is RESTConfig plus the default namespace: the kubeconfig
// context's namespace, else "default".
func loadConfig(opts *Options) (*rest.Config, string, error) {
	server := opts.value(func(o *Options) *string { return o.Server })
	if kc := opts.value(func(o *Options) *string { return o.Kubeconfig }); kc != "" {
		overrides := &clientcmd.ConfigOverrides{}
		if server != "" {
			overrides.ClusterInfo.Server = server
		}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: kc}, overrides)
		cfg, err := cc.ClientConfig()
		if err != nil {
			return nil, "", fmt.Errorf("kubeconfig %s: %w", kc, err)
		}
		ns, _, err := cc.Namespace()
		if err != nil || ns == "" {
			ns = "default"
		}
		tune(cfg)
		return cfg, ns, nil
	}
	if server != "" {
		if !strings.Contains(server, "://") {
			server = "http://" + server
		}
		cfg := &rest.Config{Host: server}
		tune(cfg)
		return cfg, "default", nil
	}
	sock := SocketPath(opts)
	if _, err := os.Stat(sock); err != nil {
		return nil, "", &NoNodeError{Socket: sock, Err: err}
	}
	cfg := &rest.Config{
		Host: "http://localhost",
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", sock)
			if err != nil && noNode(err) {
				return nil, &NoNodeError{Socket: sock, Err: err}
			}
			return c, err
		},
	}
	tune(cfg)
	return cfg, "default", nil
}

func tune(cfg *rest.Config) {
	cfg.UserAgent = "switchboard-cli"
	// A local node answers quickly; client-side throttling would only
	// slow down `delete --all` and `apply -f` of large directories.
	cfg.QPS = 100
	cfg.Burst = 200
}
