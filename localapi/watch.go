package localapi

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/switchboard-dev/switchboard/cluster"
)

// bookmarkInterval is how often a watch that allows bookmarks gets one
// (the API server's watch cache sends them about once a minute).
var bookmarkInterval = time.Minute

// minRequestTimeout is the API server's --min-request-timeout default: a
// watch without timeoutSeconds lasts a random time between it and twice it.
const minRequestTimeout = 30 * time.Minute

// wireEvent is a watch event on the wire (metav1.WatchEvent with the
// object inline).
type wireEvent struct {
	Type   watch.EventType `json:"type"`
	Object any             `json:"object"`
}

// watch streams newline-delimited JSON watch events, as the API server
// does for ?watch=true. It ends when the client goes, the request's
// context ends (server shutdown), timeoutSeconds pass, or the store stops
// the watch.
func (s *server) watch(w http.ResponseWriter, r *http.Request, rr *resourceRequest, opts metav1.ListOptions) {
	lsel, fsel, err := selectors(rr.kind, opts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if rr.name != "" { // /watch/.../NAME watches one object
		one := fields.OneTermEqualSelector("metadata.name", rr.name)
		if fsel != nil {
			one = fields.AndSelectors(one, fsel)
		}
		fsel = one
	}
	current := s.store.ResourceVersion()
	rv := opts.ResourceVersion
	sendInitial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	if opts.SendInitialEvents != nil && !sendInitial && (rv == "" || rv == "0") {
		// sendInitialEvents=false without a version: start at the most
		// recent version, without the current state.
		rv = current
	}
	last, _ := strconv.ParseUint(current, 10, 64)
	if n, err := strconv.ParseUint(rv, 10, 64); err == nil && n > 0 && n < last {
		last = n
	}
	wi, err := s.store.Watch(rr.kind, cluster.WatchOptions{
		Namespace:         rr.namespace,
		Selector:          lsel,
		ResourceVersion:   rv,
		SendInitialEvents: sendInitial,
		Filter:            fieldFilter(fsel),
	})
	if apierrors.IsBadRequest(err) {
		writeError(w, r, err)
		return
	}

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	write := func(e wireEvent) bool {
		b, err := json.Marshal(e)
		if err != nil {
			st := statusOf(apierrors.NewInternalError(err))
			b, _ = json.Marshal(wireEvent{Type: watch.Error, Object: &st})
		}
		_, err = w.Write(append(b, '\n'))
		return err == nil
	}
	if err != nil {
		// Errors found once the request was accepted (a version too old
		// or too new) come as an ERROR event, as from the watch cache.
		st := statusOf(err)
		write(wireEvent{Type: watch.Error, Object: &st})
		_ = rc.Flush()
		return
	}
	defer wi.Stop()
	if rc.Flush() != nil {
		return
	}

	timeout := minRequestTimeout + rand.N(minRequestTimeout)
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var bookmarks <-chan time.Time
	if opts.AllowWatchBookmarks {
		t := time.NewTicker(bookmarkInterval)
		defer t.Stop()
		bookmarks = t.C
	}

	// send writes one event; it tracks the newest version delivered so
	// that bookmarks never claim more than the client has seen.
	send := func(e watch.Event) bool {
		o, ok := e.Object.(cluster.Object)
		if !ok {
			return true
		}
		if n, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64); err == nil && n > last {
			last = n
		}
		if e.Type == watch.Bookmark && !opts.AllowWatchBookmarks {
			return true
		}
		return write(wireEvent{Type: e.Type, Object: o})
	}
	events := wi.ResultChan()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-timer.C:
			return
		case <-bookmarks:
			bm := rr.kind.New()
			bm.SetResourceVersion(strconv.FormatUint(last, 10))
			if !write(wireEvent{Type: watch.Bookmark, Object: bm}) || rc.Flush() != nil {
				return
			}
		case e, ok := <-events:
			if !ok || !send(e) {
				return
			}
			// Write whatever else is ready, then flush once.
		more:
			for {
				select {
				case e, ok := <-events:
					if !ok || !send(e) {
						_ = rc.Flush()
						return
					}
				default:
					break more
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}
