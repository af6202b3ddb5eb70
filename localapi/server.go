package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/node"
)

// LogStreamer writes a container's log, as the kubelet serves
// GET /api/v1/namespaces/NS/pods/NAME/log. Errors are apierrors
// StatusErrors (NotFound, BadRequest naming the containers, ...).
type LogStreamer interface {
	StreamLogs(ctx context.Context, namespace, pod string, opts node.LogOptions, w io.Writer) error
}

// Options configure the handler New returns.
type Options struct {
	// Logs serves pods/log; nil answers 503 ServiceUnavailable.
	Logs LogStreamer
	// Gatherer is what /metrics exposes; nil means prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives the handler's own request metrics
	// (apiserver_request_total, apiserver_request_duration_seconds,
	// apiserver_longrunning_requests); nil registers nothing.
	Registerer prometheus.Registerer
	// Ready answers /readyz: a nil error means ready. nil means always ready.
	Ready func() error
	// Logger gets one Debug line per request; nil means slog.Default().
	Logger *slog.Logger
	// Version is Switchboard's own version, shown in /version's gitVersion
	// after the Kubernetes API version served.
	Version string
	// Profiling serves Go's profiles under /debug/pprof/, as Kubernetes
	// components do with --profiling.
	Profiling bool
}

// maxBodyBytes bounds request bodies, as the API server's
// --max-request-body-bytes default (3 MiB).
const maxBodyBytes = 3 << 20

type server struct {
	store   *cluster.Store
	opts    Options
	log     *slog.Logger
	metrics *metrics
}

// New returns the HTTP handler serving store. Serve it with Serve (or any
// http.Server whose BaseContext ends when it shuts down, so that watches
// and followed logs end too).
func New(store *cluster.Store, opts Options) http.Handler {
	s := &server{store: store, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.opts.Gatherer == nil {
		s.opts.Gatherer = prometheus.DefaultGatherer
	}
	s.metrics = newMetrics(opts.Registerer)
	return s
}

// ServeHTTP logs, counts and recovers around route.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	info := &requestInfo{verb: strings.ToLower(r.Method)}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("localapi: panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if !rw.wroteHeader {
				writeError(rw, r, apierrors.NewInternalError(fmt.Errorf("panic serving %s %s: %v", r.Method, r.URL.Path, v)))
			}
		}
		code := rw.code
		if code == 0 {
			code = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.observe(info, code, d)
		s.log.Debug("localapi request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"code", code, "duration", d, "verb", info.verb, "resource", info.resource)
	}()
	s.route(rw, r, info)
}

// requestInfo is what metrics and logs know of a request.
type requestInfo struct {
	verb, resource, subresource string
	longRunning                 bool
}

func (s *server) route(w http.ResponseWriter, r *http.Request, info *requestInfo) {
	p := r.URL.Path
	switch p {
	case "/healthz", "/livez", "/healthz/ping", "/livez/ping", "/readyz/ping":
		writeText(w, http.StatusOK, "ok")
		return
	case "/readyz":
		s.readyz(w)
		return
	case "/metrics":
		promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	case "/version", "/version/":
		if !onlyGet(w, r) {
			return
		}
		writeObject(w, r, http.StatusOK, s.version())
		return
	case "/":
		if !onlyGet(w, r) {
			return
		}
		writeObject(w, r, http.StatusOK, rootPaths())
		return
	}
	if p == "/openapi/v3" || strings.HasPrefix(p, "/openapi/v3/") {
		s.serveOpenAPI(w, r)
		return
	}
	if s.opts.Profiling && strings.HasPrefix(p, "/debug/pprof") {
		info.longRunning = true
		serveProfiling(w, r)
		return
	}
	segs := splitPath(p)
	switch {
	case len(segs) >= 1 && segs[0] == "api":
		if len(segs) == 1 {
			if onlyGet(w, r) {
				writeObject(w, r, http.StatusOK, apiVersions(r))
			}
			return
		}
		gv := schema.GroupVersion{Version: segs[1]}
		if !servesGroupVersion(gv) {
			writeError(w, r, errNotFound())
			return
		}
		if len(segs) == 2 {
			if onlyGet(w, r) {
				writeObject(w, r, http.StatusOK, resourceList(gv))
			}
			return
		}
		s.serveResource(w, r, gv, segs[2:], info)
		return
	case len(segs) >= 1 && segs[0] == "apis":
		switch len(segs) {
		case 1:
			if onlyGet(w, r) {
				writeObject(w, r, http.StatusOK, apiGroupList())
			}
			return
		case 2:
			g := apiGroup(segs[1])
			if g == nil {
				writeError(w, r, errNotFound())
				return
			}
			if onlyGet(w, r) {
				writeObject(w, r, http.StatusOK, g)
			}
			return
		}
		gv := schema.GroupVersion{Group: segs[1], Version: segs[2]}
		if gv.Group == "" || !servesGroupVersion(gv) {
			writeError(w, r, errNotFound())
			return
		}
		if len(segs) == 3 {
			if onlyGet(w, r) {
				writeObject(w, r, http.StatusOK, resourceList(gv))
			}
			return
		}
		s.serveResource(w, r, gv, segs[3:], info)
		return
	}
	writeError(w, r, errNotFound())
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (s *server) readyz(w http.ResponseWriter) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			// The API server's healthz format: one [-] line per failed check.
			writeText(w, http.StatusInternalServerError, fmt.Sprintf("[-]switchboard failed: %v\nreadyz check failed", err))
			return
		}
	}
	writeText(w, http.StatusOK, "ok")
}

func onlyGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	writeError(w, r, errMethodNotAllowed(r, schema.GroupResource{}, ""))
	return false
}

// errNotFound is the API server's answer for a path it does not serve.
func errNotFound() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotFound,
		Reason:  metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource",
		Details: &metav1.StatusDetails{},
	}}
}

// errMethodNotAllowed is the API server's answer for a verb a path does
// not support.
func errMethodNotAllowed(r *http.Request, gr schema.GroupResource, name string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusMethodNotAllowed,
		Reason:  metav1.StatusReasonMethodNotAllowed,
		Message: fmt.Sprintf("the server does not allow this method on the requested resource (%s %s)", strings.ToLower(r.Method), strings.TrimSuffix(gr.String()+" "+name, " ")),
		Details: &metav1.StatusDetails{Group: gr.Group, Kind: gr.Resource, Name: name},
	}}
}

// errUnsupportedMediaType is the API server's 415 for a body it cannot read.
func errUnsupportedMediaType(contentType string, accepted ...string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnsupportedMediaType,
		Reason:  metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format (%q) - accepted media types include: %s", contentType, strings.Join(accepted, ", ")),
		Details: &metav1.StatusDetails{},
	}}
}

// statusOf turns any error into the metav1.Status the API server would
// send: apierrors keep theirs, anything else is a 500 InternalError.
func statusOf(err error) metav1.Status {
	var st metav1.Status
	var as apierrors.APIStatus
	if errors.As(err, &as) {
		st = as.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	st.Status = metav1.StatusFailure
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	return st
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := statusOf(err)
	writeObject(w, r, int(st.Code), &st)
}

// pretty tells whether to indent JSON: ?pretty=true, or a curl user agent
// (as the API server does).
func pretty(r *http.Request) bool {
	if v := r.URL.Query().Get("pretty"); v != "" {
		b, _ := strconv.ParseBool(v)
		return b
	}
	return strings.HasPrefix(r.UserAgent(), "curl")
}

// writeObject answers JSON whatever the Accept header asks for: clients
// asking for protobuf or a Table also accept JSON and fall back to it.
func writeObject(w http.ResponseWriter, r *http.Request, code int, obj any) {
	var b []byte
	var err error
	if pretty(r) {
		b, err = json.MarshalIndent(obj, "", "  ")
	} else {
		b, err = json.Marshal(obj)
	}
	if err != nil {
		st := statusOf(apierrors.NewInternalError(fmt.Errorf("encoding the response: %w", err)))
		b, _ = json.Marshal(&st)
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(b, '\n'))
	}
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text)
}

// responseWriter records the status code; it unwraps for
// http.ResponseController (flushes and deadlines of streaming answers).
type responseWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.code, w.wroteHeader = code, true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
