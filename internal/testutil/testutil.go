// Package testutil holds small helpers that tests in several packages
// share. It is imported only by _test.go files.
package testutil

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// SyncBuffer is a bytes.Buffer that a process or goroutine may write while
// a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// LocalAPI returns a client-go clientset and a plain HTTP client for a
// node's local API on the unix socket sock (the URL host is ignored).
func LocalAPI(sock string) (*kubernetes.Clientset, *http.Client, error) {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	c, err := kubernetes.NewForConfig(&rest.Config{Host: "http://localhost", Dial: dial, QPS: 1000, Burst: 1000})
	if err != nil {
		return nil, nil, err
	}
	return c, &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 2 * time.Second}, nil
}

// Ready reports whether the local API behind hc (from LocalAPI) answers
// /readyz with 200.
func Ready(hc *http.Client) bool {
	resp, err := hc.Get("http://localhost/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
