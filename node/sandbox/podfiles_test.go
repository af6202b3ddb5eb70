package sandbox

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestResolvConf(t *testing.T) {
	hostConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(hostConf, []byte("# host\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0 ndots:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dns := DNSConfig{ClusterDNS: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, ClusterDomain: "cluster.local"}
	withHost := dns
	withHost.HostResolvConf = hostConf
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"}}
		if mut != nil {
			mut(p)
		}
		return p
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		cfg  DNSConfig
		want string
	}{
		{"ClusterFirst (the default): cluster DNS, <ns>.svc.<zone> svc.<zone> <zone>, ndots:5", pod(nil), dns,
			"search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{"ClusterFirst appends the node's search domains", pod(nil), withHost,
			"search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{"Default: \"inherits the name resolution configuration from the node\"", pod(func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSDefault }), withHost,
			"search corp.example\nnameserver 192.0.2.53\noptions edns0 ndots:1\n"},
		{"hostNetwork with ClusterFirst \"will fallback to the behavior of the Default policy\"", pod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), withHost,
			"search corp.example\nnameserver 192.0.2.53\noptions edns0 ndots:1\n"},
		{"hostNetwork with ClusterFirstWithHostNet gets cluster DNS", pod(func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
		}), dns, "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"},
		{"None: \"All DNS settings are supposed to be provided using the dnsConfig field\"", pod(func(p *corev1.Pod) {
			p.Spec.DNSPolicy = corev1.DNSNone
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1"}, Searches: []string{"ns1.svc.cluster-domain.example", "my.dns.search.suffix"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}}
		}), dns, "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 192.0.2.1\noptions ndots:2 edns0\n"},
		{"dnsConfig merges: duplicates removed, an option of the same name replaced", pod(func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10", "192.0.2.2"}, Searches: []string{"svc.cluster.local", "extra.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}}}
		}), dns, "search shop.svc.cluster.local svc.cluster.local cluster.local extra.example\nnameserver 10.96.0.10\nnameserver 192.0.2.2\noptions ndots:1\n"},
		{"at most 3 nameservers (MaxDNSNameservers)", pod(func(p *corev1.Pod) {
			p.Spec.DNSPolicy = corev1.DNSNone
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}}
		}), dns, "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n"},
		{"ClusterFirst without cluster DNS falls back to Default", pod(nil), DNSConfig{HostResolvConf: hostConf},
			"search corp.example\nnameserver 192.0.2.53\noptions edns0 ndots:1\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResolvConf(c.pod, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
	if _, err := ResolvConf(pod(func(p *corev1.Pod) { p.Spec.DNSPolicy = "Bogus" }), dns); err == nil {
		t.Fatal("an unknown dnsPolicy is an error")
	}
}

func TestPodHostname(t *testing.T) {
	long := "a-very-long-pod-name-that-goes-on-and-on-and-on-beyond-sixty-three-chars"
	cases := []struct {
		name           string
		pod            corev1.Pod
		wantH, wantD   string
		wantKernelHost string
	}{
		{"the pod's name", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns"}}, "web-1", "", "web-1"},
		{"spec.hostname and subdomain: <hostname>.<subdomain>.<ns>.svc.<zone>", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}, Spec: corev1.PodSpec{Hostname: "h", Subdomain: "s"}}, "h", "s.ns.svc.cluster.local", "h"},
		{"setHostnameAsFQDN: the kernel hostname is the FQDN", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}, Spec: corev1.PodSpec{Hostname: "h", Subdomain: "s", SetHostnameAsFQDN: ptr.To(true)}}, "h", "s.ns.svc.cluster.local", "h.s.ns.svc.cluster.local"},
		{"truncated to 63 characters", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: long, Namespace: "ns"}}, long[:63], "", long[:63]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, d := PodHostname(&c.pod, "")
			if h != c.wantH || d != c.wantD {
				t.Fatalf("got %q %q, want %q %q", h, d, c.wantH, c.wantD)
			}
			if k := kernelHostname(&c.pod, ""); k != c.wantKernelHost {
				t.Fatalf("kernel hostname %q, want %q", k, c.wantKernelHost)
			}
		})
	}
}

func TestHostsFile(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{
		HostAliases: []corev1.HostAlias{{IP: "127.0.0.1", Hostnames: []string{"foo.local", "bar.local"}}},
	}}
	got := HostsFile(p, []netip.Addr{netip.MustParseAddr("10.244.0.5")}, "")
	// kubelet's managedHostsFileContent followed by hostAliases.
	want := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.0.5\tp\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}
