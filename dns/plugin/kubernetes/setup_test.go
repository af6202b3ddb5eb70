package kubernetes

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

// TestParse reads the directive as CoreDNS's ParseStanza does: defaults,
// every option, and errors that name the file and line.
func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		block    string // the lines inside ". { ... }"
		err      string // substring of the error; "" for none
		check    func(k *Kubernetes) bool
		describe string
	}{
		{name: "With only the plugin specified, the kubernetes plugin will default to the zone specified in the server's block",
			block: "kubernetes", check: func(k *Kubernetes) bool {
				return len(k.Zones) == 1 && k.Zones[0] == "cluster.local." && k.primary == "cluster.local." && k.ttl == 5 &&
					k.podMode == podsDisabled && k.opts.endpoints && !k.opts.pods && k.fall == nil && k.startupTimeout == 5*time.Second
			}, describe: "zone cluster.local., ttl 5, pods disabled, endpoints watched, no fallthrough, startup_timeout 5s"},
		{name: "If ZONES is used it specifies all the zones the plugin should be authoritative for",
			block: "kubernetes Cluster.Local ip6.arpa 10.0.0.0/17", check: func(k *Kubernetes) bool {
				return len(k.Zones) == 2+128 && k.Zones[0] == "cluster.local." && k.Zones[1] == "ip6.arpa." &&
					k.Zones[2] == "0.0.10.in-addr.arpa." && k.Zones[129] == "127.0.10.in-addr.arpa."
			}, describe: "cluster.local., ip6.arpa. and the 128 /24 reverse zones of 10.0.0.0/17"},
		{name: "an IPv6 CIDR gives reverse zones on nibble boundaries",
			block: "kubernetes cluster.local fd00::/15", check: func(k *Kubernetes) bool {
				return len(k.Zones) == 3 && k.Zones[1] == "0.0.d.f.ip6.arpa." && k.Zones[2] == "1.0.d.f.ip6.arpa."
			}, describe: "0.0.d.f.ip6.arpa. and 1.0.d.f.ip6.arpa."},
		{name: "the primary zone is the first non-reverse zone",
			block: "kubernetes 10.in-addr.arpa cluster.local", check: func(k *Kubernetes) bool { return k.primary == "cluster.local." },
			describe: "primary cluster.local."},
		{name: "non-reverse zone name must be used", block: "kubernetes 10.in-addr.arpa", err: "Corefile:2 - Error during parsing: non-reverse zone name must be used"},
		{name: "a zone that is no domain name", block: "kubernetes a..b", err: "zone is not a valid domain name"},
		{name: "pods POD-MODE", block: "kubernetes {\n pods verified\n}", check: func(k *Kubernetes) bool { return k.podMode == podsVerified && k.opts.pods },
			describe: "pods verified watches pods"},
		{name: "pods insecure does not watch pods", block: "kubernetes {\n pods insecure\n}", check: func(k *Kubernetes) bool { return k.podMode == podsInsecure && !k.opts.pods },
			describe: "insecure, no pod watch"},
		{name: "pods: wrong value", block: "kubernetes {\n pods maybe\n}", err: "Corefile:3 - Error during parsing: wrong value for pods: maybe,  must be one of: disabled, verified, insecure"},
		{name: "pods: one argument", block: "kubernetes {\n pods\n}", err: "Corefile:3 - Error during parsing: Wrong argument count"},
		{name: "The default [ttl] is 5 seconds. The minimum TTL allowed is 0 seconds", block: "kubernetes {\n ttl 0\n}", check: func(k *Kubernetes) bool { return k.ttl == 0 },
			describe: "ttl 0"},
		{name: "ttl: the maximum is capped at 3600 seconds", block: "kubernetes {\n ttl 3601\n}", err: "Corefile:3 - Error during parsing: ttl must be in range [0, 3600]: 3601"},
		{name: "ttl: not a number", block: "kubernetes {\n ttl five\n}", err: "Corefile:3 - Error during parsing: ttl:"},
		{name: "ttl: an argument", block: "kubernetes {\n ttl\n}", err: "Wrong argument count"},
		{name: "namespaces NAMESPACE [NAMESPACE...] only exposes the k8s namespaces listed", block: "kubernetes {\n namespaces a b\n}",
			check: func(k *Kubernetes) bool {
				_, a := k.namespaces["a"]
				_, b := k.namespaces["b"]
				return a && b && len(k.namespaces) == 2
			},
			describe: "namespaces a and b"},
		{name: "namespaces: at least one", block: "kubernetes {\n namespaces\n}", err: "Wrong argument count"},
		{name: "labels EXPRESSION", block: "kubernetes {\n labels environment in (staging, qa),application=nginx\n}",
			check: func(k *Kubernetes) bool {
				return k.opts.selector != nil && k.opts.selector.String() == "application=nginx,environment in (qa,staging)"
			},
			describe: "the selector application=nginx,environment in (qa,staging)"},
		{name: "labels: a bad expression", block: "kubernetes {\n labels a=b=c\n}", err: "Corefile:3 - Error during parsing: unable to parse labels selector value"},
		{name: "namespace_labels EXPRESSION", block: "kubernetes {\n namespace_labels istio-injection=enabled\n}",
			check: func(k *Kubernetes) bool {
				return k.opts.nsSelector != nil && k.opts.nsSelector.String() == "istio-injection=enabled"
			}, describe: "the namespace selector"},
		{name: "namespaces and namespace_labels cannot both be set", block: "kubernetes {\n namespaces a\n namespace_labels x=y\n}", err: "namespaces and namespace_labels cannot both be set"},
		{name: "endpoint_pod_names", block: "kubernetes {\n endpoint_pod_names\n}", check: func(k *Kubernetes) bool { return k.opts.podNames }, describe: "pod names"},
		{name: "endpoint_pod_names takes no argument", block: "kubernetes {\n endpoint_pod_names yes\n}", err: "Wrong argument count"},
		{name: "noendpoints will turn off the serving of endpoint records by disabling the watch on endpoints", block: "kubernetes {\n noendpoints\n}",
			check: func(k *Kubernetes) bool { return !k.opts.endpoints }, describe: "no endpoint watch"},
		{name: "noendpoints takes no argument", block: "kubernetes {\n noendpoints x\n}", err: "Wrong argument count"},
		{name: "ignore empty_service", block: "kubernetes {\n ignore empty_service\n}", check: func(k *Kubernetes) bool { return k.ignoreEmpty }, describe: "ignore empty services"},
		{name: "ignore: anything else", block: "kubernetes {\n ignore full_service\n}", err: "unable to parse ignore value: 'full_service'"},
		{name: "fallthrough [ZONES...] omitted: all zones", block: "kubernetes {\n fallthrough\n}",
			check: func(k *Kubernetes) bool { return len(k.fall) == 1 && k.fall[0] == "." }, describe: "fall through for ."},
		{name: "fallthrough in-addr.arpa ip6.arpa", block: "kubernetes {\n fallthrough in-addr.arpa ip6.arpa\n}",
			check: func(k *Kubernetes) bool {
				return len(k.fall) == 2 && k.fall[0] == "in-addr.arpa." && k.fall[1] == "ip6.arpa." && k.fallsThrough("1.0.0.10.in-addr.arpa.") && !k.fallsThrough("x.cluster.local.")
			}, describe: "fall through for the reverse zones only"},
		{name: "startup_timeout DURATION", block: "kubernetes {\n startup_timeout 2s\n}", check: func(k *Kubernetes) bool { return k.startupTimeout == 2*time.Second }, describe: "2s"},
		{name: "startup_timeout: a bad duration", block: "kubernetes {\n startup_timeout soon\n}", err: "failed to parse startup_timeout: soon"},
		{name: "endpoint, tls, kubeconfig and the apiserver_* options are accepted (and ignored: records come from the store)",
			block: "kubernetes {\n endpoint https://k8s-endpoint:8443\n tls cert key cacert\n kubeconfig /etc/kube.conf ctx\n apiserver_qps 10\n apiserver_burst 20\n apiserver_max_inflight 5\n}",
			check: func(k *Kubernetes) bool { return k.opts.endpoints }, describe: "accepted"},
		{name: "tls CERT KEY CACERT: three arguments", block: "kubernetes {\n tls cert key\n}", err: "Wrong argument count"},
		{name: "kubeconfig KUBECONFIG [CONTEXT]", block: "kubernetes {\n kubeconfig a b c\n}", err: "Wrong argument count"},
		{name: "apiserver_qps must be >= 0", block: "kubernetes {\n apiserver_qps -1\n}", err: "apiserver_qps must be >= 0"},
		{name: "apiserver_burst: a number", block: "kubernetes {\n apiserver_burst many\n}", err: "invalid apiserver_burst \"many\""},
		{name: "multicluster is not supported", block: "kubernetes cluster.local clusterset.local {\n multicluster clusterset.local\n}", err: "Corefile:3 - Error during parsing: multicluster is not supported"},
		{name: "an unknown property", block: "kubernetes {\n upstream 8.8.8.8\n}", err: "Corefile:3 - Error during parsing: unknown property 'upstream'"},
		{name: "This plugin can only be used once per Server Block", block: "kubernetes\nkubernetes", err: "this plugin can only be used once per Server Block"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			corefile := "cluster.local {\n" + c.block + "\n}\n"
			k, err := parse(controller(t, corefile), dnstest.QuietEnv().Log())
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("%q: got error %v, want one containing %q", c.block, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", c.block, err)
			}
			if !c.check(k) {
				t.Errorf("%q: want %s, got zones %v ttl %d pods %d fall %v", c.block, c.describe, k.Zones, k.ttl, k.podMode, k.fall)
			}
		})
	}
}

// TestSetupWithoutStore: a server without a cluster store cannot run the
// plugin, and says so with the Corefile's position.
func TestSetupWithoutStore(t *testing.T) {
	t.Parallel()
	_, err := dnsserver.NewInstance("Corefile", []byte("cluster.local:0 {\n  kubernetes\n}\n"), dnsserver.Options{Env: dnstest.QuietEnv()})
	if err == nil || !strings.Contains(err.Error(), "Corefile:2") || !strings.Contains(err.Error(), "no cluster store") {
		t.Fatalf("got %v, want an error at Corefile:2 saying there is no cluster store", err)
	}
}
