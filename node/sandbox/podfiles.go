package sandbox

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Pod files of the netns sandbox: the /etc/resolv.conf, /etc/hosts and
// hostname a pod's containers see, built by kubelet's rules
// (pkg/kubelet/network/dns and pkg/kubelet/kubelet_pods.go) and written in
// the format containerd's CRI plugin writes.

// Kubelet's limits on the resolv.conf of a pod (pkg/apis/core/validation
// and pkg/kubelet/network/dns): "MaxDNSNameservers = 3",
// "MaxDNSSearchPaths = 32", "MaxDNSSearchListChars = 2048".
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

// DNSConfig is the node's DNS setting (kubelet's --cluster-dns,
// --cluster-domain and --resolv-conf).
type DNSConfig struct {
	ClusterDNS    []netip.Addr // the kube-dns Service's cluster IP(s)
	ClusterDomain string       // default cluster.local
	// HostResolvConf is the resolv.conf pods with dnsPolicy Default get
	// (kubelet's --resolv-conf); "" means none: such pods get an empty
	// DNS configuration, as kubelet with --resolv-conf="".
	HostResolvConf string
}

// ResolvConf is the content of a pod's /etc/resolv.conf. Upstream rules
// (https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/#pod-s-dns-policy):
//   - "ClusterFirst": "Any DNS query that does not match the configured
//     cluster domain suffix ... is forwarded to an upstream nameserver":
//     nameserver = cluster DNS, search "<ns>.svc.<zone> svc.<zone> <zone>"
//     (plus the node's search domains), options ndots:5;
//   - "For Pods running with hostNetwork, you should explicitly set its DNS
//     policy to ClusterFirstWithHostNet. Otherwise, Pods running with
//     hostNetwork and "ClusterFirst" will fallback to the behavior of the
//     "Default" policy";
//   - "Default": "The Pod inherits the name resolution configuration from
//     the node that the Pods run on";
//   - "None": "It allows a Pod to ignore DNS settings from the Kubernetes
//     environment. All DNS settings are supposed to be provided using the
//     dnsConfig field";
//   - dnsConfig: "nameservers ... will be added to the nameservers
//     generated from the specified DNS policy with duplicate addresses
//     removed", "searches ... merged into the base search domain names ...
//     Duplicate domain names are removed", "options ... will be merged to
//     the options generated from the specified DNS policy. Duplicate
//     entries are removed".
//
// A ClusterFirst pod on a node without cluster DNS gets Default, as
// kubelet ("ClusterDNS is empty ... falling back to DNSDefault policy").
func ResolvConf(pod *corev1.Pod, cfg DNSConfig) (string, error) {
	zone := cfg.ClusterDomain
	if zone == "" {
		zone = "cluster.local"
	}
	var servers, searches, options []string
	host := func() error {
		if cfg.HostResolvConf == "" {
			return nil
		}
		b, err := os.ReadFile(cfg.HostResolvConf)
		if err != nil {
			return fmt.Errorf("node resolv.conf: %w", err)
		}
		servers, searches, options = parseResolvConf(string(b))
		return nil
	}
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if (policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet) && len(cfg.ClusterDNS) == 0 {
		policy = corev1.DNSDefault
	}
	switch policy {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		if err := host(); err != nil {
			return "", err
		}
		servers = nil
		for _, a := range cfg.ClusterDNS {
			servers = append(servers, a.String())
		}
		hostSearch := searches
		searches = []string{pod.Namespace + ".svc." + zone, "svc." + zone, zone}
		searches = append(searches, hostSearch...)
		options = []string{"ndots:5"}
	case corev1.DNSDefault:
		if err := host(); err != nil {
			return "", err
		}
	case corev1.DNSNone:
	default:
		return "", fmt.Errorf("spec.dnsPolicy: unsupported value %q", policy)
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = appendUnique(servers, dc.Nameservers...)
		searches = appendUnique(searches, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			options = mergeOption(options, o.Name, opt)
		}
	}
	searches = appendUnique(nil, searches...)
	if len(servers) > maxDNSNameservers {
		servers = servers[:maxDNSNameservers]
	}
	if len(searches) > maxDNSSearchPaths {
		searches = searches[:maxDNSSearchPaths]
	}
	for len(searches) > 0 && len(strings.Join(searches, " ")) > maxDNSSearchListChars {
		searches = searches[:len(searches)-1]
	}
	// containerd's parseDNSOptions: search, nameservers, options.
	var b strings.Builder
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String(), nil
}

func appendUnique(list []string, add ...string) []string {
	for _, s := range add {
		if s != "" && !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// mergeOption replaces an option of the same name or appends it.
func mergeOption(options []string, name, opt string) []string {
	for i, o := range options {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			options[i] = opt
			return options
		}
	}
	return append(options, opt)
}

// parseResolvConf reads nameserver, search (and domain) and options lines.
func parseResolvConf(s string) (servers, searches, options []string) {
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search", "domain":
			searches = f[1:]
		case "options":
			for _, o := range f[1:] {
				n, _, _ := strings.Cut(o, ":")
				options = mergeOption(options, n, o)
			}
		}
	}
	return servers, searches, options
}

// PodHostname is kubelet's GeneratePodHostNameAndDomain: spec.hostname or
// else the pod's name ("truncated to 63 characters", trailing '-' and '.'
// removed), and the domain "<subdomain>.<ns>.svc.<zone>" when
// spec.subdomain is set. With setHostnameAsFQDN the kernel hostname is the
// FQDN.
func PodHostname(pod *corev1.Pod, zone string) (hostname, domain string) {
	if zone == "" {
		zone = "cluster.local"
	}
	hostname = pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	if pod.Spec.Subdomain != "" {
		domain = pod.Spec.Subdomain + "." + pod.Namespace + ".svc." + zone
	}
	return hostname, domain
}

// kernelHostname is what the pod's UTS namespace is set to.
func kernelHostname(pod *corev1.Pod, zone string) string {
	h, d := PodHostname(pod, zone)
	if d != "" && pod.Spec.SetHostnameAsFQDN != nil && *pod.Spec.SetHostnameAsFQDN {
		return h + "." + d
	}
	return h
}

// HostsFile is kubelet's managedHostsFileContent: the fixed localhost
// lines, the pod's own entry (its FQDN first when it has a subdomain) and
// "# Entries added by HostAliases." ("HostAliases ... entries to the Pod's
// /etc/hosts file").
func HostsFile(pod *corev1.Pod, podIPs []netip.Addr, zone string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	hostname, domain := PodHostname(pod, zone)
	for _, ip := range podIPs {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, ha := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
		}
	}
	return b.String()
}
