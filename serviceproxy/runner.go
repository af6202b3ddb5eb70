package serviceproxy

import (
	"context"
	"time"
)

// runner calls a sync function as kube-proxy's BoundedFrequencyRunner
// (pkg/util/async) does, from one goroutine, so two syncs never overlap:
//
//   - "Runs of the function will have at least minInterval between them
//     (from completion to next start)"; "Run requests that would violate
//     the minInterval are coalesced and run at the next opportunity";
//   - "The function will be run at least once per maxInterval";
//   - a failed run is retried after a back-off (minInterval, doubling, at
//     most maxInterval), as kube-proxy calls RetryAfter when a sync fails;
//
// and it tells the function when it must be full: on the first run, after
// a failed run, and when the last full run is maxInterval old (each
// periodic resync).
type runner struct {
	minInterval, maxInterval time.Duration
	fn                       func(ctx context.Context, full bool) error
	kick                     chan struct{}
}

func newRunner(minInterval, maxInterval time.Duration, fn func(context.Context, bool) error) *runner {
	return &runner{minInterval: minInterval, maxInterval: maxInterval, fn: fn, kick: make(chan struct{}, 1)}
}

// Run asks for a run as soon as minInterval allows. Requests made while a
// run is going or waiting are coalesced into one.
func (r *runner) Run() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// backoff is the delay before retry number n (n ≥ 1).
func (r *runner) backoff(n int) time.Duration {
	d := r.minInterval
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	for i := 1; i < n && d < r.maxInterval; i++ {
		d *= 2
	}
	return min(d, r.maxInterval)
}

// Loop runs until ctx is done. The first run happens at once.
func (r *runner) Loop(ctx context.Context) {
	var (
		lastRun, lastFull time.Time
		needFull          = true
		pending           = true // the first run
		failures          int
		retryAt           time.Time
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			pending = true
		case <-timer.C:
		}
		now := time.Now()
		// When is the next run due?
		due := lastRun.Add(r.maxInterval) // periodic
		if pending {
			due = minTime(due, lastRun.Add(r.minInterval))
		}
		if failures > 0 {
			due = minTime(due, retryAt)
		}
		if lastRun.IsZero() {
			due = now
		}
		if now.Before(due) {
			resetTimer(timer, due.Sub(now))
			continue
		}
		full := needFull || lastFull.IsZero() || now.Sub(lastFull) >= r.maxInterval
		// This run takes every change made so far.
		pending = false
		select {
		case <-r.kick:
		default:
		}
		err := r.fn(ctx, full)
		lastRun = time.Now()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			needFull = true
			retryAt = lastRun.Add(r.backoff(failures))
		} else {
			failures = 0
			needFull = false
			if full {
				lastFull = lastRun
			}
		}
		next := lastRun.Add(r.maxInterval)
		if failures > 0 {
			next = minTime(next, retryAt)
		}
		resetTimer(timer, time.Until(next))
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	if d < 0 {
		d = 0
	}
	t.Reset(d)
}
