package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

// TestDeleteWaits checks that delete (--wait defaults to true) returns
// only once the object is gone: the fake API removes a deleted pod some
// time after marking it with a deletionTimestamp, as a node does after
// stopping its containers.
func TestDeleteWaits(t *testing.T) {
	f := newPopulatedAPI(t)
	f.podDeleteDelay = 300 * time.Millisecond
	stdout, stderr, err := run(t, f.opts, "", "delete", "pod", "web-7d4b9c-x2x9z")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if stdout != "pod \"web-7d4b9c-x2x9z\" deleted\n" {
		t.Errorf("stdout %q", stdout)
	}
	if o := f.object(cluster.KindPod, "default", "web-7d4b9c-x2x9z"); o != nil {
		t.Errorf("delete returned while the pod still exists (deletionTimestamp %v)", o.GetDeletionTimestamp())
	}
	del := f.requestsMatching("DELETE", "/api/v1/namespaces/default/pods/web-7d4b9c-x2x9z")
	if len(del) != 1 {
		t.Fatalf("DELETE requests: %d", len(del))
	}
	var opts metav1.DeleteOptions
	if err := json.Unmarshal(del[0].Body, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.GracePeriodSeconds != nil || opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != "uid-web-pod" {
		t.Errorf("delete options %+v: want the pod's own grace period and a UID precondition", opts)
	}
}

func TestDeleteNoWait(t *testing.T) {
	f := newPopulatedAPI(t)
	f.podDeleteDelay = time.Hour
	if _, stderr, err := run(t, f.opts, "", "delete", "pod", "web-7d4b9c-x2x9z", "--wait=false"); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	o := f.object(cluster.KindPod, "default", "web-7d4b9c-x2x9z")
	if o == nil || o.GetDeletionTimestamp() == nil {
		t.Errorf("want the pod still terminating, got %v", o)
	}
}

// TestDeleteGracePeriod follows kubectl: --grace-period=N is sent as is,
// --grace-period=0 without --force becomes 1 ("to prevent accidental data
// loss"), and --force sends 0 with kubectl's warning.
func TestDeleteGracePeriod(t *testing.T) {
	cases := []struct {
		name     string
		flags    []string
		want     int64
		wantWarn bool
	}{
		{"--grace-period=5", []string{"--grace-period=5"}, 5, false},
		{"--grace-period=0 without --force is 1", []string{"--grace-period=0"}, 1, false},
		{"--force is 0", []string{"--force"}, 0, true},
		{"--force --grace-period=0", []string{"--force", "--grace-period=0"}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newPopulatedAPI(t)
			_, stderr, err := run(t, f.opts, "", append([]string{"delete", "pod", "web-7d4b9c-x2x9z"}, tc.flags...)...)
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			del := f.requestsMatching("DELETE", "/api/v1/namespaces/default/pods/")
			var opts metav1.DeleteOptions
			json.Unmarshal(del[0].Body, &opts)
			if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != tc.want {
				t.Errorf("gracePeriodSeconds %v, want %d", opts.GracePeriodSeconds, tc.want)
			}
			if got := strings.HasPrefix(stderr, "Warning: Immediate deletion does not wait"); got != tc.wantWarn {
				t.Errorf("stderr %q", stderr)
			}
		})
	}
}

func TestDeleteForms(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantOut    string
		wantErr    string
		fails      bool
		gone, kept []string // kind/namespace/name
	}{
		{"TYPE/NAME and kubectl's kind.group in the message", []string{"delete", "deployment/web"},
			"deployment.apps \"web\" deleted\n", "", false, []string{"deployments/default/web"}, []string{"services/default/web"}},
		{"TYPE NAME...", []string{"delete", "svc", "web"}, "service \"web\" deleted\n", "", false, []string{"services/default/web"}, nil},
		{"-l across namespaces", []string{"delete", "pods", "-l", "app=db", "-A"}, "pod \"db-0\" deleted\n", "", false,
			[]string{"pods/data/db-0"}, []string{"pods/default/web-7d4b9c-x2x9z"}},
		{"--all in the namespace", []string{"delete", "rs", "--all"},
			"replicaset.apps \"web-5f6a7b\" deleted\nreplicaset.apps \"web-7d4b9c\" deleted\n", "", false,
			[]string{"replicasets/default/web-5f6a7b", "replicasets/default/web-7d4b9c"}, nil},
		{"a missing name fails as kubectl, the others are still deleted", []string{"delete", "pod", "nope", "web-7d4b9c-x2x9z"},
			"pod \"web-7d4b9c-x2x9z\" deleted\n", "Error from server (NotFound): pods \"nope\" not found\n", true,
			[]string{"pods/default/web-7d4b9c-x2x9z"}, nil},
		{"--ignore-not-found", []string{"delete", "pod", "nope", "--ignore-not-found"}, "", "", false, nil, []string{"pods/default/web-7d4b9c-x2x9z"}},
		{"-o name", []string{"delete", "svc/web", "-o", "name"}, "service/web\n", "", false, []string{"services/default/web"}, nil},
		{"a type without names or selector", []string{"delete", "pods"}, "", "error: resource(s) were provided, but no name was specified\n", true, nil, nil},
		{"an empty selector match", []string{"delete", "pods", "-l", "app=none"}, "", "No resources found\n", false, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newPopulatedAPI(t)
			stdout, stderr, err := run(t, f.opts, "", tc.args...)
			if (err != nil) != tc.fails {
				t.Fatalf("err %v: %s", err, stderr)
			}
			if stdout != tc.wantOut || stderr != tc.wantErr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout, stderr, tc.wantOut, tc.wantErr)
			}
			check := func(list []string, wantGone bool) {
				for _, s := range list {
					parts := strings.Split(s, "/")
					k, _ := cluster.LookupResource(parts[0])
					if got := f.object(k, parts[1], parts[2]) == nil; got != wantGone {
						t.Errorf("%s gone = %v, want %v", s, got, wantGone)
					}
				}
			}
			check(tc.gone, true)
			check(tc.kept, false)
		})
	}
}
