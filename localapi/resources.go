package localapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/mergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/switchboard-dev/switchboard/cluster"
)

// resourceRequest is a parsed resource path.
type resourceRequest struct {
	kind      *cluster.Kind
	namespace string // from the path; "" for cluster scope
	name      string
	sub       string // "", "status" or "log"
	watchPath bool   // the legacy /watch/ prefix
}

func (rr *resourceRequest) groupResource() schema.GroupResource {
	return schema.GroupResource{Group: rr.kind.GVK.Group, Resource: rr.kind.Resource}
}

// parseResourcePath reads what follows /api/v1 or /apis/G/V:
//
//	[watch/] [namespaces/NS/] RESOURCE [/NAME [/SUBRESOURCE]]
//
// where namespaces/NAME/status is the namespace's own status.
func parseResourcePath(gv schema.GroupVersion, segs []string) (*resourceRequest, bool) {
	rr := &resourceRequest{}
	if len(segs) > 0 && segs[0] == "watch" {
		rr.watchPath = true
		segs = segs[1:]
	}
	if len(segs) >= 3 && segs[0] == "namespaces" && !(len(segs) == 3 && segs[2] == "status") {
		rr.namespace = segs[1]
		segs = segs[2:]
		if rr.namespace == "" {
			return nil, false
		}
	}
	if len(segs) == 0 || len(segs) > 3 {
		return nil, false
	}
	rr.kind = cluster.LookupAPIResource(gv.Group, gv.Version, segs[0])
	if rr.kind == nil {
		return nil, false
	}
	if len(segs) > 1 {
		rr.name = segs[1]
		if rr.name == "" {
			return nil, false
		}
	}
	if len(segs) > 2 {
		rr.sub = segs[2]
	}
	switch {
	case rr.namespace != "" && !rr.kind.Namespaced:
		return nil, false
	case rr.kind.Namespaced && rr.namespace == "" && rr.name != "":
		// Namespaced objects are reached only through their namespace.
		return nil, false
	case rr.sub == "status" && !hasStatus(rr.kind):
		return nil, false
	case rr.sub == "log" && rr.kind != cluster.KindPod:
		return nil, false
	case rr.sub == "scale" && !hasScale(rr.kind):
		return nil, false
	case rr.sub != "" && rr.sub != "status" && rr.sub != "log" && rr.sub != "scale":
		return nil, false
	case rr.watchPath && rr.sub != "":
		return nil, false
	}
	return rr, true
}

func (s *server) serveResource(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion, segs []string, info *requestInfo) {
	rr, ok := parseResourcePath(gv, segs)
	if !ok {
		writeError(w, r, errNotFound())
		return
	}
	info.resource, info.subresource = rr.kind.Resource, rr.sub
	if rr.sub == "log" {
		info.verb = "get"
		if r.Method != http.MethodGet {
			writeError(w, r, errMethodNotAllowed(r, rr.groupResource(), rr.name))
			return
		}
		info.longRunning = true
		defer s.metrics.startLongRunning(info)()
		s.logs(w, r, rr)
		return
	}
	if rr.sub == "scale" {
		info.verb = map[string]string{http.MethodGet: "get", http.MethodHead: "get", http.MethodPut: "update", http.MethodPatch: "patch"}[r.Method]
		s.serveScale(w, r, rr)
		return
	}
	if rr.watchPath {
		if r.Method != http.MethodGet {
			writeError(w, r, errMethodNotAllowed(r, rr.groupResource(), rr.name))
			return
		}
		info.verb, info.longRunning = "watch", true
		opts, err := listOptions(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		opts.Watch = true
		defer s.metrics.startLongRunning(info)()
		s.watch(w, r, rr, opts)
		return
	}
	collection := rr.name == ""
	switch {
	case collection && r.Method == http.MethodGet:
		opts, err := listOptions(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if opts.Watch {
			info.verb, info.longRunning = "watch", true
			defer s.metrics.startLongRunning(info)()
			s.watch(w, r, rr, opts)
			return
		}
		info.verb = "list"
		s.list(w, r, rr, opts)
	case collection && r.Method == http.MethodPost && (rr.namespace != "" || !rr.kind.Namespaced):
		info.verb = "create"
		s.create(w, r, rr)
	case collection && r.Method == http.MethodDelete && (rr.namespace != "" || !rr.kind.Namespaced):
		info.verb = "deletecollection"
		s.deleteCollection(w, r, rr)
	case !collection && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		info.verb = "get"
		s.get(w, r, rr)
	case !collection && r.Method == http.MethodPut:
		info.verb = "update"
		s.update(w, r, rr)
	case !collection && r.Method == http.MethodPatch:
		info.verb = "patch"
		s.patch(w, r, rr)
	case !collection && r.Method == http.MethodDelete && rr.sub == "":
		info.verb = "delete"
		s.delete(w, r, rr)
	default:
		writeError(w, r, errMethodNotAllowed(r, rr.groupResource(), rr.name))
	}
}

// listOptions decodes the query as the API server does (metav1.ListOptions
// query parameters) and checks the combinations it forbids.
func listOptions(r *http.Request) (metav1.ListOptions, error) {
	var opts metav1.ListOptions
	if err := scheme.ParameterCodec.DecodeParameters(r.URL.Query(), corev1.SchemeGroupVersion, &opts); err != nil {
		return opts, apierrors.NewBadRequest(fmt.Sprintf("invalid query parameters: %v", err))
	}
	// ValidateListOptions (apimachinery/pkg/apis/meta/internalversion/validation).
	var errs field.ErrorList
	if opts.SendInitialEvents != nil {
		if !opts.Watch {
			errs = append(errs, field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents is forbidden for list"))
		} else {
			if !opts.AllowWatchBookmarks {
				errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "allowWatchBookmarks must be set to true when sendInitialEvents is set"))
			}
			if opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
				errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), fmt.Sprintf("sendInitialEvents requires setting resourceVersionMatch to %s", metav1.ResourceVersionMatchNotOlderThan)))
			}
		}
	} else if opts.Watch && opts.ResourceVersionMatch != "" {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
	}
	if opts.ResourceVersionMatch != "" && opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan && opts.ResourceVersionMatch != metav1.ResourceVersionMatchExact {
		errs = append(errs, field.NotSupported(field.NewPath("resourceVersionMatch"), opts.ResourceVersionMatch, []string{string(metav1.ResourceVersionMatchExact), string(metav1.ResourceVersionMatchNotOlderThan)}))
	}
	if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && (opts.ResourceVersion == "" || opts.ResourceVersion == "0") {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"\" or \"0\""))
	}
	if opts.Limit < 0 {
		errs = append(errs, field.Invalid(field.NewPath("limit"), opts.Limit, "must be greater than or equal to 0"))
	}
	if len(errs) > 0 {
		return opts, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "ListOptions"}, "", errs)
	}
	return opts, nil
}

// selectors parses the label and field selectors of a request.
func selectors(k *cluster.Kind, opts metav1.ListOptions) (labels.Selector, fields.Selector, error) {
	var lsel labels.Selector
	if opts.LabelSelector != "" {
		var err error
		if lsel, err = labels.Parse(opts.LabelSelector); err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid label selector %q: %v", opts.LabelSelector, err))
		}
	}
	fsel, err := parseFieldSelector(k, opts.FieldSelector)
	return lsel, fsel, err
}

// continueToken is the position of a chunked list (limit/continue), like
// the API server's: the resource version of the first page and the key
// to start after.
type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion string `json:"rv"`
	StartAfter      string `json:"start"`
}

func (s *server) list(w http.ResponseWriter, r *http.Request, rr *resourceRequest, opts metav1.ListOptions) {
	lsel, fsel, err := selectors(rr.kind, opts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	objs, rv := s.store.List(rr.kind, rr.namespace, lsel)
	if err := checkListResourceVersion(opts, rv); err != nil {
		writeError(w, r, err)
		return
	}
	if fsel != nil {
		keep := objs[:0:0]
		for _, o := range objs {
			if fsel.Matches(selectableFields(o)) {
				keep = append(keep, o)
			}
		}
		objs = keep
	}
	var ct continueToken
	if opts.Continue != "" {
		b, err := base64.RawURLEncoding.DecodeString(opts.Continue)
		if err == nil {
			err = json.Unmarshal(b, &ct)
		}
		if err != nil || ct.APIVersion != "meta.k8s.io/v1" {
			writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %q", opts.Continue)))
			return
		}
		i := sort.Search(len(objs), func(i int) bool { return cluster.KeyOf(objs[i]) > ct.StartAfter })
		objs = objs[i:]
		// Later pages report the first page's version, so that a watch
		// started from it replays every change made while paging.
		rv = ct.ResourceVersion
	}
	next, remaining := "", int64(0)
	if opts.Limit > 0 && int64(len(objs)) > opts.Limit {
		remaining = int64(len(objs)) - opts.Limit
		objs = objs[:opts.Limit]
		b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", ResourceVersion: rv, StartAfter: cluster.KeyOf(objs[len(objs)-1])})
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	l := cluster.ToList(rr.kind, objs, rv)
	if next != "" {
		lm := reflect.ValueOf(l).Elem().FieldByName("ListMeta").Addr().Interface().(*metav1.ListMeta)
		lm.Continue = next
		lm.RemainingItemCount = &remaining
	}
	writeObject(w, r, http.StatusOK, l)
}

// checkListResourceVersion applies the resourceVersion semantics of a
// list: the store serves only its current state, which is "not older
// than" any version it has had; a version it has not reached yet answers
// as the API server's "Too large resource version", and an exact match of
// an older version is gone.
func checkListResourceVersion(opts metav1.ListOptions, current string) error {
	if opts.ResourceVersion == "" || opts.ResourceVersion == "0" {
		return nil
	}
	want, err := strconv.ParseUint(opts.ResourceVersion, 10, 64)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q: %v", opts.ResourceVersion, err))
	}
	cur, _ := strconv.ParseUint(current, 10, 64)
	if want > cur {
		return apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", want, cur), 1)
	}
	if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && want != cur {
		return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", want, cur))
	}
	return nil
}

func (s *server) get(w http.ResponseWriter, r *http.Request, rr *resourceRequest) {
	o, err := s.store.Get(rr.kind, rr.namespace, rr.name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeObject(w, r, http.StatusOK, o)
}

// readBody reads a request body of at most maxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading the request body: %v", err))
	}
	if len(b) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBodyBytes))
	}
	return b, nil
}

// mediaType is the request's Content-Type without parameters.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

// fieldValidation reads the fieldValidation query parameter. Unlike the
// API server (whose default is Warn), the default here is Strict: a
// local API has no older clients to spare, and a typo in a manifest
// should fail loudly.
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "", "Strict":
		return "Strict", nil
	case "Warn", "Ignore":
		return v, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of %q, %q or %q, not %q", "Ignore", "Warn", "Strict", v))
}

// decodeObject decodes a request body into the typed kind the path names:
// JSON (or YAML when the Content-Type says so), apiVersion and kind
// matching the path's or empty, unknown and duplicate fields rejected,
// reported or ignored per fieldValidation.
func decodeObject(k *cluster.Kind, r *http.Request, body []byte) (cluster.Object, []string, error) {
	switch mediaType(r) {
	case "", "application/json", "*/*":
	case runtime.ContentTypeProtobuf:
		// client-go's typed clients send built-in kinds as protobuf.
		return decodeProtobuf(k, body)
	case "application/yaml":
		j, err := yaml.YAMLToJSONStrict(body)
		if err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not valid YAML: %v", err))
		}
		body = j
	default:
		return nil, nil, errUnsupportedMediaType(r.Header.Get("Content-Type"), "application/json", "application/yaml")
	}
	validation, err := fieldValidation(r)
	if err != nil {
		return nil, nil, err
	}
	return decodeJSON(k, body, validation)
}

var protobufSerializer = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)

func decodeProtobuf(k *cluster.Kind, body []byte) (cluster.Object, []string, error) {
	out, gvk, err := protobufSerializer.Decode(body, nil, nil)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the request body does not decode as protobuf: %v", err))
	}
	if gvk != nil && gvk.GroupVersion() != k.GVK.GroupVersion() {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", gvk.GroupVersion(), k.GVK.GroupVersion()))
	}
	obj, ok := out.(cluster.Object)
	if !ok || cluster.KindOf(obj) != k {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%T) does not match the expected kind (%s)", out, k.Name()))
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GVK)
	return obj, nil, nil
}

func decodeJSON(k *cluster.Kind, body []byte, validation string) (cluster.Object, []string, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is empty: expected a %s", k.Name()))
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(body, &tm); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the request body is not a valid JSON object: %v", err))
	}
	if want := k.GVK.GroupVersion().String(); tm.APIVersion != "" && tm.APIVersion != want {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", tm.APIVersion, want))
	}
	if tm.Kind != "" && tm.Kind != k.Name() {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", tm.Kind, k.Name()))
	}
	obj := k.New()
	strictErrs, err := kjson.UnmarshalStrict(body, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the request body does not decode as a %s: %v", k.Name(), err))
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GVK)
	var warnings []string
	if len(strictErrs) > 0 {
		switch validation {
		case "Strict":
			return nil, nil, apierrors.NewBadRequest(runtime.NewStrictDecodingError(strictErrs).Error())
		case "Warn":
			for _, e := range strictErrs {
				warnings = append(warnings, e.Error())
			}
		}
	}
	return obj, warnings, nil
}

// addWarnings sets RFC 7234 Warning headers, as client-go reads them.
func addWarnings(w http.ResponseWriter, warnings []string) {
	for _, m := range warnings {
		w.Header().Add("Warning", "299 - "+strconv.Quote(m))
	}
}

// noDryRun refuses dryRun: the store has no way to run admission without
// writing, and pretending would be worse.
func noDryRun(r *http.Request) error {
	if len(r.URL.Query()["dryRun"]) > 0 {
		return apierrors.NewBadRequest("dryRun is not supported by this server")
	}
	return nil
}

// namespaceWritable refuses writes into a namespace that does not exist or
// is being deleted, as the API server's NamespaceLifecycle admission does.
func (s *server) namespaceWritable(rr *resourceRequest, name string) error {
	if !rr.kind.Namespaced {
		return nil
	}
	ns, err := s.store.Get(cluster.KindNamespace, "", rr.namespace)
	if err != nil {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, rr.namespace)
	}
	if ns.GetDeletionTimestamp() != nil {
		return apierrors.NewForbidden(rr.groupResource(), name,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", rr.namespace))
	}
	return nil
}

func (s *server) create(w http.ResponseWriter, r *http.Request, rr *resourceRequest) {
	if err := noDryRun(r); err != nil {
		writeError(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	obj, warnings, err := decodeObject(rr.kind, r, body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	// rest.EnsureObjectNamespaceMatchesRequestNamespace.
	switch ns := obj.GetNamespace(); {
	case ns == rr.namespace:
	case ns == "":
		obj.SetNamespace(rr.namespace)
	case rr.namespace == "":
		obj.SetNamespace("")
	default:
		writeError(w, r, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	if err := s.namespaceWritable(rr, obj.GetName()); err != nil {
		writeError(w, r, err)
		return
	}
	out, err := s.store.Create(obj)
	if err != nil {
		writeError(w, r, err)
		return
	}
	addWarnings(w, warnings)
	writeObject(w, r, http.StatusCreated, out)
}

// checkName is the API server's check of an update body against its URL.
func checkName(obj cluster.Object, rr *resourceRequest) error {
	if obj.GetName() != rr.name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", obj.GetName(), rr.name))
	}
	if rr.namespace != "" && obj.GetNamespace() != "" && obj.GetNamespace() != rr.namespace {
		return apierrors.NewBadRequest("the namespace of the object does not match the namespace on the request")
	}
	return nil
}

func (s *server) update(w http.ResponseWriter, r *http.Request, rr *resourceRequest) {
	if err := noDryRun(r); err != nil {
		writeError(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	obj, warnings, err := decodeObject(rr.kind, r, body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := checkName(obj, rr); err != nil {
		writeError(w, r, err)
		return
	}
	obj.SetNamespace(rr.namespace)
	var out cluster.Object
	if rr.sub == "status" {
		out, err = s.store.UpdateStatus(obj)
	} else {
		out, err = s.store.Update(obj)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	addWarnings(w, warnings)
	writeObject(w, r, http.StatusOK, out)
}

// The patch types served. Server-side apply (application/apply-patch+yaml)
// needs managed fields, which the store does not keep.
var patchTypes = []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.StrategicMergePatchType)}

func (s *server) patch(w http.ResponseWriter, r *http.Request, rr *resourceRequest) {
	if err := noDryRun(r); err != nil {
		writeError(w, r, err)
		return
	}
	pt := types.PatchType(mediaType(r))
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
	default:
		writeError(w, r, errUnsupportedMediaType(r.Header.Get("Content-Type"), patchTypes...))
		return
	}
	validation, err := fieldValidation(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	patch, err := readBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var jp jsonpatch.Patch
	switch pt {
	case types.JSONPatchType:
		if jp, err = jsonpatch.DecodePatch(patch); err != nil {
			writeError(w, r, apierrors.NewBadRequest(err.Error()))
			return
		}
	default:
		var m map[string]any
		if err := json.Unmarshal(patch, &m); err != nil {
			writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the patch is not a JSON object: %v", err)))
			return
		}
	}
	var warnings []string
	apply := func(cur cluster.Object) error {
		orig, err := json.Marshal(cur)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		var patched []byte
		switch pt {
		case types.JSONPatchType:
			if patched, err = jp.Apply(orig); err != nil {
				return apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
			}
		case types.MergePatchType:
			if patched, err = jsonpatch.MergePatch(orig, patch); err != nil {
				return apierrors.NewBadRequest(err.Error())
			}
		case types.StrategicMergePatchType:
			if patched, err = strategicpatch.StrategicMergePatch(orig, patch, rr.kind.New()); err != nil {
				return interpretStrategicMergePatchError(err)
			}
		}
		obj, ws, err := decodeJSON(rr.kind, patched, validation)
		if err != nil {
			return err
		}
		warnings = ws
		if obj.GetName() != cur.GetName() || obj.GetNamespace() != cur.GetNamespace() {
			return apierrors.NewBadRequest("a patch may not change an object's name or namespace")
		}
		if rv := obj.GetResourceVersion(); rv != "" && rv != cur.GetResourceVersion() {
			return apierrors.NewConflict(rr.groupResource(), rr.name,
				errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		reflect.ValueOf(cur).Elem().Set(reflect.ValueOf(obj).Elem())
		return nil
	}
	var out cluster.Object
	if rr.sub == "status" {
		out, err = s.store.UpdateStatusFunc(rr.kind, rr.namespace, rr.name, apply)
	} else {
		out, err = s.store.UpdateFunc(rr.kind, rr.namespace, rr.name, apply)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	addWarnings(w, warnings)
	writeObject(w, r, http.StatusOK, out)
}

// interpretStrategicMergePatchError maps strategic merge patch errors to
// the API server's codes (handlers/patch.go).
func interpretStrategicMergePatchError(err error) error {
	switch {
	case errors.Is(err, mergepatch.ErrBadJSONDoc), errors.Is(err, mergepatch.ErrBadPatchFormatForPrimitiveList),
		errors.Is(err, mergepatch.ErrBadPatchFormatForRetainKeys), errors.Is(err, mergepatch.ErrBadPatchFormatForSetElementOrderList),
		errors.Is(err, mergepatch.ErrUnsupportedStrategicMergePatchFormat):
		return apierrors.NewBadRequest(err.Error())
	}
	return apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
}

// deleteOptions reads DeleteOptions from the query and then the body (the
// body wins), as the API server does.
func deleteOptions(r *http.Request) (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("gracePeriodSeconds %q is not an integer", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if len(q["dryRun"]) > 0 {
		return opts, apierrors.NewBadRequest("dryRun is not supported by this server")
	}
	body, err := readBody(r)
	if err != nil {
		return opts, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		var err error
		if mediaType(r) == runtime.ContentTypeProtobuf {
			_, _, err = protobufSerializer.Decode(body, nil, &opts)
		} else {
			err = json.Unmarshal(body, &opts)
		}
		if err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("the request body is not valid DeleteOptions: %v", err))
		}
		if len(opts.DryRun) > 0 {
			return opts, apierrors.NewBadRequest("dryRun is not supported by this server")
		}
	}
	if p := opts.PropagationPolicy; p != nil && *p != metav1.DeletePropagationForeground && *p != metav1.DeletePropagationBackground && *p != metav1.DeletePropagationOrphan {
		return opts, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "DeleteOptions"}, "",
			field.ErrorList{field.NotSupported(field.NewPath("propagationPolicy"), *p, []string{"Foreground", "Background", "Orphan"})})
	}
	return opts, nil
}

// deleteOne deletes one object and returns what the API server returns:
// the object as it is now when deletion is graceful (deletionTimestamp
// set), or as it was last stored when it is gone.
func (s *server) deleteOne(k *cluster.Kind, namespace, name string, opts metav1.DeleteOptions) (cluster.Object, bool, error) {
	pre, err := s.store.Get(k, namespace, name)
	if err != nil {
		return nil, false, err
	}
	gr := schema.GroupResource{Group: k.GVK.Group, Resource: k.Resource}
	var sopts cluster.DeleteOptions
	if p := opts.Preconditions; p != nil {
		if p.UID != nil {
			sopts.UID = *p.UID
		}
		if p.ResourceVersion != nil && *p.ResourceVersion != pre.GetResourceVersion() {
			return nil, false, apierrors.NewConflict(gr, name, fmt.Errorf("precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s", *p.ResourceVersion, pre.GetResourceVersion()))
		}
	}
	if g := opts.GracePeriodSeconds; g != nil {
		grace := *g
		if grace < 0 && k == cluster.KindPod {
			grace = 1 // the pod registry turns a negative grace period into 1s
		}
		sopts.GracePeriodSeconds = &grace
	}
	if err := s.store.Delete(k, namespace, name, sopts); err != nil {
		return nil, false, err
	}
	if cur, err := s.store.Get(k, namespace, name); err == nil && cur.GetUID() == pre.GetUID() {
		return cur, false, nil
	}
	return pre, true, nil
}

func (s *server) delete(w http.ResponseWriter, r *http.Request, rr *resourceRequest) {
	opts, err := deleteOptions(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out, gone, err := s.deleteOne(rr.kind, rr.namespace, rr.name, opts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	code := http.StatusOK
	//nolint:staticcheck // OrphanDependents is what the API server checks here.
	if !gone && opts.OrphanDependents != nil && !*opts.OrphanDependents {
		code = http.StatusAccepted
	}
	writeObject(w, r, code, out)
}

func (s *server) deleteCollection(w http.ResponseWriter, r *http.Request, rr *resourceRequest) {
	lopts, err := listOptions(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	lsel, fsel, err := selectors(rr.kind, lopts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	opts, err := deleteOptions(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	objs, _ := s.store.List(rr.kind, rr.namespace, lsel)
	var deleted []cluster.Object
	for _, o := range objs {
		if fsel != nil && !fsel.Matches(selectableFields(o)) {
			continue
		}
		out, _, err := s.deleteOne(rr.kind, o.GetNamespace(), o.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		deleted = append(deleted, out)
	}
	writeObject(w, r, http.StatusOK, cluster.ToList(rr.kind, deleted, s.store.ResourceVersion()))
}

// podLogOptions decodes the pods/log query (corev1.PodLogOptions) and
// validates it as the API server does (ValidatePodLogOptions).
func podLogOptions(r *http.Request) (*corev1.PodLogOptions, error) {
	// The url.Values conversion of PodLogOptions lives in the API server's
	// own scheme, not client-go's: read the parameters here.
	opts := &corev1.PodLogOptions{}
	q := r.URL.Query()
	var bad []string
	boolean := func(name string, into *bool) {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s=%q is not a boolean", name, v))
			}
			*into = b
		}
	}
	integer := func(name string) *int64 {
		v := q.Get(name)
		if v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s=%q is not an integer", name, v))
			return nil
		}
		return &n
	}
	opts.Container = q.Get("container")
	boolean("follow", &opts.Follow)
	boolean("previous", &opts.Previous)
	boolean("timestamps", &opts.Timestamps)
	boolean("insecureSkipTLSVerifyBackend", &opts.InsecureSkipTLSVerifyBackend)
	opts.TailLines = integer("tailLines")
	opts.SinceSeconds = integer("sinceSeconds")
	opts.LimitBytes = integer("limitBytes")
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			bad = append(bad, fmt.Sprintf("sinceTime=%q is not an RFC 3339 time", v))
		} else {
			mt := metav1.NewTime(t)
			opts.SinceTime = &mt
		}
	}
	if len(bad) > 0 {
		return nil, apierrors.NewBadRequest("invalid query parameters: " + strings.Join(bad, "; "))
	}
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, "must be greater than or equal to 0"))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	switch {
	case opts.SinceSeconds != nil && opts.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case opts.SinceSeconds != nil && *opts.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, "", errs)
	}
	return opts, nil
}
