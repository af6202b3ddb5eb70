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

// httpTransport is kubelet's probe transport: certificates are not
// verified ("the kubelet ... skips the certificate verification" for
// scheme HTTPS), keep-alives are off so every attempt opens a fresh
// connection, no proxy from the environment, no transparent compression
// (so no Accept-Encoding header), and the lingering-off dialer. Plain
// HTTP requests go through probeTransport instead, which does the same
// exchange without the Transport's goroutines; HTTPS (with kubelet's
// HTTP/2 negotiation) and anything out of the ordinary still use this.
var httpTransport = sync.OnceValue(func() *http.Transport {
	return utilnet.SetTransportDefaults(&http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as kubelet: probes do not verify certificates
		DisableKeepAlives:  true,
		Proxy:              http.ProxyURL(nil),
		DisableCompression: true,
		DialContext:        sharedDialer.DialContext,
	})
})

// sharedDialer is probeDialer's, for every probe (a Dialer is safe for
// concurrent use; tcpProbe sets its timeout on a copy).
var sharedDialer = probeDialer()

// httpClient is the client of every httpGet probe. It has no Timeout: the
// attempt's deadline is on the request's context (which is all
// Client.Timeout does with a known Transport), and httpProbe words a
// timeout as the client would.
var httpClient = &http.Client{
	Transport:     &probeTransport{dialer: sharedDialer, fallback: func() http.RoundTripper { return httpTransport() }},
	CheckRedirect: redirectChecker,
}

// httpRequest is an httpGet request ready to be sent: the request
// (without a context) and, when probeTransport sends it itself, the bytes
// it writes on the connection.
type httpRequest struct {
	req  *http.Request
	wire []byte
}

// httpCache keeps a worker's httpGet request from one attempt to the
// next: it is the same as long as the probe (a worker's never changes),
// the container (its ports) and the pod IP are. Used by one goroutine.
type httpCache struct {
	ip   string
	ctr  *corev1.Container
	last *httpRequest
}

// request returns the request for g against container c at podIP, from
// the cache when c and podIP are the ones it was built for. A nil cache
// builds it every time.
func (hc *httpCache) request(g *corev1.HTTPGetAction, c *corev1.Container, podIP string) (*httpRequest, error) {
	if hc != nil && hc.last != nil && hc.ip == podIP && hc.ctr == c {
		return hc.last, nil
	}
	req, err := newHTTPRequest(context.Background(), g, c, podIP)
	if err != nil {
		return nil, err
	}
	r := &httpRequest{req: req, wire: renderRequest(req)}
	if hc != nil {
		hc.ip, hc.ctr, hc.last = podIP, c, r
	}
	return r, nil
}

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

// firstResponse is a RoundTripper that answers its first request with
// res (the response already read for it) and passes on the others.
type firstResponse struct {
	res  *http.Response
	next http.RoundTripper
}

func (f *firstResponse) RoundTrip(req *http.Request) (*http.Response, error) {
	if res := f.res; res != nil {
		f.res = nil
		return res, nil
	}
	return f.next.RoundTrip(req)
}

// errTooManyRedirects is redirectChecker's error (a sentinel so that a
// timeout is never blamed for it).
var errTooManyRedirects = errors.New("stopped after 10 redirects")

// redirectChecker is kubelet's with followNonLocalRedirects=false: follow
// redirects to the same host name (at most 10), stop at a redirect to
// another host and use that 3xx response.
func redirectChecker(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errTooManyRedirects
	}
	return nil
}

// Suffixes net/http's Client adds to an error when its Timeout expired.
const (
	clientTimeoutHeaders = " (Client.Timeout exceeded while awaiting headers)"
	clientTimeoutBody    = " (Client.Timeout or context cancellation while reading body)"
)

// timeoutError is an error worded as net/http's Client words a timeout.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }
func (e *timeoutError) Timeout() bool { return true }

// httpProbe performs r within timeout as kubelet's DoHTTPProbe with a
// client whose Timeout is timeoutSeconds: "Any code greater than or
// equal to 200 and less than 400 indicates success. Any other code
// indicates failure." A final 3xx (a redirect that was not followed) is
// a success with a warning. At most 10 KiB of the body is read.
// Transport errors, including the timeout, are failures whose message is
// the client's error.
//
// The deadline is what Client.Timeout sets with a Transport it knows:
// now+timeout unless ctx ends sooner, and a failure after it is worded as
// the client's timeout. A request probeTransport sends itself (r.wire)
// goes to it directly with that deadline: the client adds nothing to a
// response that is not a redirect, and the rare redirect is handed to the
// client, which follows it from that response on. Other requests go
// through the client with the deadline on their context.
func httpProbe(ctx context.Context, r *httpRequest, timeout time.Duration) (outcome, string, error) {
	deadline := time.Now().Add(timeout)
	clientDeadline := deadline
	if d, ok := ctx.Deadline(); ok && !deadline.Before(d) {
		deadline, clientDeadline = d, time.Time{}
	}
	timedOut := func() bool { return !clientDeadline.IsZero() && time.Now().After(clientDeadline) }
	cancel := context.CancelFunc(func() {})
	defer func() { cancel() }()
	withDeadline := func() *http.Request {
		var c context.Context
		c, cancel = context.WithDeadline(ctx, deadline)
		return r.req.WithContext(c)
	}

	var res *http.Response
	var err error
	if r.wire == nil {
		res, err = httpClient.Do(withDeadline())
	} else {
		t := httpClient.Transport.(*probeTransport)
		res, err = t.exchange(ctx, deadline, r.req, r.wire)
		switch {
		case err != nil:
			// As the client words it (the URL has no user information).
			err = &url.Error{Op: "Get", URL: r.req.URL.String(), Err: err}
		case isRedirect(res.StatusCode):
			c := *httpClient
			c.Transport = &firstResponse{res: res, next: t}
			res, err = c.Do(withDeadline())
		}
	}
	if err != nil {
		// As Client.Timeout does: a request that failed once the deadline
		// passed is reported as the client's timeout.
		var ue *url.Error
		if errors.As(err, &ue) && timedOut() && !errors.Is(ue.Err, errTooManyRedirects) {
			ue.Err = &timeoutError{ue.Err.Error() + clientTimeoutHeaders}
		}
		// Convert errors into failures to catch timeouts.
		return outcomeFailure, err.Error(), nil
	}
	defer func() { _ = res.Body.Close() }()
	b, err := utilio.ReadAtMost(res.Body, maxReadLength)
	if err != nil && !errors.Is(err, utilio.ErrLimitReached) {
		if timedOut() {
			err = &timeoutError{err.Error() + clientTimeoutBody}
		}
		return outcomeFailure, "", err
	}
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices { // redirect not followed
			return outcomeWarning, "Probe terminated redirects, Response body: " + string(b), nil
		}
		return outcomeSuccess, string(b), nil
	}
	// As kubelet: "Until https://issue.k8s.io/99425 is addressed, this
	// user-facing failure message must not contain the response body."
	return outcomeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

// isRedirect: the codes net/http's Client follows.
func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}
