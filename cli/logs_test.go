package cli

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestLogs(t *testing.T) {
	f := newPopulatedAPI(t)
	now := time.Now()
	two := webPod(now)
	two.Name, two.UID = "two-containers", "uid-two"
	two.OwnerReferences = nil
	two.Labels = map[string]string{"app": "two"}
	two.Spec.Containers = append(two.Spec.Containers, corev1.Container{Name: "sidecar", Image: "busybox"})
	two.Spec.InitContainers = []corev1.Container{{Name: "setup"}}
	f.add(two)
	f.logs["default/web-7d4b9c-x2x9z/web"] = []string{"line 1", "line 2", "line 3"}
	f.logs["default/web-7d4b9c-x2x9z/web/previous"] = []string{"old 1", "killed"}
	f.logs["default/two-containers/web"] = []string{"web says hi"}
	f.logs["default/two-containers/sidecar"] = []string{"sidecar says hi"}

	cases := []struct {
		name             string
		args             []string
		wantOut, wantErr string
		fails            bool
		wantQuery        string
	}{
		{"a pod's only container", []string{"logs", "web-7d4b9c-x2x9z"}, "line 1\nline 2\nline 3\n", "", false, "container=web"},
		{"--tail N", []string{"logs", "web-7d4b9c-x2x9z", "--tail", "1"}, "line 3\n", "", false, "tailLines=1"},
		{"--previous shows the instance before the last restart", []string{"logs", "web-7d4b9c-x2x9z", "-p"}, "old 1\nkilled\n", "", false, "previous=true"},
		{"--timestamps asks the server for them", []string{"logs", "web-7d4b9c-x2x9z", "--timestamps", "--tail=1"}, "2024-05-01T10:00:00Z line 3\n", "", false, "timestamps=true"},
		{"several containers without -c: the first, as kubectl says on stderr", []string{"logs", "two-containers"}, "web says hi\n",
			"Defaulted container \"web\" out of: web, sidecar, setup (init)\n", false, "container=web"},
		{"-c picks the container", []string{"logs", "two-containers", "-c", "sidecar"}, "sidecar says hi\n", "", false, "container=sidecar"},
		{"deployment/NAME uses one of its pods", []string{"logs", "deployment/web", "--tail", "2"}, "line 2\nline 3\n", "", false, "tailLines=2"},
		{"an unknown container is the server's error", []string{"logs", "web-7d4b9c-x2x9z", "-c", "nope"}, "",
			"Error from server (BadRequest): container \"nope\" in pod \"web-7d4b9c-x2x9z\" is not available\n", true, "container=nope"},
		{"a missing pod is NotFound", []string{"logs", "nope"}, "", "Error from server (NotFound): pods \"nope\" not found\n", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.requestsMatching("GET", "/api/v1/namespaces/default/pods/"))
			stdout, stderr, err := run(t, f.opts, "", tc.args...)
			if (err != nil) != tc.fails {
				t.Fatalf("err %v; stderr %q", err, stderr)
			}
			if stdout != tc.wantOut || stderr != tc.wantErr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout, stderr, tc.wantOut, tc.wantErr)
			}
			if tc.wantQuery == "" {
				return
			}
			reqs := f.requestsMatching("GET", "/api/v1/namespaces/default/pods/")[before:]
			last := reqs[len(reqs)-1]
			if !strings.HasSuffix(last.Path, "/log") || !strings.Contains(last.Query, tc.wantQuery) {
				t.Errorf("last request %s?%s, want a log request with %s", last.Path, last.Query, tc.wantQuery)
			}
		})
	}
}

// TestLogsFollow checks that -f streams: the first line is printed while
// the server still holds the rest back.
func TestLogsFollow(t *testing.T) {
	f := newPopulatedAPI(t)
	gate := make(chan struct{})
	f.logGate = gate
	f.logs["default/web-7d4b9c-x2x9z/web"] = []string{"first", "second"}
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		_, _, err := runTo(ctx, t, f.opts, "", &out, &errOut, "logs", "-f", "web-7d4b9c-x2x9z")
		done <- err
	}()
	waitFor(t, func() bool { return out.String() == "first\n" })
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	if out.String() != "first\nsecond\n" {
		t.Errorf("got %q", out.String())
	}
	reqs := f.requestsMatching("GET", "/api/v1/namespaces/default/pods/web-7d4b9c-x2x9z/log")
	if len(reqs) != 1 || !strings.Contains(reqs[0].Query, "follow=true") {
		t.Errorf("requests %+v", reqs)
	}
}

// TestLogsFollowInterrupted checks that Ctrl-C (the context ending) ends
// a followed log quietly.
func TestLogsFollowInterrupted(t *testing.T) {
	f := newPopulatedAPI(t)
	f.logGate = make(chan struct{}) // never opened
	f.logs["default/web-7d4b9c-x2x9z/web"] = []string{"first", "never"}
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		_, _, err := runTo(ctx, t, f.opts, "", &out, &errOut, "logs", "-f", "web-7d4b9c-x2x9z")
		done <- err
	}()
	waitFor(t, func() bool { return out.String() == "first\n" })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("interrupted follow returned %v", err)
	}
}
