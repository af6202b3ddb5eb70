package testnet

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// linkUpTimeout bounds the wait for the kernel to report new links up.
const linkUpTimeout = 10 * time.Second

// linkWatch follows RTM_NEWLINK messages of one namespace.
//
// Why: the kernel turns a link's carrier on at once but activates its
// queueing discipline (and moves a bridge port to forwarding) a moment
// later, from the asynchronous linkwatch work; frames sent in between are
// dropped, and a dropped ARP request costs a one-second retry. The
// RTM_NEWLINK that reports the link operationally up is sent after that
// work, so waiting for it makes AddPod/AddClient return a usable link.
type linkWatch struct {
	ch   chan netlink.LinkUpdate
	done chan struct{}
	errs chan error
}

func watchLinks(fd netns.NsHandle) (*linkWatch, error) {
	w := &linkWatch{
		ch:   make(chan netlink.LinkUpdate, 64),
		done: make(chan struct{}),
		errs: make(chan error, 1),
	}
	err := netlink.LinkSubscribeWithOptions(w.ch, w.done, netlink.LinkSubscribeOptions{
		Namespace: &fd,
		ErrorCallback: func(err error) {
			select {
			case w.errs <- err:
			default:
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to link updates: %w", err)
	}
	return w, nil
}

// close stops the subscription; the receiving goroutine ends once its
// socket is closed and the channel drained.
func (w *linkWatch) close() {
	close(w.done)
	go func() {
		for range w.ch {
		}
	}()
}

// waitUp waits for an update reporting each named link operationally up.
func (w *linkWatch) waitUp(names ...string) error {
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	timer := time.NewTimer(linkUpTimeout)
	defer timer.Stop()
	for len(pending) > 0 {
		select {
		case u, ok := <-w.ch:
			if !ok {
				return fmt.Errorf("link updates ended while waiting for %s", keys(pending))
			}
			if a := u.Link.Attrs(); a != nil && pending[a.Name] && a.OperState == netlink.OperUp {
				delete(pending, a.Name)
			}
		case err := <-w.errs:
			return fmt.Errorf("waiting for %s to come up: %w", keys(pending), err)
		case <-timer.C:
			return fmt.Errorf("links %s not up after %v", keys(pending), linkUpTimeout)
		}
	}
	return nil
}

func keys(m map[string]bool) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}
