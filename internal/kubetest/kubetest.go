// Package kubetest starts a real Kubernetes control plane for tests: etcd
// and kube-apiserver, built from their Go modules by tools/k8s/build.sh
// into the repository's .bin/ (./test.sh runs it), on loopback ports
// chosen at random, with a temporary data directory, a static admin token,
// service-account keys and a serving certificate generated for the run,
// and a kubeconfig written beside them. Everything is stopped and removed
// when the test ends, also on failure. Tests skip, saying why, when the
// binaries are missing. It only runs the peers: it holds no Switchboard
// logic and is imported only by _test.go files and by benchmark programs
// under bench/ (through StartProgram).
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"

	"github.com/switchboard-dev/switchboard/internal/spawn"
)

// ServiceCIDR is the apiserver's --service-cluster-ip-range.
const ServiceCIDR = "10.96.0.0/16"

// BinDir is the repository's .bin/, where tools/k8s/build.sh puts
// kube-apiserver and etcd.
func BinDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".bin")
}

// Missing names the binaries that are not built ("" when both are).
func Missing() string {
	var miss []string
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if st, err := os.Stat(filepath.Join(BinDir(), b)); err != nil || st.Mode()&0o111 == 0 {
			miss = append(miss, ".bin/"+b)
		}
	}
	return strings.Join(miss, " and ")
}

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	Dir        string       // the temporary directory holding everything
	URL        string       // https://127.0.0.1:PORT
	Token      string       // the admin's bearer token (group system:masters)
	Kubeconfig string       // path of a kubeconfig for the admin
	Config     *rest.Config // the admin's client configuration
	Client     kubernetes.Interface

	t        testing.TB
	apiPort  int
	etcdURL  string
	mu       sync.Mutex
	apiProc  *proc
	etcdProc *proc
}

// proc is a started process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(dir, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Its own process group, and killed with the test process: nothing
	// outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// From the spawning thread: Pdeathsig is sent when the creating
	// thread ends, and internal/testnet ends threads (see spawn).
	if err := spawn.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after a grace period, and waits.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last lines of the process's log.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts etcd and kube-apiserver for t, waits until /readyz answers
// ok, and stops and removes them when t ends. It skips t when the
// binaries are missing.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if m := Missing(); m != "" {
		t.Skipf("no real API server: %s not built (./test.sh builds them with tools/k8s/build.sh)", m)
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, Dir: dir}
	t.Cleanup(func() {
		api, etcd := c.stopProcs()
		if t.Failed() {
			for _, p := range []*proc{api, etcd} {
				if p != nil {
					t.Logf("last lines of %s's log:\n%s", p.name, p.tail(30))
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// StartProgram is Start for a program that is not a test (a benchmark
// under bench/): it returns an error instead of skipping or failing (also
// when the binaries are missing), and stop, never nil and safe to call
// more than once, stops both processes and removes the directory.
func StartProgram() (c *Cluster, stop func(), err error) {
	if m := Missing(); m != "" {
		return nil, func() {}, fmt.Errorf("no real API server: %s not built (./test.sh builds them with tools/k8s/build.sh)", m)
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, func() {}, err
	}
	c = &Cluster{Dir: dir}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			c.stopProcs()
			_ = os.RemoveAll(dir)
		})
	}
	if err := c.start(); err != nil {
		stop()
		return nil, stop, err
	}
	return c, stop, nil
}

// stopProcs stops kube-apiserver, then etcd, and returns them.
func (c *Cluster) stopProcs() (api, etcd *proc) {
	c.mu.Lock()
	api, etcd = c.apiProc, c.etcdProc
	c.mu.Unlock()
	api.stop(10 * time.Second)
	etcd.stop(10 * time.Second)
	return api, etcd
}

func (c *Cluster) start() error {
	if err := c.startEtcd(); err != nil {
		return err
	}
	if err := c.writeFiles(); err != nil {
		return err
	}
	return c.StartAPIServer()
}

func (c *Cluster) startEtcd() error {
	bin := filepath.Join(BinDir(), "etcd")
	var lastErr error
	for try := 0; try < 3; try++ {
		cport, err := freePort()
		if err != nil {
			return err
		}
		pport, err := freePort()
		if err != nil {
			return err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(cport)
		peer := "http://127.0.0.1:" + strconv.Itoa(pport)
		p, err := startProc(c.Dir, "etcd", bin,
			"--name", "kubetest",
			"--data-dir", filepath.Join(c.Dir, "etcd"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "kubetest="+peer,
			"--unsafe-no-fsync", "--log-level", "warn",
		)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.etcdProc = p
		c.mu.Unlock()
		if err := waitHTTP(p, client+"/health", nil, "", 30*time.Second); err != nil {
			p.stop(5 * time.Second)
			lastErr = fmt.Errorf("etcd did not become healthy: %w\n%s", err, p.tail(20))
			continue // a port taken in between: try others
		}
		c.etcdURL = client
		return nil
	}
	return lastErr
}

func (c *Cluster) writeFiles() error {
	c.Token = randHex(16)
	if err := os.WriteFile(filepath.Join(c.Dir, "tokens.csv"),
		[]byte(c.Token+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "serving.crt"), certPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "serving.key"), keyPEM, 0o600); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	c.apiPort = port
	c.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	c.Config = &rest.Config{Host: c.URL, BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{CAData: certPEM}, QPS: 100, Burst: 200}
	c.Client, err = kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: c.URL, CertificateAuthorityData: certPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.Token}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "kubetest"
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	return clientcmd.WriteToFile(*kc, c.Kubeconfig)
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on
// the cluster's port and waits until /readyz answers ok.
func (c *Cluster) StartAPIServer() error {
	c.mu.Lock()
	if c.apiProc != nil && !c.apiProc.exited() {
		c.mu.Unlock()
		return errors.New("kube-apiserver is running")
	}
	c.mu.Unlock()
	d := c.Dir
	p, err := startProc(d, "kube-apiserver", filepath.Join(BinDir(), "kube-apiserver"),
		"--etcd-servers", c.etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(c.apiPort),
		"--tls-cert-file", filepath.Join(d, "serving.crt"), "--tls-private-key-file", filepath.Join(d, "serving.key"),
		"--cert-dir", filepath.Join(d, "certs"),
		"--token-auth-file", filepath.Join(d, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--allow-privileged=true", // the node DaemonSet of deploy/ is privileged, as kube-proxy's is
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", filepath.Join(d, "sa.key"),
		"--service-account-signing-key-file", filepath.Join(d, "sa.key"),
		"--service-cluster-ip-range", ServiceCIDR,
		// No controller-manager creates the default ServiceAccount; the
		// API server's own reconciler would publish a loopback endpoint,
		// which Endpoints validation refuses.
		"--disable-admission-plugins", "ServiceAccount",
		"--endpoint-reconciler-type", "none",
		"--profiling=false",
	)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.apiProc = p
	c.mu.Unlock()
	if err := waitHTTP(p, c.URL+"/readyz", c.Config.CAData, c.Token, 90*time.Second); err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w\n%s", err, p.tail(30))
	}
	return nil
}

// StopAPIServer stops kube-apiserver (etcd keeps running).
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	p := c.apiProc
	c.mu.Unlock()
	p.stop(10 * time.Second)
}

// Kubectl runs kubectl against the cluster and returns its standard
// output; it skips the test when no kubectl is installed (Debian's
// kubernetes-client).
func (c *Cluster) Kubectl(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed (Debian's kubernetes-client)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "HOME="+c.Dir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// waitHTTP polls url until it answers 200 "ok", p exits, or the time is up.
func waitHTTP(p *proc, url string, caPEM []byte, token string, timeout time.Duration) error {
	tc := &tls.Config{}
	if caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tc.RootCAs = pool
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(b.String()))
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %v", timeout, last)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
