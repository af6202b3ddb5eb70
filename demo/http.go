package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

// HTTPConfig configures the HTTP demo server.
type HTTPConfig struct {
	Addr     string   // host:port to listen on; port 0 picks one
	Identity Identity // what the answers say
	// StartDelay holds the listener back, to exercise startup probes.
	StartDelay time.Duration
	// FailHealthzAfter makes /healthz fail this long after start (0: never).
	FailHealthzAfter time.Duration
	// ExitAfter makes the server exit with ExitCode this long after start
	// (0: never).
	ExitAfter time.Duration
	ExitCode  int
	Logger    *slog.Logger        // nil: slog.Default()
	Quiet     bool                // no log line per request
	OnListen  func(addr net.Addr) // called once the listener is open
}

// httpServer is the state behind the handler.
type httpServer struct {
	cfg         HTTPConfig
	log         *slog.Logger
	healthzFail atomic.Bool
	readyzFail  atomic.Bool
	exitOnce    sync.Once
	exit        chan int
}

// RunHTTP serves the HTTP demo until ctx ends (then it shuts down
// gracefully and returns nil) or an exit is requested (then it returns
// *ExitCode once the answer to the request that asked was sent).
//
// Every path answers with the pod's identity and the request (JSON, or
// text when Accept asks for text/plain). /healthz and /readyz answer 200
// "ok" or 503 "failing"; /control/healthz?fail=true|false and
// /control/readyz?fail=true|false switch them, and /control/exit?code=N
// exits with code N.
func RunHTTP(ctx context.Context, cfg HTTPConfig) error {
	s := &httpServer{cfg: cfg, log: cfg.Logger, exit: make(chan int, 1)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if cfg.StartDelay > 0 {
		s.log.Info("delaying start", "delay", cfg.StartDelay)
		select {
		case <-time.After(cfg.StartDelay):
		case <-ctx.Done():
			return nil
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("demo http listening", "addr", ln.Addr().String(), "pod", cfg.Identity.Pod, "namespace", cfg.Identity.Namespace)
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	var failHealthz, exitAfter <-chan time.Time
	if cfg.FailHealthzAfter > 0 {
		t := time.NewTimer(cfg.FailHealthzAfter)
		defer t.Stop()
		failHealthz = t.C
	}
	if cfg.ExitAfter > 0 {
		t := time.NewTimer(cfg.ExitAfter)
		defer t.Stop()
		exitAfter = t.C
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
			return serr
		}
		return err
	}
	for {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			s.log.Info("shutting down")
			return shutdown()
		case <-failHealthz:
			s.log.Info("healthz now failing", "after", cfg.FailHealthzAfter)
			s.healthzFail.Store(true)
		case <-exitAfter:
			s.log.Info("exiting", "after", cfg.ExitAfter, "code", cfg.ExitCode)
			_ = srv.Close()
			<-errc
			return &ExitCode{Code: cfg.ExitCode}
		case code := <-s.exit:
			s.log.Info("exiting on request", "code", code)
			// Shutdown waits for the handler that asked, so its answer
			// reaches the client before the process goes.
			if err := shutdown(); err != nil {
				s.log.Warn("shutdown before exit", "err", err)
			}
			return &ExitCode{Code: code}
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *httpServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	s.route(rec, r)
	if s.cfg.Quiet {
		return
	}
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "code", rec.code, "duration", time.Since(start))
}

func (s *httpServer) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		check(w, &s.healthzFail)
	case "/readyz":
		check(w, &s.readyzFail)
	case "/control/healthz":
		s.control(w, r, "healthz", &s.healthzFail)
	case "/control/readyz":
		s.control(w, r, "readyz", &s.readyzFail)
	case "/control/exit":
		code := 0
		if v := r.URL.Query().Get("code"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				http.Error(w, fmt.Sprintf("code=%q: want an integer from 0 to 255", v), http.StatusBadRequest)
				return
			}
			code = n
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "exiting with code %d\n", code)
		s.exitOnce.Do(func() { s.exit <- code })
	default:
		s.echo(w, r)
	}
}

func check(w http.ResponseWriter, fail *atomic.Bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if fail.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "failing")
		return
	}
	fmt.Fprint(w, "ok")
}

func (s *httpServer) control(w http.ResponseWriter, r *http.Request, name string, flag *atomic.Bool) {
	v := r.URL.Query().Get("fail")
	fail, err := strconv.ParseBool(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("fail=%q: want true or false", v), http.StatusBadRequest)
		return
	}
	flag.Store(fail)
	state := "ok"
	if fail {
		state = "failing"
	}
	s.log.Info("switched", "check", name, "state", state)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s: %s\n", name, state)
}

// Echo is the answer to any other path.
type Echo struct {
	Identity
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	Query      map[string][]string `json:"query"`
	Headers    map[string][]string `json:"headers"`
	Host       string              `json:"host"`
	RemoteAddr string              `json:"remoteAddr"`
	LocalAddr  string              `json:"localAddr"`
	Time       time.Time           `json:"time"`
}

func (s *httpServer) echo(w http.ResponseWriter, r *http.Request) {
	e := Echo{
		Identity:   s.cfg.Identity,
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.Query(),
		Headers:    r.Header,
		Host:       r.Host,
		RemoteAddr: r.RemoteAddr,
		Time:       time.Now().UTC(),
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		e.LocalAddr = la.String()
	}
	if wantsText(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, e.text())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e)
}

// wantsText is true when Accept prefers text/plain to JSON.
func wantsText(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "text/plain":
			return true
		case "application/json", "*/*":
			return false
		}
	}
	return false
}

func (e Echo) text() string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"pod", e.Pod}, {"namespace", e.Namespace}, {"node", e.Node}, {"podIP", e.PodIP}, {"hostname", e.Hostname},
		{"method", e.Method}, {"path", e.Path}, {"host", e.Host}, {"remoteAddr", e.RemoteAddr}, {"localAddr", e.LocalAddr},
		{"time", e.Time.Format(time.RFC3339Nano)},
	} {
		fmt.Fprintf(&b, "%s: %s\n", kv[0], kv[1])
	}
	for _, section := range []struct {
		name string
		m    map[string][]string
	}{{"query", e.Query}, {"header", e.Headers}} {
		keys := make([]string, 0, len(section.m))
		for k := range section.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range section.m[k] {
				fmt.Fprintf(&b, "%s %s: %s\n", section.name, k, v)
			}
		}
	}
	return b.String()
}

func newHTTPCommand() *cobra.Command {
	var (
		host  string
		port  int
		quiet bool
		cfg   HTTPConfig
	)
	cmd := &cobra.Command{
		Use:   "http",
		Short: "Serve HTTP: echo the pod's identity and the request; switchable /healthz and /readyz",
		Long: `Answers any path with JSON (or text with Accept: text/plain) naming the pod,
namespace, node, pod IP and hostname, and echoing the method, path, query,
headers and remote address.

/healthz and /readyz answer 200 "ok" or 503 "failing". Switch them with
/control/healthz?fail=true|false and /control/readyz?fail=true|false (any
method). /control/exit?code=N makes the process exit with code N.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := hostPort(host, port)
			if err != nil {
				return err
			}
			cfg.Addr = addr
			cfg.Identity = IdentityFromEnv()
			cfg.Logger = newLogger(cmd.OutOrStdout())
			cfg.Quiet = quiet
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return finish(RunHTTP(ctx, cfg))
		},
	}
	addrFlags(cmd, &host, &port, 8080)
	cmd.Flags().DurationVar(&cfg.StartDelay, "start-delay", 0, "open the listener only after this delay (exercises startup probes)")
	cmd.Flags().DurationVar(&cfg.FailHealthzAfter, "fail-healthz-after", 0, "make /healthz fail this long after start (exercises liveness probes)")
	cmd.Flags().DurationVar(&cfg.ExitAfter, "exit-after", 0, "exit this long after start (exercises restarts)")
	cmd.Flags().IntVar(&cfg.ExitCode, "exit-code", 1, "the exit code of --exit-after")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "do not log each request (for benchmarks with many probed pods)")
	return cmd
}
