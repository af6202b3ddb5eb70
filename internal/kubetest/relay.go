package kubetest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// KubeconfigVia makes the API server reachable through ln and returns the
// path of an admin kubeconfig whose server is ln's address.
//
// Every connection accepted on ln is piped, bytes unchanged (TLS goes end
// to end), to a connection dialled to the API server from the calling
// process's own network namespace. So ln may have been created in another
// network namespace (on a thread switched into it, e.g. in testnet's
// Host.Do): a node namespace then reaches the API server on its own
// loopback without any link or route to the root namespace. The
// kubeconfig names "127.0.0.1" as the TLS server name (the serving
// certificate's address), so ln may listen on any address.
//
// While the API server is stopped, accepted connections are closed at
// once (clients see a reset and retry); the relay keeps serving across
// StopAPIServer/StartAPIServer. ln and every relayed connection are
// closed, and the kubeconfig removed, when t ends.
func (c *Cluster) KubeconfigVia(t testing.TB, ln net.Listener) string {
	t.Helper()
	target := strings.TrimPrefix(c.URL, "https://")
	var (
		mu     sync.Mutex
		conns  = map[net.Conn]bool{}
		closed bool
		wg     sync.WaitGroup
	)
	// track registers a connection; false once the relay is closed.
	track := func(cs ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return false
		}
		for _, c := range cs {
			conns[c] = true
		}
		return true
	}
	untrack := func(cs ...net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			delete(conns, c)
			c.Close()
		}
	}
	path := filepath.Join(c.Dir, "kubeconfig-via-"+strings.NewReplacer(":", "_", "[", "", "]", "").Replace(ln.Addr().String()))
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		_ = os.Remove(path)
	})

	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: "https://" + ln.Addr().String(),
		CertificateAuthorityData: c.Config.CAData, TLSServerName: "127.0.0.1"}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.Token}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("kubetest: kubeconfig for the relay on %s: %v", ln.Addr(), err)
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
				continue
			}
			if !track(in) {
				in.Close()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A new goroutine: it does not run on a thread that some
				// caller switched into another namespace, so the dial
				// leaves from this process's namespace.
				out, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					untrack(in) // the API server is down: a reset
					return
				}
				if !track(out) {
					out.Close()
					untrack(in)
					return
				}
				sandbox.Pipe(in, out)
				untrack(in, out)
			}()
		}
	}()
	return path
}
