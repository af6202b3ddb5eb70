package manifests

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/admission"
)

// Options configure a Source.
type Options struct {
	// Logger receives what the source does and every problem (at Error
	// level, with file, document, field and reason). nil: slog.Default()
	// with component=manifests.
	Logger *slog.Logger
	// Registerer gets the source's metrics; nil: none are registered.
	Registerer prometheus.Registerer
	// Debounce is how long the watcher waits for a burst of file changes
	// to settle before reloading (default 100ms).
	Debounce time.Duration
	// Recorder, when set, records Events on objects: a rejected change
	// (Warning ManifestInvalid) and a pod recreated for a spec change.
	Recorder *cluster.Recorder
	// NotRecursive reads only the files directly inside directories.
	NotRecursive bool
	// PodDeleteTimeout bounds the wait for a pod being recreated to be
	// gone (the node stops it gracefully); after it the old pod is
	// deleted with grace period 0. Default: the pod's
	// terminationGracePeriodSeconds plus 15 seconds.
	PodDeleteTimeout time.Duration
}

// objKey names an object in the store.
type objKey struct {
	kind      *cluster.Kind
	namespace string
	name      string
}

func keyOf(obj cluster.Object) objKey {
	k := cluster.KindOf(obj)
	ns := obj.GetNamespace()
	if k != nil && !k.Namespaced {
		ns = ""
	}
	return objKey{kind: k, namespace: ns, name: obj.GetName()}
}

func (k objKey) String() string { return k.kind.Name() + " " + cluster.Key(k.namespace, k.name) }

// owned is an object this source created.
type owned struct {
	uid  types.UID
	file string
}

// docInfo is what the source keeps of a document between reloads: where
// it is, what it names, its problems, and a hash of its content. The
// decoded object is not kept: a document is decoded again only when its
// object must be applied (its file changed, or the object is missing).
type docInfo struct {
	File             string
	Index, Item      int
	Line             int
	APIVersion, Kind string
	Err              error
	id               ident
	ok               bool     // decoded into an object of a kind the store holds
	key              objKey   // when ok: the object, namespace defaulted
	sum              [32]byte // when ok: SHA-256 of the document's JSON
}

// failure is a document the store refused: its hash and the problems.
// It is decoded and tried again when its content changes, and at full
// reloads (the load, the watch's start), not at every reload.
type failure struct {
	sum  [32]byte
	errs []*Error
}

// fileState is a file as last read: its content hash and its documents.
type fileState struct {
	sum  [32]byte
	docs []docInfo
}

func infoOf(d *Document) docInfo {
	di := docInfo{File: d.File, Index: d.Index, Item: d.Item, Line: d.Line, APIVersion: d.APIVersion, Kind: d.Kind, Err: d.Err, id: d.id}
	if d.Err == nil && d.Object != nil {
		di.ok = true
		di.key = keyOf(d.Object)
		if di.key.kind.Namespaced && di.key.namespace == "" {
			di.key.namespace = metav1.NamespaceDefault
		}
		di.sum = d.sum
		// Name and namespace are the key's: no second copy.
		di.id = ident{apiVersion: d.APIVersion, kind: d.Kind}
	}
	return di
}

func infosOf(docs []Document) []docInfo {
	out := make([]docInfo, len(docs))
	for i := range docs {
		out[i] = infoOf(&docs[i])
	}
	return out
}

// entry is a document that defines an object this round.
type entry struct {
	doc   *docInfo
	full  *Document      // the decoded document, when decoded this round
	obj   cluster.Object // its object, namespace defaulted; nil when not decoded
	key   objKey
	order int
}

// Source keeps the store in step with manifest files: it applies every
// good document, reports the bad ones, and deletes the objects it created
// whose documents are gone. See the package documentation for the rules.
type Source struct {
	store *cluster.Store
	paths []string
	opts  Options
	log   *slog.Logger

	kick    chan struct{}
	wg      sync.WaitGroup
	stopped chan struct{} // closed when Run returns
	stop    func()

	mu        sync.Mutex
	files     map[string]*fileState // files as last read, by path
	decoded   map[string][]Document // files decoded this round (dropped after it)
	stdin     []Document            // standard input, read once and kept
	readErrs  map[string]error      // files and paths that cannot be read
	order     []string              // files in reading order
	stdinRead bool
	owned     map[objKey]owned
	applied   map[objKey][32]byte // hash of the document last applied
	failed    map[objKey]failure  // documents the store refused, by object
	retry     bool                // decode refused documents again this round
	standing  []*Error
	reported  map[string]bool
	skipped   map[string]bool
	waiting   map[objKey]bool // pods being recreated

	docsGauge *prometheus.GaugeVec
	reloads   prometheus.Counter
}

// NewSource returns a source for the given files and directories ("-" is
// standard input, read once). Call Load, then Run.
func NewSource(store *cluster.Store, paths []string, opts Options) *Source {
	if opts.Logger == nil {
		opts.Logger = slog.Default().With("component", "manifests")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	s := &Source{
		store:    store,
		paths:    slices.Clone(paths),
		opts:     opts,
		log:      opts.Logger,
		kick:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		files:    map[string]*fileState{},
		decoded:  map[string][]Document{},
		readErrs: map[string]error{},
		owned:    map[objKey]owned{},
		applied:  map[objKey][32]byte{},
		failed:   map[objKey]failure{},
		reported: map[string]bool{},
		skipped:  map[string]bool{},
		waiting:  map[objKey]bool{},
	}
	var once sync.Once
	s.stop = func() { once.Do(func() { close(s.stopped) }) }
	s.docsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_manifest_documents",
		Help: "Manifest documents by result of the last reload: applied (in force), rejected (bad; the last good version stays), skipped (kinds not served).",
	}, []string{"result"})
	s.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_manifest_reload_total",
		Help: "Reloads of the manifest files (the initial load and each settled burst of changes).",
	})
	if r := opts.Registerer; r != nil {
		s.docsGauge = register(r, s.docsGauge)
		s.reloads = register(r, s.reloads)
	}
	return s
}

func register[T prometheus.Collector](r prometheus.Registerer, c T) T {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}

// Load reads every path and applies what it finds. It returns the problems
// (also logged); the good documents are applied whatever the bad ones do.
func (s *Source) Load(ctx context.Context) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh(nil, true)
	s.reconcile(ctx)
	return s.errorsLocked()
}

// Objects counts the objects this source has applied and owns now.
func (s *Source) Objects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.applied)
}

// Errors returns the problems currently standing.
func (s *Source) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errorsLocked()
}

func (s *Source) errorsLocked() []error {
	out := make([]error, len(s.standing))
	for i, e := range s.standing {
		out[i] = e
	}
	return out
}

// refresh re-reads the files that changed (dirty), that are new, or all of
// them (full), and forgets those that are gone. A file whose content hash
// is unchanged is not decoded again. It returns the directories to watch.
func (s *Source) refresh(dirty map[string]bool, full bool) []string {
	s.retry = s.retry || full
	files, errs := listFiles(s.paths, !s.opts.NotRecursive)
	s.readErrs = map[string]error{}
	for _, e := range errs {
		var pe *Error
		if errors.As(e, &pe) {
			s.readErrs[pe.File] = e
		}
	}
	present := map[string]bool{}
	for _, f := range files {
		present[f] = true
		if f == "-" {
			if !s.stdinRead {
				s.stdinRead = true
				data, err := io.ReadAll(os.Stdin)
				if err != nil {
					s.readErrs["-"] = &Error{File: "-", Reason: "cannot read: " + err.Error()}
					continue
				}
				s.stdin = Decode("-", data)
				s.files["-"] = &fileState{docs: infosOf(s.stdin)}
			}
			continue
		}
		if _, cached := s.files[f]; cached && !full && !dirty[filepath.Clean(f)] {
			continue
		}
		s.readFile(f)
	}
	for f := range s.files {
		if !present[f] {
			delete(s.files, f)
			delete(s.decoded, f)
		}
	}
	s.order = files
	return watchDirs(s.paths, !s.opts.NotRecursive)
}

// readFile reads f and decodes it unless its content is what was decoded
// last; force decodes it anyway (its objects are needed this round).
func (s *Source) readFile(f string) {
	data, err := os.ReadFile(f)
	if err != nil {
		s.readErrs[f] = &Error{File: f, Reason: "cannot read: " + errReason(err)}
		return
	}
	sum := sha256.Sum256(data)
	if st, ok := s.files[f]; ok && st.sum == sum {
		return
	}
	docs := Decode(f, data)
	s.files[f] = &fileState{sum: sum, docs: infosOf(docs)}
	s.decoded[f] = docs
}

// decodeNeeded decodes again, for this round, the files not decoded yet
// that hold a good document whose object must be applied: one never
// applied, changed since, or missing from the store (deleted by someone
// else, or a pod being recreated that is gone).
func (s *Source) decodeNeeded() {
	retry := s.retry
	s.retry = false
	seen := map[objKey]bool{}
	for _, f := range s.order {
		st := s.files[f]
		if st == nil || s.readErrs[f] != nil {
			continue
		}
		if f == "-" || s.decoded[f] != nil {
			for i := range st.docs {
				seen[st.docs[i].key] = true
			}
			continue
		}
		for i := range st.docs {
			d := &st.docs[i]
			if !d.ok || seen[d.key] {
				continue // bad, skipped, or a duplicate (never applied)
			}
			seen[d.key] = true
			if fl, ok := s.failed[d.key]; ok && fl.sum == d.sum && !retry {
				continue // refused as it is: its problems stand
			}
			last, applied := s.applied[d.key]
			if applied && last == d.sum {
				if _, err := s.store.Get(d.key.kind, d.key.namespace, d.key.name); err == nil {
					continue
				}
			}
			delete(s.files, f) // decode whatever the file holds now
			s.readFile(f)
			if s.decoded[f] == nil && s.files[f] == nil {
				s.files[f] = st // unreadable now: keep what was known
			}
			break
		}
	}
}

// reconcile brings the store in line with the decoded files.
func (s *Source) reconcile(ctx context.Context) {
	s.reloads.Inc()
	var problems []*Error
	desired := map[objKey]*entry{}
	var entries []*entry
	held := map[objKey]bool{}      // bad new version: keep the old
	heldFiles := map[string]bool{} // unreadable, or a bad document of unknown object
	skippedDocs := 0
	rejected := map[string]bool{} // documents with a problem: file/index/item

	reject := func(d *docInfo, errs ...*Error) {
		problems = append(problems, errs...)
		rejected[fmt.Sprintf("%s\x00%d\x00%d", d.File, d.Index, d.Item)] = true
	}

	s.decodeNeeded()
	defer clear(s.decoded)
	for f, err := range s.readErrs {
		problems = append(problems, ErrorsOf(err)...)
		heldFiles[f] = true
	}
	for _, f := range s.order {
		if heldFiles[f] || s.files[f] == nil {
			continue
		}
		docs := s.files[f].docs
		full := s.decoded[f]
		if f == "-" {
			full = s.stdin
		}
		if full != nil && len(full) != len(docs) {
			full = nil // cannot happen: decoded and summarised together
		}
		for i := range docs {
			d := &docs[i]
			if d.Err != nil {
				reject(d, ErrorsOf(d.Err)...)
				if k := cluster.LookupGVK(d.id.apiVersion, d.id.kind); k != nil && d.id.name != "" {
					ns := d.id.namespace
					if !k.Namespaced {
						ns = ""
					} else if ns == "" {
						ns = metav1.NamespaceDefault
					}
					held[objKey{kind: k, namespace: ns, name: d.id.name}] = true
				} else {
					heldFiles[f] = true
				}
				continue
			}
			if !d.ok {
				skippedDocs++
				s.noteSkipped(d)
				continue
			}
			key := d.key
			var obj cluster.Object
			var fullDoc *Document
			if full != nil && full[i].Object != nil {
				fullDoc = &full[i]
				// The decoded object is this round's own: no copy.
				obj = fullDoc.Object
				if key.kind.Namespaced && obj.GetNamespace() == "" {
					obj.SetNamespace(metav1.NamespaceDefault)
				}
				clearServerFields(obj)
			}
			if first, dup := desired[key]; dup {
				where := fmt.Sprintf("%s document %d", first.doc.File, first.doc.Index)
				if first.doc.Item > 0 {
					where += fmt.Sprintf(" item %d", first.doc.Item)
				}
				where += fmt.Sprintf(" (line %d)", first.doc.Line)
				reject(d, &Error{File: d.File, Index: d.Index, Item: d.Item, Line: d.Line, Object: key.String(),
					Reason: "duplicate: " + key.String() + " is already defined in " + where + "; this definition is ignored"})
				continue
			}
			e := &entry{doc: d, full: fullDoc, obj: obj, key: key, order: len(entries)}
			desired[key] = e
			entries = append(entries, e)
		}
	}
	for key, o := range s.owned {
		for f := range heldFiles {
			// A file, or a directory that could not be read.
			if o.file == f || strings.HasPrefix(o.file, f+string(filepath.Separator)) {
				held[key] = true
			}
		}
	}

	// Apply in the store's kind order (namespaces and configuration before
	// workloads), then in file order.
	kindOrder := map[*cluster.Kind]int{}
	for i, k := range cluster.Kinds {
		kindOrder[k] = i
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := kindOrder[entries[i].key.kind], kindOrder[entries[j].key.kind]
		if a != b {
			return a < b
		}
		return entries[i].order < entries[j].order
	})
	applied := 0
	namespacesDone := false
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		if !namespacesDone && e.key.kind != cluster.KindNamespace {
			namespacesDone = true
			s.ensureNamespaces(entries)
		}
		errs := s.applyEntry(ctx, e)
		if len(errs) > 0 {
			if e.obj != nil {
				s.failed[e.key] = failure{sum: e.doc.sum, errs: errs}
			}
			reject(e.doc, errs...)
			continue
		}
		delete(s.failed, e.key)
		applied++
	}
	for key := range s.failed {
		if desired[key] == nil {
			delete(s.failed, key)
		}
	}

	// Delete what this source created and no file defines any more, in
	// reverse kind order (pods before the services and namespaces).
	var gone []objKey
	for key := range s.owned {
		if desired[key] == nil && !held[key] {
			gone = append(gone, key)
		}
	}
	sort.Slice(gone, func(i, j int) bool {
		a, b := kindOrder[gone[i].kind], kindOrder[gone[j].kind]
		if a != b {
			return a > b
		}
		return gone[i].String() < gone[j].String()
	})
	for _, key := range gone {
		o := s.owned[key]
		err := s.store.Delete(key.kind, key.namespace, key.name, cluster.DeleteOptions{UID: o.uid})
		switch {
		case err == nil:
			s.log.Info("deleted: no longer in the manifests", "object", key.String(), "file", o.file)
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			// Already gone, or replaced by someone else: not ours.
		default:
			s.log.Warn("cannot delete an object removed from the manifests", "object", key.String(), "error", err)
			continue
		}
		delete(s.owned, key)
		delete(s.applied, key)
	}

	sortErrors(problems)
	s.standing = problems
	now := map[string]bool{}
	for _, p := range problems {
		msg := p.Error()
		now[msg] = true
		if !s.reported[msg] {
			attrs := []any{"file", p.File, "document", p.Index, "field", p.Field, "reason", p.Reason}
			if p.Item > 0 {
				attrs = append(attrs, "item", p.Item)
			}
			if p.Object != "" {
				attrs = append(attrs, "object", p.Object)
			}
			if p.FieldLine > 0 {
				attrs = append(attrs, "line", p.FieldLine)
			} else if p.Line > 0 {
				attrs = append(attrs, "line", p.Line)
			}
			s.log.Error("manifest rejected: "+msg, attrs...)
		}
	}
	s.reported = now
	s.docsGauge.WithLabelValues("applied").Set(float64(applied))
	s.docsGauge.WithLabelValues("rejected").Set(float64(len(rejected)))
	s.docsGauge.WithLabelValues("skipped").Set(float64(skippedDocs))
}

// noteSkipped logs, once per apiVersion/kind, a document of a kind the
// store does not hold.
func (s *Source) noteSkipped(d *docInfo) {
	id := d.APIVersion + " " + d.Kind
	if s.skipped[id] {
		return
	}
	s.skipped[id] = true
	attrs := []any{"apiVersion", d.APIVersion, "kind", d.Kind, "file", d.File, "document", d.Index}
	for _, k := range cluster.Kinds {
		if k.GVK.Kind == d.Kind {
			attrs = append(attrs, "served_as", k.GVK.GroupVersion().String())
		}
	}
	s.log.Warn("skipping documents of a kind this node does not serve", attrs...)
}

// ensureNamespaces creates the namespaces the entries use that neither
// exist nor are defined in the files (a one-host cluster has no one else
// to create them).
func (s *Source) ensureNamespaces(entries []*entry) {
	need := map[string]bool{}
	for _, e := range entries {
		if e.key.kind.Namespaced {
			need[e.key.namespace] = true
		}
	}
	names := make([]string, 0, len(need))
	for ns := range need {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		if _, err := s.store.Get(cluster.KindNamespace, "", ns); err == nil {
			continue
		}
		_, err := s.store.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		switch {
		case err == nil:
			s.log.Info("created a namespace the manifests use", "namespace", ns)
		case apierrors.IsAlreadyExists(err):
		default:
			// The objects in it will be refused with the reason.
			s.log.Warn("cannot create a namespace the manifests use", "namespace", ns, "error", err)
		}
	}
}

// applyEntry puts one object in force; it returns its problems.
func (s *Source) applyEntry(ctx context.Context, e *entry) []*Error {
	cur, err := s.store.Get(e.key.kind, e.key.namespace, e.key.name)
	exists := err == nil
	if exists && cur.GetDeletionTimestamp() != nil {
		// Being deleted (a pod being recreated, or an object with
		// finalizers): apply once it is gone.
		if e.key.kind == cluster.KindPod {
			s.startWaiter(ctx, e.key, cur)
		}
		return nil
	}
	if exists {
		if last, ok := s.applied[e.key]; ok && last == e.doc.sum {
			return nil // its document is unchanged since we applied it
		}
	}
	if e.obj == nil {
		if fl, ok := s.failed[e.key]; ok && fl.sum == e.doc.sum {
			return fl.errs // refused as it is
		}
		// Needed but not decoded this round (the object went after the
		// files were read): the next round decodes it.
		s.trigger()
		return nil
	}
	if exists && e.key.kind == cluster.KindPod {
		if podSpecChanged(cur.(*corev1.Pod), e.obj.(*corev1.Pod)) {
			return s.recreatePod(ctx, e, cur)
		}
	}
	// The store copies what it is given.
	res, created, err := s.store.Apply(e.obj)
	if err != nil {
		errs := ErrorsFor(e.fullDoc(), e.obj, err)
		if exists && s.opts.Recorder != nil {
			s.opts.Recorder.Eventf(cur, corev1.EventTypeWarning, "ManifestInvalid",
				"the version in %s document %d was rejected; the last good version stays: %v", e.doc.File, e.doc.Index, err)
		}
		return errs
	}
	if created {
		s.owned[e.key] = owned{uid: res.GetUID(), file: e.doc.File}
		s.log.Info("created", "object", e.key.String(), "file", e.doc.File, "document", e.doc.Index)
	} else {
		if o, ok := s.owned[e.key]; ok && o.uid == res.GetUID() {
			o.file = e.doc.File
			s.owned[e.key] = o
		}
		if _, before := s.applied[e.key]; before {
			s.log.Info("updated", "object", e.key.String(), "file", e.doc.File, "document", e.doc.Index)
		}
	}
	s.applied[e.key] = e.doc.sum
	return nil
}

// fullDoc is the decoded document, or one rebuilt from what is kept (for
// its place in the file; field lines are then unknown).
func (e *entry) fullDoc() *Document {
	if e.full != nil {
		return e.full
	}
	d := e.doc
	id := d.id
	id.namespace, id.name = d.key.namespace, d.key.name
	return &Document{File: d.File, Index: d.Index, Item: d.Item, Line: d.Line, APIVersion: d.APIVersion, Kind: d.Kind, id: id}
}

// podSpecChanged tells whether the desired pod's spec (defaulted as the
// store would) differs from the stored one in a way a pod update may not
// make. Fields the node sets (nodeName) and images (which may change in
// place) are not counted.
func podSpecChanged(cur, desired *corev1.Pod) bool {
	d := desired.DeepCopy()
	_ = admission.Default(cluster.OpCreate, d, nil)
	if d.Spec.NodeName == "" {
		d.Spec.NodeName = cur.Spec.NodeName
	}
	for i := range d.Spec.Containers {
		if i < len(cur.Spec.Containers) {
			d.Spec.Containers[i].Image = cur.Spec.Containers[i].Image
		}
	}
	for i := range d.Spec.InitContainers {
		if i < len(cur.Spec.InitContainers) {
			d.Spec.InitContainers[i].Image = cur.Spec.InitContainers[i].Image
		}
	}
	return !apiequality.Semantic.DeepEqual(cur.Spec, d.Spec)
}

// recreatePod deletes a pod whose spec changed in its file; the new
// version is created once the old one is gone (at once for a pod no node
// runs, after the node's graceful stop otherwise).
func (s *Source) recreatePod(ctx context.Context, e *entry, cur cluster.Object) []*Error {
	s.log.Info("pod spec changed; recreating", "pod", cluster.KeyOf(cur), "file", e.doc.File, "document", e.doc.Index)
	if s.opts.Recorder != nil {
		s.opts.Recorder.Eventf(cur, corev1.EventTypeNormal, "Recreating",
			"pod spec changed in %s document %d; recreating the pod", e.doc.File, e.doc.Index)
	}
	err := s.store.Delete(cluster.KindPod, e.key.namespace, e.key.name, cluster.DeleteOptions{UID: cur.GetUID()})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return ErrorsFor(e.fullDoc(), e.obj, err)
	}
	if now, err := s.store.Get(cluster.KindPod, e.key.namespace, e.key.name); err == nil && now.GetUID() == cur.GetUID() {
		s.startWaiter(ctx, e.key, now)
		return nil
	}
	delete(s.applied, e.key)
	return s.applyEntry(ctx, e)
}

// startWaiter polls the store until the pod is gone (bounded), then kicks
// a reload so that its new version is created.
func (s *Source) startWaiter(ctx context.Context, key objKey, cur cluster.Object) {
	if s.waiting[key] {
		return
	}
	s.waiting[key] = true
	timeout := s.opts.PodDeleteTimeout
	if timeout <= 0 {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if p, ok := cur.(*corev1.Pod); ok && p.Spec.TerminationGracePeriodSeconds != nil {
			grace = *p.Spec.TerminationGracePeriodSeconds
		}
		timeout = time.Duration(grace)*time.Second + 15*time.Second
	}
	uid := cur.GetUID()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.waiting, key)
			s.mu.Unlock()
			s.trigger()
		}()
		deadline := time.Now().Add(timeout)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			o, err := s.store.Get(key.kind, key.namespace, key.name)
			if err != nil || o.GetUID() != uid {
				return
			}
			if time.Now().After(deadline) {
				s.log.Warn("pod still terminating; deleting it at once to recreate it", "pod", key.String(), "waited", timeout)
				zero := int64(0)
				_ = s.store.Delete(key.kind, key.namespace, key.name, cluster.DeleteOptions{GracePeriodSeconds: &zero, UID: uid})
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-s.stopped:
				return
			case <-t.C:
			}
		}
	}()
}

// trigger asks Run for a reload.
func (s *Source) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// clearServerFields drops what the API server sets and ignores from
// clients, so that a manifest saved with `kubectl get -o yaml` applies
// like its spec: status, uid, resourceVersion, generation, timestamps and
// managed fields.
func clearServerFields(obj cluster.Object) {
	obj.SetUID("")
	obj.SetResourceVersion("")
	obj.SetGeneration(0)
	obj.SetCreationTimestamp(metav1.Time{})
	obj.SetDeletionTimestamp(nil)
	obj.SetDeletionGracePeriodSeconds(nil)
	obj.SetManagedFields(nil)
	if st := reflect.ValueOf(obj).Elem().FieldByName("Status"); st.IsValid() && st.CanSet() {
		st.Set(reflect.Zero(st.Type()))
	}
}
