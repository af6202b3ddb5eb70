package sandbox

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The conflist declares the newest CNI version every chained plugin's
// VERSION lists (Debian's reference plugins 1.1.1 stop at 1.0.0).
func TestCommonCNIVersion(t *testing.T) {
	for _, tc := range []struct {
		name      string
		supported [][]string
		want      string
	}{
		{"no chain", nil, "1.1.0"},
		{"a 1.1 plugin", [][]string{{"0.4.0", "1.0.0", "1.1.0"}}, "1.1.0"},
		{"Debian's portmap 1.1.1", [][]string{{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"}}, "1.0.0"},
		{"one of two stops at 1.0.0", [][]string{{"1.0.0", "1.1.0"}, {"1.0.0"}}, "1.0.0"},
		{"a plugin without 1.x", [][]string{{"0.3.1", "0.4.0"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := commonCNIVersion(tc.supported); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// portMappings is containerd's CNI portMappings argument: one entry per
// container port with a hostPort, protocol lower-case, TCP by default.
func TestPortMappings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ports [][]corev1.ContainerPort
		want  []map[string]any
	}{
		{"no hostPort: nothing", [][]corev1.ContainerPort{{{ContainerPort: 80}}}, nil},
		{"TCP by default", [][]corev1.ContainerPort{{{ContainerPort: 80, HostPort: 8080}}},
			[]map[string]any{{"hostPort": int32(8080), "containerPort": int32(80), "protocol": "tcp", "hostIP": ""}}},
		{"every container, UDP, hostIP", [][]corev1.ContainerPort{
			{{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "10.244.0.1"}},
			{{ContainerPort: 9000}, {ContainerPort: 9001, HostPort: 19001, Protocol: corev1.ProtocolSCTP}}},
			[]map[string]any{
				{"hostPort": int32(5353), "containerPort": int32(53), "protocol": "udp", "hostIP": "10.244.0.1"},
				{"hostPort": int32(19001), "containerPort": int32(9001), "protocol": "sctp", "hostIP": ""},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod("p", func(p *corev1.Pod) {
				for _, ports := range tc.ports {
					p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c", Ports: ports})
				}
			})
			if got := portMappings(pod); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// A chained plugin that is not a plain name, or is in none of the bin
// dirs, is refused at start with its name.
func TestChainErrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the netns sandbox needs root (network namespaces)")
	}
	node := fmt.Sprintf("c%dx%d", os.Getpid(), time.Now().UnixNano()%1e6)
	t.Cleanup(func() { _, _ = RemoveNodeNamespaces(node) })
	path, err := CreateNamedNetNS(NodeNamespaceName(node))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ chain, want string }{
		{"../portmap", `chained CNI plugin "../portmap": not a plugin name`},
		{"no-such-plugin", `chained CNI plugin "no-such-plugin" (searched /usr/lib/cni, /opt/cni/bin)`},
	} {
		t.Run(tc.chain, func(t *testing.T) {
			_, err := NewNetNS(NetNSConfig{NodeName: node, NodeNetNS: path, StateDir: t.TempDir(), PluginBinary: "/bin/true", Chain: []string{tc.chain}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
