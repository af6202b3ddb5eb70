package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	utilio "k8s.io/utils/io"
)

// httpTransport is shared by all httpGet probes, as kubelet shares one:
// certificates are not verified ("the kubelet ... skips the certificate
// verification" for scheme HTTPS), keep-alives are off so every attempt
// opens a fresh connection, no proxy from the environment, no transparent
// compression (so no Accept-Encoding header), and the lingering-off dialer.
var httpTransport = sync.OnceValue(func() *http.Transport {
	return utilnet.SetTransportDefaults(&http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as kubelet: probes do not verify certificates
		DisableKeepAlives:  true,
		Proxy:              http.ProxyURL(nil),
		DisableCompression: true,
		DialContext:        probeDialer().DialContext,
	})
})

// newHTTPRequest builds the GET of an httpGet action, as kubelet's
// NewRequestForHTTPGetAction: scheme (default HTTP), host (httpGet.host or
// the pod IP), port (number or container port name), path, httpHeaders; a
// "User-Agent: kube-probe/1.xx" and "Accept: */*" unless the probe sets
// them (an empty Accept removes it); a Host header sets the request's Host.
func newHTTPRequest(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string) (*http.Request, error) {
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := g.Host
	if host == "" {
		host = podIP
	}
	port, err := resolveContainerPort(g.Port, c)
	if err != nil {
		return nil, err
	}
	u := formatURL(scheme, host, port, g.Path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	headers := make(http.Header, len(g.HTTPHeaders)+2)
	for _, h := range g.HTTPHeaders {
		headers.Add(h.Name, h.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", userAgent())
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}

// formatURL is kubelet's: the path is parsed as a URL reference (so a
// query string is kept); if it does not parse it is passed along as is.
func formatURL(scheme, host string, port int, path string) *url.URL {
	u, err := url.Parse(path)
	if err != nil {
		u = &url.URL{Path: path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	return u
}

// redirectChecker is kubelet's with followNonLocalRedirects=false: follow
// redirects to the same host name (at most 10), stop at a redirect to
// another host and use that 3xx response.
func redirectChecker(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// httpProbe performs req within timeout, as kubelet's DoHTTPProbe: "Any
// code greater than or equal to 200 and less than 400 indicates success.
// Any other code indicates failure." A final 3xx (a redirect that was not
// followed) is a success with a warning. At most 10 KiB of the body is
// read. Transport errors, including the timeout, are failures whose
// message is the client's error.
func httpProbe(req *http.Request, timeout time.Duration) (outcome, string, error) {
	client := &http.Client{
		Timeout:       timeout,
		Transport:     httpTransport(),
		CheckRedirect: redirectChecker,
	}
	res, err := client.Do(req)
	if err != nil {
		// Convert errors into failures to catch timeouts.
		return outcomeFailure, err.Error(), nil
	}
	defer func() { _ = res.Body.Close() }()
	b, err := utilio.ReadAtMost(res.Body, maxReadLength)
	if err != nil && !errors.Is(err, utilio.ErrLimitReached) {
		return outcomeFailure, "", err
	}
	body := string(b)
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices { // redirect not followed
			return outcomeWarning, fmt.Sprintf("Probe terminated redirects, Response body: %v", body), nil
		}
		return outcomeSuccess, body, nil
	}
	// As kubelet: "Until https://issue.k8s.io/99425 is addressed, this
	// user-facing failure message must not contain the response body."
	return outcomeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}
