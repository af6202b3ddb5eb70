package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/switchboard-dev/switchboard/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/switchboard-dev/switchboard/cluster"
)

// fakeAPI is a small in-test API server on a unix socket: it holds typed
// objects and serves them in the Kubernetes wire shapes (objects, lists,
// metav1.Status errors, watch event streams, pods/log), enough for the
// commands' client-go clients. Behaviour worth testing is switchable:
// graceful pod deletion that completes after a delay, and a validation
// rule for the apply error path.
type fakeAPI struct {
	t      *testing.T
	socket string
	opts   *Options

	mu       sync.Mutex
	rv       int
	objs     map[*cluster.Kind]map[string]cluster.Object
	subs     map[chan fakeEvent]*cluster.Kind
	requests []fakeRequest

	// podDeleteDelay makes a pod deletion graceful: the pod gets a
	// deletionTimestamp and disappears this long after.
	podDeleteDelay time.Duration
	// logs maps "ns/pod/container" (with "/previous" appended for the
	// previous instance) to the log's lines.
	logs map[string][]string
	// logGate, when set, holds a followed log after its first line until
	// it is closed, so a test can see that lines arrive as a stream.
	logGate chan struct{}
}

type fakeRequest struct {
	Method, Path, Query string
	Body                []byte
}

type fakeEvent struct {
	Type   string
	Object cluster.Object
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	dir := t.TempDir()
	f := &fakeAPI{
		t:      t,
		socket: filepath.Join(dir, SocketName),
		objs:   map[*cluster.Kind]map[string]cluster.Object{},
		subs:   map[chan fakeEvent]*cluster.Kind{},
		logs:   map[string][]string{},
	}
	for _, k := range cluster.Kinds {
		f.objs[k] = map[string]cluster.Object{}
	}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatalf("listen %s: %v", f.socket, err)
	}
	srv := &http.Server{Handler: f}
	ctx, cancel := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	t.Cleanup(func() {
		cancel()
		srv.Close()
	})
	go srv.Serve(ln)
	f.opts = &Options{StateDir: &dir}
	return f
}

// add stores objects as they are (apiVersion, kind, uid, resourceVersion
// and creationTimestamp filled in when missing).
func (f *fakeAPI) add(objs ...cluster.Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range objs {
		o = o.DeepCopyObject().(cluster.Object)
		k := cluster.KindOf(o)
		if k == nil {
			f.t.Fatalf("fake API: unknown kind %T", o)
		}
		f.stamp(k, o)
		f.objs[k][cluster.KeyOf(o)] = o
	}
}

func (f *fakeAPI) stamp(k *cluster.Kind, o cluster.Object) {
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	if o.GetUID() == "" {
		o.SetUID(types.UID(fmt.Sprintf("uid-%s-%s", strings.ToLower(k.GVK.Kind), o.GetName())))
	}
	if ts := o.GetCreationTimestamp(); ts.IsZero() {
		o.SetCreationTimestamp(metav1.Now())
	}
	f.rv++
	o.SetResourceVersion(strconv.Itoa(f.rv))
}

func (f *fakeAPI) object(k *cluster.Kind, ns, name string) cluster.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objs[k][cluster.Key(ns, name)]
	if o == nil {
		return nil
	}
	return o.DeepCopyObject().(cluster.Object)
}

func (f *fakeAPI) requestsMatching(method, pathPrefix string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.requests {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeAPI) publishLocked(k *cluster.Kind, typ string, o cluster.Object) {
	for ch, kind := range f.subs {
		if kind != k {
			continue
		}
		select {
		case ch <- fakeEvent{Type: typ, Object: o.DeepCopyObject().(cluster.Object)}:
		default:
		}
	}
}

func writeStatus(w http.ResponseWriter, err error) {
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		se = apierrors.NewInternalError(err)
	}
	s := se.ErrStatus
	s.Kind, s.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(s.Code))
	json.NewEncoder(w).Encode(s)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// parsePath splits /api/v1/[namespaces/NS/]RES[/NAME[/SUB]] and the
// /apis/GROUP/VERSION form.
func parsePath(p string) (k *cluster.Kind, ns, name, sub string, ok bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	var group, version string
	switch {
	case len(segs) >= 3 && segs[0] == "api":
		version, segs = segs[1], segs[2:]
	case len(segs) >= 4 && segs[0] == "apis":
		group, version, segs = segs[1], segs[2], segs[3:]
	default:
		return nil, "", "", "", false
	}
	if len(segs) >= 3 && segs[0] == "namespaces" {
		ns, segs = segs[1], segs[2:]
	}
	k = cluster.LookupAPIResource(group, version, segs[0])
	if k == nil {
		return nil, "", "", "", false
	}
	if len(segs) > 1 {
		name = segs[1]
	}
	if len(segs) > 2 {
		sub = segs[2]
	}
	return k, ns, name, sub, true
}

func fieldSet(o cluster.Object) fields.Set {
	s := fields.Set{"metadata.name": o.GetName(), "metadata.namespace": o.GetNamespace()}
	if e, ok := o.(*corev1.Event); ok {
		s["involvedObject.uid"] = string(e.InvolvedObject.UID)
		s["involvedObject.name"] = e.InvolvedObject.Name
		s["involvedObject.kind"] = e.InvolvedObject.Kind
	}
	return s
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body})
	f.mu.Unlock()

	k, ns, name, sub, ok := parsePath(r.URL.Path)
	if !ok {
		writeStatus(w, apierrors.NewNotFound(metav1.SchemeGroupVersion.WithResource("paths").GroupResource(), r.URL.Path))
		return
	}
	gr := k.GVK.GroupVersion().WithResource(k.Resource).GroupResource()
	q := r.URL.Query()
	switch {
	case sub == "log" && r.Method == http.MethodGet:
		f.serveLog(w, r, ns, name)
	case name == "" && r.Method == http.MethodGet && (q.Get("watch") == "true" || q.Get("watch") == "1"):
		f.serveWatch(w, r, k, ns)
	case name == "" && r.Method == http.MethodGet:
		lsel, err := labels.Parse(q.Get("labelSelector"))
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		fsel, err := fields.ParseSelector(q.Get("fieldSelector"))
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		f.mu.Lock()
		var items []json.RawMessage
		for _, key := range sortedKeys(f.objs[k]) {
			o := f.objs[k][key]
			if ns != "" && o.GetNamespace() != ns {
				continue
			}
			if !lsel.Matches(labels.Set(o.GetLabels())) || !fsel.Matches(fieldSet(o)) {
				continue
			}
			b, _ := json.Marshal(o)
			items = append(items, b)
		}
		rv := strconv.Itoa(f.rv)
		f.mu.Unlock()
		if items == nil {
			items = []json.RawMessage{}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"apiVersion": k.GVK.GroupVersion().String(),
			"kind":       k.GVK.Kind + "List",
			"metadata":   map[string]any{"resourceVersion": rv},
			"items":      items,
		})
	case r.Method == http.MethodGet:
		if o := f.object(k, ns, name); o != nil {
			writeJSON(w, http.StatusOK, o)
			return
		}
		writeStatus(w, apierrors.NewNotFound(gr, name))
	case r.Method == http.MethodPost:
		o, err := decode(k, body)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		if k.Namespaced {
			o.SetNamespace(ns)
		}
		if o.GetName() == "" && o.GetGenerateName() != "" {
			o.SetName(o.GetGenerateName() + "x7k2p")
		}
		if err := validate(k, o); err != nil {
			writeStatus(w, err)
			return
		}
		f.mu.Lock()
		if _, exists := f.objs[k][cluster.KeyOf(o)]; exists {
			f.mu.Unlock()
			writeStatus(w, apierrors.NewAlreadyExists(gr, o.GetName()))
			return
		}
		f.stamp(k, o)
		f.objs[k][cluster.KeyOf(o)] = o
		f.publishLocked(k, "ADDED", o)
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, o)
	case r.Method == http.MethodPut:
		o, err := decode(k, body)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		if err := validate(k, o); err != nil {
			writeStatus(w, err)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		cur := f.objs[k][cluster.Key(ns, name)]
		if cur == nil {
			writeStatus(w, apierrors.NewNotFound(gr, name))
			return
		}
		if o.GetResourceVersion() != "" && o.GetResourceVersion() != cur.GetResourceVersion() {
			writeStatus(w, apierrors.NewConflict(gr, name, errors.New("the object has been modified; please apply your changes to the latest version and try again")))
			return
		}
		// Spec and metadata replace the stored ones; status stays.
		next := cur.DeepCopyObject().(cluster.Object)
		copySpec(next, o)
		next.SetLabels(o.GetLabels())
		next.SetAnnotations(o.GetAnnotations())
		if apiequality.Semantic.DeepEqual(next, cur) {
			writeJSON(w, http.StatusOK, cur)
			return
		}
		f.rv++
		next.SetResourceVersion(strconv.Itoa(f.rv))
		f.objs[k][cluster.KeyOf(next)] = next
		f.publishLocked(k, "MODIFIED", next)
		writeJSON(w, http.StatusOK, next)
	case r.Method == http.MethodDelete:
		var opts metav1.DeleteOptions
		if len(body) > 0 {
			json.Unmarshal(body, &opts)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		key := cluster.Key(ns, name)
		cur := f.objs[k][key]
		if cur == nil {
			writeStatus(w, apierrors.NewNotFound(gr, name))
			return
		}
		if opts.Preconditions != nil && opts.Preconditions.UID != nil && *opts.Preconditions.UID != cur.GetUID() {
			writeStatus(w, apierrors.NewConflict(gr, name, errors.New("precondition failed: UID mismatch")))
			return
		}
		graceful := k == cluster.KindPod && f.podDeleteDelay > 0 &&
			(opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds > 0)
		if !graceful {
			delete(f.objs[k], key)
			f.rv++
			cur.SetResourceVersion(strconv.Itoa(f.rv))
			f.publishLocked(k, "DELETED", cur)
			writeJSON(w, http.StatusOK, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess})
			return
		}
		next := cur.DeepCopyObject().(cluster.Object)
		now := metav1.Now()
		next.SetDeletionTimestamp(&now)
		f.rv++
		next.SetResourceVersion(strconv.Itoa(f.rv))
		f.objs[k][key] = next
		f.publishLocked(k, "MODIFIED", next)
		time.AfterFunc(f.podDeleteDelay, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if o := f.objs[k][key]; o != nil && o.GetUID() == next.GetUID() {
				delete(f.objs[k], key)
				f.rv++
				o.SetResourceVersion(strconv.Itoa(f.rv))
				f.publishLocked(k, "DELETED", o)
			}
		})
		writeJSON(w, http.StatusOK, next)
	default:
		writeStatus(w, apierrors.NewMethodNotSupported(gr, r.Method))
	}
}

func decode(k *cluster.Kind, body []byte) (cluster.Object, error) {
	o := k.New()
	if err := json.Unmarshal(body, o); err != nil {
		return nil, err
	}
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	return o, nil
}

// copySpec copies the "Spec" field (or Data, for ConfigMaps and Secrets).
func copySpec(dst, src cluster.Object) {
	switch d := dst.(type) {
	case *corev1.Service:
		d.Spec = src.(*corev1.Service).Spec
	case *corev1.Pod:
		d.Spec = src.(*corev1.Pod).Spec
	case *corev1.ConfigMap:
		d.Data = src.(*corev1.ConfigMap).Data
	default:
		b, _ := json.Marshal(src)
		json.Unmarshal(b, dst)
	}
}

// validate rejects a Service port outside 1-65535, as the API server's
// validation does ("must be between 1 and 65535, inclusive").
func validate(k *cluster.Kind, o cluster.Object) error {
	svc, ok := o.(*corev1.Service)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	for i, p := range svc.Spec.Ports {
		if p.Port < 1 || p.Port > 65535 {
			errs = append(errs, field.Invalid(field.NewPath("spec", "ports").Index(i).Child("port"), p.Port, "must be between 1 and 65535, inclusive"))
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(k.GVK.GroupKind(), o.GetName(), errs)
	}
	return nil
}

func (f *fakeAPI) serveWatch(w http.ResponseWriter, r *http.Request, k *cluster.Kind, ns string) {
	fsel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector"))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	ch := make(chan fakeEvent, 100)
	f.mu.Lock()
	f.subs[ch] = k
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			if ns != "" && ev.Object.GetNamespace() != ns {
				continue
			}
			if !fsel.Matches(fieldSet(ev.Object)) {
				continue
			}
			enc.Encode(map[string]any{"type": ev.Type, "object": ev.Object})
			w.(http.Flusher).Flush()
		}
	}
}

func (f *fakeAPI) serveLog(w http.ResponseWriter, r *http.Request, ns, name string) {
	q := r.URL.Query()
	pod, _ := f.object(cluster.KindPod, ns, name).(*corev1.Pod)
	if pod == nil {
		writeStatus(w, apierrors.NewNotFound(corev1.Resource("pods"), name))
		return
	}
	container := q.Get("container")
	key := ns + "/" + name + "/" + container
	if q.Get("previous") == "true" {
		key += "/previous"
	}
	f.mu.Lock()
	lines, ok := f.logs[key]
	gate := f.logGate
	f.mu.Unlock()
	if !ok {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is not available", container, name)))
		return
	}
	if t := q.Get("tailLines"); t != "" {
		n, _ := strconv.Atoi(t)
		if n < len(lines) {
			lines = lines[len(lines)-n:]
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	for i, l := range lines {
		if q.Get("timestamps") == "true" {
			l = "2024-05-01T10:00:0" + strconv.Itoa(i) + "Z " + l
		}
		io.WriteString(w, l+"\n")
		w.(http.Flusher).Flush()
		if i == 0 && q.Get("follow") == "true" && gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
	}
}

// run executes one of the commands (args[0] names it) against opts.
func run(t *testing.T, opts *Options, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return runCtx(ctx, t, opts, stdin, args...)
}

func runCtx(ctx context.Context, t *testing.T, opts *Options, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut syncBuffer
	return runTo(ctx, t, opts, stdin, &out, &errOut, args...)
}

func runTo(ctx context.Context, t *testing.T, opts *Options, stdin string, out, errOut *syncBuffer, args ...string) (string, string, error) {
	t.Helper()
	for _, c := range NewCommands(opts, out, errOut) {
		if c.Name() != args[0] {
			continue
		}
		c.SetArgs(args[1:])
		c.SetIn(strings.NewReader(stdin))
		c.SetOut(out)
		c.SetErr(errOut)
		err := c.ExecuteContext(ctx)
		return out.String(), errOut.String(), err
	}
	t.Fatalf("no command %q", args[0])
	return "", "", nil
}

// syncBuffer is testutil.SyncBuffer: tests read it while a writer writes.
type syncBuffer = testutil.SyncBuffer

// writeFile writes a file under dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// waitFor polls cond until it holds (failing the test after 10s).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serveTCP also serves the fake API on a loopback TCP port and returns
// its URL.
func (f *fakeAPI) serveTCP() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	f.t.Cleanup(func() { srv.Close() })
	go srv.Serve(ln)
	return "http://" + ln.Addr().String()
}
