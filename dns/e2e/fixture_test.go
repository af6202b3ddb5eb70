package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// The fixture: ordinary manifests a user could write. Pods run the
// built-in demo HTTP server, so they get real addresses and readiness, and
// the controllers write the EndpointSlices; two selector-less Services
// come with EndpointSlices written by hand (IPv6 addresses, and enough
// addresses to overflow a 512-byte answer).
//
//   - Deployment web (2 pods, containerPort named "http"), selected by
//     Service web (ClusterIP, two named ports: http 80/TCP to targetPort
//     "http", stats 8125/UDP to targetPort 8125), Service plain
//     (ClusterIP, one unnamed port 8080) and Service workers (headless,
//     port http to "http"; the pods have no hostname).
//   - Pods db-0, db-1 (hostname + subdomain db), selected by Service db
//     (headless, port postgres 5432 to targetPort "pg", 8080).
//   - Pod starting (hostname nr-0, subdomain nr), never ready (its
//     readiness probe knocks on a closed port), selected by Service nr
//     (headless, publishNotReadyAddresses) and Service nr-strict (headless,
//     without).
//   - ext: ExternalName web.default.svc.cluster.local (inside the zone);
//     outside: ExternalName www.upstream.test (the test's upstream).
//   - v6: headless, no selector; EndpointSlice (IPv6) fd00::1 (hostname
//     h6) and fd00::2.
//   - many: headless, no selector; EndpointSlice with manyCount IPv4
//     addresses 127.57.0.1...
//   - Namespace team with Service api (ClusterIP, no selector).
const manifests = `
apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: web
          image: switchboard/demo
          command: ["switchboard", "demo", "http", "--port", "8080", "--quiet"]
          ports:
            - {name: http, containerPort: 8080}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
    - {name: stats, port: 8125, protocol: UDP, targetPort: 8125}
---
apiVersion: v1
kind: Service
metadata:
  name: plain
spec:
  selector: {app: web}
  ports:
    - {port: 8080, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: workers
spec:
  clusterIP: None
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  labels: {app: db}
spec:
  hostname: db-0
  subdomain: db
  terminationGracePeriodSeconds: 2
  containers:
    - name: db
      image: switchboard/demo
      command: ["switchboard", "demo", "http", "--port", "8080", "--quiet"]
      ports:
        - {name: pg, containerPort: 8080}
      readinessProbe:
        httpGet: {path: /readyz, port: pg}
        periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: db-1
  labels: {app: db}
spec:
  hostname: db-1
  subdomain: db
  terminationGracePeriodSeconds: 2
  containers:
    - name: db
      image: switchboard/demo
      command: ["switchboard", "demo", "http", "--port", "8080", "--quiet"]
      ports:
        - {name: pg, containerPort: 8080}
      readinessProbe:
        httpGet: {path: /readyz, port: pg}
        periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {app: db}
  ports:
    - {name: postgres, port: 5432, targetPort: pg}
---
apiVersion: v1
kind: Pod
metadata:
  name: starting
  labels: {app: starting}
spec:
  hostname: nr-0
  subdomain: nr
  terminationGracePeriodSeconds: 2
  containers:
    - name: app
      image: switchboard/demo
      command: ["switchboard", "demo", "http", "--port", "8080", "--quiet"]
      readinessProbe:
        tcpSocket: {port: 9}
        periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: nr
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: starting}
  ports:
    - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: nr-strict
spec:
  clusterIP: None
  selector: {app: starting}
  ports:
    - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: ext
spec:
  type: ExternalName
  externalName: web.default.svc.cluster.local
---
apiVersion: v1
kind: Service
metadata:
  name: outside
spec:
  type: ExternalName
  externalName: www.upstream.test
---
apiVersion: v1
kind: Service
metadata:
  name: v6
spec:
  clusterIP: None
  ports:
    - {name: http, port: 80}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: v6-1
  labels:
    kubernetes.io/service-name: v6
    endpointslice.kubernetes.io/managed-by: e2e.switchboard.dev
addressType: IPv6
endpoints:
  - addresses: ["fd00::1"]
    hostname: h6
    conditions: {ready: true}
  - addresses: ["fd00::2"]
    conditions: {ready: true}
ports:
  - {name: http, port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata:
  name: many
spec:
  clusterIP: None
  ports:
    - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: team
spec:
  ports:
    - {name: https, port: 443}
`

// manyCount addresses of 16 bytes each (compressed A records) make an
// answer of more than 512 bytes (the limit without EDNS0) but less than
// 1232 (dig's EDNS0 buffer).
const manyCount = 40

func manyAddr(i int) string { return fmt.Sprintf("127.57.0.%d", i) }

func manySlice() string {
	var b strings.Builder
	b.WriteString(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: many-1
  labels:
    kubernetes.io/service-name: many
    endpointslice.kubernetes.io/managed-by: e2e.switchboard.dev
addressType: IPv4
ports:
  - {name: dns, port: 53, protocol: UDP}
endpoints:
`)
	for i := 1; i <= manyCount; i++ {
		fmt.Fprintf(&b, "  - addresses: [%q]\n    conditions: {ready: true}\n", manyAddr(i))
	}
	return b.String()
}

// exampleZone is the file zone behind alias: its apex is a CNAME (which
// a zone apex cannot really hold next to SOA and NS) to www, itself a
// CNAME to a cluster service, so that alias flattens a two-link chain
// that ends in another server block.
const exampleZone = `$ORIGIN example.test.
$TTL 300
@       IN SOA   ns.upstream.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300
        IN NS    ns.upstream.test.
        IN CNAME www
www 600 IN CNAME web.default.svc.cluster.local.
txt     IN TXT   "hello from a file zone"
`

// deployZone is the zone the git repository holds, at a serial and with
// an address for www.
func deployZone(serial int, www string) string {
	return fmt.Sprintf(`$ORIGIN deploy.test.
$TTL 60
@   IN SOA ns.upstream.test. hostmaster.deploy.test. %d 7200 3600 1209600 60
    IN NS  ns.upstream.test.
www IN A   %s
`, serial, www)
}

// mainCorefile is the Corefile of the suite: kube-dns's (kubernetes with
// pods insecure, forward, cache 30, prometheus) with the test's upstream
// instead of /etc/resolv.conf, acl and any in front; a block per other
// pods mode; a file zone with alias; a zone deployed from git. Every
// block binds to the kube-dns address and the node address only, as the
// built-in Corefile of `up` does.
const mainCorefile = `# The dns/e2e suite's cluster DNS.
(bound) {
    bind {{DNS}} {{NODE}}
}

. {
    import bound
    errors
    acl {
        block type MX
        drop net {{DROP}}/32
    }
    any
    prometheus {{DNS}}:9153
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . {{UPSTREAM}}
    cache 30
}

verified.local {
    import bound
    errors
    kubernetes {
        pods verified
        endpoint_pod_names
    }
}

disabled.local {
    import bound
    errors
    kubernetes {
        pods disabled
    }
}

example.test {
    import bound
    errors
    file {{ZONEFILE}}
    alias
}

deploy.test {
    import bound
    errors
    git {{REPO}} {{CHECKOUT}} {
        branch master
        interval 300ms
    }
    file {{CHECKOUT}}/db.deploy.test {
        reload 200ms
    }
}
`

// render replaces the {{KEY}} placeholders of a Corefile template.
func render(tmpl string, kv ...string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		tmpl = strings.ReplaceAll(tmpl, "{{"+kv[i]+"}}", kv[i+1])
	}
	if i := strings.Index(tmpl, "{{"); i >= 0 {
		panic("unreplaced placeholder in Corefile template: " + tmpl[i:])
	}
	return tmpl
}

// gitSource is the repository zones are deployed from: a local
// repository (go-git, no git binary needed) standing for the remote a user
// pushes to.
type gitSource struct {
	t    *testing.T
	dir  string
	repo *gogit.Repository
	when time.Time
}

func newGitSource(t *testing.T) *gitSource {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "zones")
	repo, err := gogit.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &gitSource{t: t, dir: dir, repo: repo, when: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// commit writes a file and commits it on master.
func (s *gitSource) commit(msg, file, content string) {
	s.t.Helper()
	wt, err := s.repo.Worktree()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, file), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if _, err := wt.Add(file); err != nil {
		s.t.Fatal(err)
	}
	s.when = s.when.Add(time.Minute)
	if _, err := wt.Commit(msg, &gogit.CommitOptions{Author: &object.Signature{Name: "e2e", Email: "e2e@example.test", When: s.when}}); err != nil {
		s.t.Fatal(err)
	}
}
