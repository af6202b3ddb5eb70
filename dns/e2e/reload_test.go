package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// reloadCorefile is the Corefile of the reload test: kubernetes with a
// TTL and a hosts zone with an address, both changed by a new Corefile;
// {{BROKEN}} makes it fail in the kubernetes plugin's setup.
const reloadCorefile = `# The dns/e2e reload test.
cluster.local {
    bind {{DNS}} {{NODE}}
    reload 2s 1s
    errors
    prometheus {{DNS}}:9153
    kubernetes {
        ttl {{TTL}}{{BROKEN}}
    }
}

reload.test {
    bind {{DNS}} {{NODE}}
    hosts {
        {{ADDR}} www.reload.test
    }
}
`

const helloService = `apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  ports:
    - {name: http, port: 80}
`

// TestReload: "a bad new Corefile keeps the old one running and logs
// why", then a good one is applied, with queries answered all along.
func TestReload(t *testing.T) {
	needDig(t)
	t.Parallel()
	a := newAddrs()
	dir := t.TempDir()
	mdir := filepath.Join(dir, "manifests")
	if err := os.Mkdir(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mdir, "hello.yaml"), helloService)
	corefile := filepath.Join(dir, "Corefile")
	version := func(ttl, addr, broken string) string {
		return render(reloadCorefile, "DNS", a.dnsIP, "NODE", a.nodeIP, "TTL", ttl, "ADDR", addr, "BROKEN", broken)
	}
	writeFile(t, corefile, version("5", "127.0.0.1", ""))
	n := startNode(t, a, mdir, corefile)
	ip := n.clusterIP("default", "hello")

	oldHello := []string{rr("hello.default.svc.cluster.local.", "5", "A", ip)}
	newHello := []string{rr("hello.default.svc.cluster.local.", "7", "A", ip)}
	oldWWW := []string{rr("www.reload.test.", "3600", "A", "127.0.0.1")}
	newWWW := []string{rr("www.reload.test.", "3600", "A", "127.0.0.2")}
	answers := func(name string) (digResult, error) { return dig(t, n.dnsAddr, name, "A") }
	is := func(r digResult, err error, want []string) bool {
		return err == nil && r.status == "NOERROR" && r.flag("aa") && sameRecords(r.answer, want, ttlExact)
	}
	for _, c := range []struct {
		name string
		want []string
	}{{"hello.default.svc.cluster.local", oldHello}, {"www.reload.test", oldWWW}} {
		if r, err := answers(c.name); !is(r, err, c.want) {
			t.Fatalf("the first Corefile: %s: %v\n%s", c.name, err, r.out)
		}
	}

	// Queries all along: each is answered, by the old or the new
	// configuration, never dropped or refused.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var asked int
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, err := answers("hello.default.svc.cluster.local")
			mu.Lock()
			asked++
			if !is(r, err, oldHello) && !is(r, err, newHello) {
				bad = append(bad, r.out+"\n"+errString(err))
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	halt := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(halt)

	// A broken Corefile: the running one stays, the log says why.
	broken := version("5", "127.0.0.1", "\n        pods sometimes")
	brokenLine := 1 + strings.Count(broken[:strings.Index(broken, "pods sometimes")], "\n")
	writeFile(t, corefile, broken)
	n.WaitFor(10*time.Second, "the failed reload in the log", func() bool {
		return strings.Contains(n.Stderr.String(), "Corefile changed but reload failed")
	})
	var line string
	for _, l := range strings.Split(n.Stderr.String(), "\n") {
		if strings.Contains(l, "Corefile changed but reload failed") {
			line = l
			break
		}
	}
	t.Logf("the log says: %s", line)
	// The reason: the file, its line and the plugin, as CoreDNS words it.
	for _, want := range []string{"plugin/kubernetes", corefile + ":" + strconv.Itoa(brokenLine), "sometimes"} {
		if !strings.Contains(line, want) {
			t.Errorf("the failed reload's log line does not say %q:\n%s", want, line)
		}
	}
	for _, c := range []struct {
		name string
		want []string
	}{{"hello.default.svc.cluster.local", oldHello}, {"www.reload.test", oldWWW}} {
		if r, err := answers(c.name); !is(r, err, c.want) {
			t.Errorf("after the broken Corefile, the old one should answer %s: %v\n%s", c.name, err, r.out)
		}
	}
	m, err := metrics(metricsAddr(a.dnsIP))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := metricSum(m, "coredns_reload_failed_total"); !ok || v < 1 {
		t.Errorf("coredns_reload_failed_total = %v (found %v), want at least 1", v, ok)
	}

	// A good Corefile: its behaviour, in both blocks.
	writeFile(t, corefile, version("7", "127.0.0.2", ""))
	n.WaitFor(10*time.Second, "the new Corefile's answer", func() bool {
		r, err := answers("www.reload.test")
		return is(r, err, newWWW)
	})
	if r, err := answers("hello.default.svc.cluster.local"); !is(r, err, newHello) {
		t.Errorf("the new Corefile's kubernetes ttl 7: %v\n%s", err, r.out)
	}
	if !strings.Contains(n.Stderr.String(), "Reloaded Corefile") {
		t.Error(`the log does not say "Reloaded Corefile"`)
	}
	halt()
	mu.Lock()
	defer mu.Unlock()
	if asked == 0 {
		t.Error("no query was asked during the reloads")
	}
	for _, b := range bad {
		t.Errorf("a query during the reloads was not answered by either configuration:\n%s", b)
	}
	t.Logf("%d queries during the reloads, all answered", asked)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
