package localapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

// FuzzRequest sends arbitrary methods, paths, content types and bodies to
// the handler: none may panic (the recover middleware would turn a panic
// into a 500 "panic serving" Status, which the fuzzer reports), and every
// failure is a metav1.Status whose code is the HTTP code.
func FuzzRequest(f *testing.F) {
	seeds := []struct{ method, path, ct, body string }{
		{"GET", "/api/v1/namespaces/default/pods", "", ""},
		{"GET", "/api/v1/pods?watch=true&timeoutSeconds=1&resourceVersion=1", "", ""},
		{"POST", "/api/v1/namespaces/default/pods", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}`},
		{"POST", "/api/v1/namespaces/default/pods", "application/yaml", "metadata:\n  name: y\n"},
		{"POST", "/api/v1/namespaces/default/pods", "application/vnd.kubernetes.protobuf", "k8s\x00\n\x04\n\x02v1"},
		{"PUT", "/api/v1/namespaces/default/pods/p/status", "application/json", `{"metadata":{"name":"p"},"status":{"phase":"Running"}}`},
		{"PATCH", "/api/v1/namespaces/default/pods/p", "application/strategic-merge-patch+json", `{"spec":{"containers":[{"$patch":"delete","name":"x"}]}}`},
		{"PATCH", "/api/v1/namespaces/default/pods/p", "application/json-patch+json", `[{"op":"move","from":"/spec","path":"/spec/x"}]`},
		{"PATCH", "/api/v1/namespaces/default/pods/p", "application/merge-patch+json", `{"metadata":null}`},
		{"DELETE", "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=-5", "application/json", `{"preconditions":{"uid":"x"}}`},
		{"DELETE", "/apis/apps/v1/namespaces/default/deployments?fieldSelector=metadata.name%3Dx", "", ""},
		{"GET", "/api/v1/namespaces/default/pods/p/log?tailLines=2&sinceTime=x", "", ""},
		{"GET", "/api/v1/watch/namespaces//pods", "", ""},
		{"GET", "/apis/discovery.k8s.io/v1/endpointslices?limit=1&continue=e30", "", ""},
		{"GET", "/api/v1/events?fieldSelector=involvedObject.name%3D%3Dx,type!%3DNormal", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ct, s.body)
	}
	store := cluster.NewStore()
	if _, err := store.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}); err != nil {
		f.Fatal(err)
	}
	h := New(store, Options{Logs: &fakeLogs{lines: map[string][]string{"default/p/main": {"a", "b"}}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, method, path, ct, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t") || strings.ContainsAny(method, " \r\n\t/") || method == "" {
			return // not an HTTP request line
		}
		if strings.Contains(path, "watch") || strings.Contains(path, "follow") {
			return // streams end only with their client
		}
		req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 400 {
			return
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
			return // /readyz
		}
		var st metav1.Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || int(st.Code) != rec.Code {
			t.Fatalf("%s %s: %d is not a Status: %s", method, path, rec.Code, rec.Body.String())
		}
		if strings.Contains(st.Message, "panic serving") {
			t.Fatalf("%s %s (%s) %q panicked: %s", method, path, ct, body, st.Message)
		}
	})
}
