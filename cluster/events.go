package cluster

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
)

// maxEvents bounds the Events kept in the store; the oldest go first (an
// API server expires them after an hour).
const maxEvents = 2000

// Recorder writes core/v1 Events about objects into the store, as
// client-go's event recorder does: a repeat of the same reason and message
// for the same object increments count and lastTimestamp instead of adding
// a new Event.
type Recorder struct {
	store     *Store
	component string
	host      string

	mu   sync.Mutex
	seen map[string]string // aggregation key -> event name
	fifo []string          // namespace/name of events, oldest first
}

// NewRecorder returns a recorder whose events name component (e.g.
// "kubelet", "deployment-controller") as their source.
func NewRecorder(s *Store, component, host string) *Recorder {
	return &Recorder{store: s, component: component, host: host, seen: map[string]string{}}
}

// Eventf records an event of type corev1.EventTypeNormal or
// corev1.EventTypeWarning about obj.
func (r *Recorder) Eventf(obj Object, eventType, reason, format string, args ...any) {
	if r == nil || obj == nil {
		return
	}
	k := KindOf(obj)
	if k == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	now := metav1.NewTime(time.Now())
	aggKey := string(obj.GetUID()) + "\x00" + eventType + "\x00" + reason + "\x00" + msg + "\x00" + r.component
	r.mu.Lock()
	defer r.mu.Unlock()
	if name, ok := r.seen[aggKey]; ok {
		_, err := r.store.UpdateFunc(KindEvent, ns, name, func(o Object) error {
			e := o.(*corev1.Event)
			e.Count++
			e.LastTimestamp = now
			return nil
		})
		if err == nil {
			return
		}
		delete(r.seen, aggKey)
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x%s", obj.GetName(), now.UnixNano(), utilrand.String(3)),
			Namespace: ns,
		},
		InvolvedObject: corev1.ObjectReference{
			Kind:            k.Name(),
			APIVersion:      k.GVK.GroupVersion().String(),
			Namespace:       obj.GetNamespace(),
			Name:            obj.GetName(),
			UID:             obj.GetUID(),
			ResourceVersion: obj.GetResourceVersion(),
		},
		Reason:              reason,
		Message:             msg,
		Type:                eventType,
		Count:               1,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Source:              corev1.EventSource{Component: r.component, Host: r.host},
		ReportingController: r.component,
		ReportingInstance:   r.host,
	}
	created, err := r.store.Create(ev)
	if err != nil {
		return
	}
	r.seen[aggKey] = created.GetName()
	r.fifo = append(r.fifo, ns+"/"+created.GetName())
	for len(r.fifo) > maxEvents {
		old := r.fifo[0]
		r.fifo = r.fifo[1:]
		ons, oname, _ := strings.Cut(old, "/")
		_ = r.store.Delete(KindEvent, ons, oname, DeleteOptions{})
		for key, name := range r.seen {
			if name == oname {
				delete(r.seen, key)
			}
		}
	}
}

// EventsFor lists the events about an object, oldest first.
func EventsFor(s *Store, obj Object) []*corev1.Event {
	var out []*corev1.Event
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	for _, e := range List[*corev1.Event](s, ns, nil) {
		if e.InvolvedObject.UID == obj.GetUID() || (e.InvolvedObject.UID == "" && e.InvolvedObject.Name == obj.GetName()) {
			out = append(out, e)
		}
	}
	sortEvents(out)
	return out
}

func sortEvents(evs []*corev1.Event) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].LastTimestamp.Before(&evs[j].LastTimestamp) })
}
