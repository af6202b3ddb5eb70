package localapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/node"
)

// followCommitDelay is how long a followed log may stay silent before the
// response headers go out anyway (so that a client is not left without an
// answer while a quiet container writes nothing). Until then an error
// from the LogStreamer still becomes a proper Status.
var followCommitDelay = time.Second

var errLimitReached = errors.New("limitBytes reached")

// logs serves GET .../pods/NAME/log through the LogStreamer, as plain
// text, flushed as it is written.
func (s *server) logs(w http.ResponseWriter, r *http.Request, rr *resourceRequest) {
	popts, err := podLogOptions(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := s.store.Get(cluster.KindPod, rr.namespace, rr.name); err != nil {
		writeError(w, r, err)
		return
	}
	if s.opts.Logs == nil {
		writeError(w, r, apierrors.NewServiceUnavailable("this node serves no container logs"))
		return
	}
	lo := node.LogOptions{
		Container:    popts.Container,
		Follow:       popts.Follow,
		Previous:     popts.Previous,
		Timestamps:   popts.Timestamps,
		TailLines:    popts.TailLines,
		SinceSeconds: popts.SinceSeconds,
	}
	if popts.SinceTime != nil {
		secs := int64(math.Ceil(time.Since(popts.SinceTime.Time).Seconds()))
		if secs < 1 {
			secs = 1
		}
		lo.SinceSeconds = &secs
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	lw := &logWriter{w: w, rc: http.NewResponseController(w), cancel: cancel, limit: -1}
	if popts.LimitBytes != nil {
		lw.limit = *popts.LimitBytes
	}
	_ = lw.rc.SetWriteDeadline(time.Time{})
	if lo.Follow {
		t := time.AfterFunc(followCommitDelay, func() {
			lw.mu.Lock()
			defer lw.mu.Unlock()
			if !lw.done {
				lw.startLocked()
				_ = lw.rc.Flush()
			}
		})
		defer t.Stop()
	}
	err = s.opts.Logs.StreamLogs(ctx, rr.namespace, rr.name, lo, lw)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.done = true
	if err != nil && !errors.Is(err, errLimitReached) && !lw.started {
		if r.Context().Err() == nil {
			writeError(w, r, err)
		}
		return
	}
	lw.startLocked()
	if err != nil && !errors.Is(err, errLimitReached) && r.Context().Err() == nil {
		s.log.Debug("localapi: log stream ended with an error", "pod", rr.namespace+"/"+rr.name, "err", err)
	}
}

// logWriter sends the response headers on first use and flushes every
// write, so that followed logs reach the client line by line.
type logWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	cancel  context.CancelFunc
	limit   int64 // bytes left; -1 for no limit
	started bool
	done    bool
}

func (lw *logWriter) startLocked() {
	if lw.started {
		return
	}
	lw.started = true
	lw.w.Header().Set("Content-Type", "text/plain")
	lw.w.Header().Set("X-Content-Type-Options", "nosniff")
	lw.w.WriteHeader(http.StatusOK)
}

func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.done {
		return 0, errors.New("the log request has ended")
	}
	lw.startLocked()
	full := len(p)
	if lw.limit >= 0 {
		if int64(len(p)) > lw.limit {
			p = p[:lw.limit]
		}
		lw.limit -= int64(len(p))
	}
	n, err := lw.w.Write(p)
	if err == nil {
		err = lw.rc.Flush()
	}
	if err != nil {
		lw.cancel()
		return n, err
	}
	if lw.limit == 0 {
		lw.cancel()
		if n < full {
			return n, errLimitReached
		}
	}
	return full, nil
}
