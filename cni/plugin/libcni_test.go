package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/switchboard-dev/switchboard/cni/cnitest"
	"github.com/switchboard-dev/switchboard/cni/plugin"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func asCurrent(t *testing.T, r types.Result) *current.Result {
	t.Helper()
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	return res
}

func cniCode(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// "Plugins must output a JSON object with the following keys upon a
// VERSION operation: cniVersion, supportedVersions"
func TestVersionThroughLibcni(t *testing.T) {
	e := newEnv(t)
	for _, typ := range []string{"switchboard", "switchboard-ipam"} {
		var info interface{ SupportedVersions() []string }
		err := e.node.Do(func() error {
			var err error
			info, err = e.rt.CNI.GetVersionInfo(ctx(t), typ)
			return err
		})
		if err != nil {
			t.Fatalf("%s VERSION: %v", typ, err)
		}
		for _, want := range []string{"0.1.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
			if !slices.Contains(info.SupportedVersions(), want) {
				t.Errorf("%s supports %v, want %s among them", typ, info.SupportedVersions(), want)
			}
		}
	}
}

func linkAttrs(t *testing.T, n *cnitest.NetNS, name string) (netlink.Link, []netlink.Addr) {
	t.Helper()
	var l netlink.Link
	var addrs []netlink.Addr
	if err := n.Do(func() error {
		var err error
		if l, err = netlink.LinkByName(name); err != nil {
			return err
		}
		addrs, err = netlink.AddrList(l, netlink.FAMILY_V4)
		return err
	}); err != nil {
		t.Fatalf("link %s in %s: %v", name, n.Name, err)
	}
	return l, addrs
}

func hasAddr(addrs []netlink.Addr, cidr string) bool {
	for _, a := range addrs {
		if a.IPNet.String() == cidr {
			return true
		}
	}
	return false
}

// serveOnce listens inside n on addr and answers the first connection
// with greeting; it returns the listening address.
func serveOnce(t *testing.T, n *cnitest.NetNS, addr, greeting string) string {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", n.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, greeting)
	}()
	return ln.Addr().String()
}

// dialRead connects from inside n and returns what the server says.
func dialRead(n *cnitest.NetNS, addr string) (string, error) {
	var conn net.Conn
	if err := n.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	return string(b), err
}

// ADD, CHECK and DEL through libcni for every spec version with CHECK,
// then the result format, the kernel state and pod-to-pod traffic.
func TestAddCheckDel(t *testing.T) {
	for _, version := range []string{"1.1.0", "1.0.0", "0.4.0"} {
		t.Run(version, func(t *testing.T) {
			e := newEnv(t)
			list := e.ourConf(t, version, "pods", "")
			podA, podB := newNS(t, "a"), newNS(t, "b")
			rcA := cnitest.Attachment("ctr-a", podA.Path, "eth0")
			rcB := cnitest.Attachment("ctr-b", podB.Path, "eth0")
			t.Cleanup(func() { _ = e.rt.Del(context.Background(), list, rcA); _ = e.rt.Del(context.Background(), list, rcB) })
			rawA, err := e.rt.Add(ctx(t), list, rcA)
			if err != nil {
				t.Fatalf("ADD a: %v", err)
			}
			if rawA.Version() != version {
				t.Errorf("result version %s, want the config's %s", rawA.Version(), version)
			}
			resA := asCurrent(t, rawA)
			rawB, err := e.rt.Add(ctx(t), list, rcB)
			if err != nil {
				t.Fatalf("ADD b: %v", err)
			}
			resB := asCurrent(t, rawB)

			// "interfaces ... sandbox: For interfaces created inside the
			// container, this should be the value passed via CNI_NETNS"
			if len(resA.Interfaces) != 3 {
				t.Fatalf("interfaces %v, want bridge, host veth, container veth", resA.Interfaces)
			}
			br, hostVeth, cont := resA.Interfaces[0], resA.Interfaces[1], resA.Interfaces[2]
			if br.Name != "sbcni0" || br.Sandbox != "" || hostVeth.Name != plugin.HostVethName("ctr-a", "eth0") || hostVeth.Sandbox != "" {
				t.Errorf("host interfaces %v %v", br, hostVeth)
			}
			if cont.Name != "eth0" || cont.Sandbox != podA.Path || cont.Mac == "" {
				t.Errorf("container interface %v, want eth0 in %s with a MAC", cont, podA.Path)
			}
			// "interface (uint): the index into the interfaces list"
			if len(resA.IPs) != 1 || resA.IPs[0].Interface == nil || *resA.IPs[0].Interface != 2 {
				t.Fatalf("ips %v, want one on interface 2", resA.IPs)
			}
			ipA, ipB := resA.IPs[0].Address, resB.IPs[0].Address
			if _, subnet, _ := net.ParseCIDR("10.88.0.0/24"); !subnet.Contains(ipA.IP) || ipA.IP.Equal(ipB.IP) || !resA.IPs[0].Gateway.Equal(net.ParseIP("10.88.0.1")) {
				t.Errorf("addresses %v %v gateway %v", ipA, ipB, resA.IPs[0].Gateway)
			}
			if len(resA.Routes) != 1 || resA.Routes[0].Dst.String() != "0.0.0.0/0" || !resA.Routes[0].GW.Equal(net.ParseIP("10.88.0.1")) {
				t.Errorf("routes %v, want default via the gateway", resA.Routes)
			}
			if !slices.Equal(resA.DNS.Nameservers, []string{"10.96.0.10"}) || !slices.Equal(resA.DNS.Options, []string{"ndots:5"}) {
				t.Errorf("dns %+v", resA.DNS)
			}
			// The kernel agrees with the result.
			l, addrs := linkAttrs(t, podA, "eth0")
			if !hasAddr(addrs, ipA.String()) || l.Attrs().MTU != 1400 || l.Attrs().HardwareAddr.String() != cont.Mac {
				t.Errorf("pod eth0: addrs %v mtu %d mac %s", addrs, l.Attrs().MTU, l.Attrs().HardwareAddr)
			}
			bl, braddrs := linkAttrs(t, e.node, "sbcni0")
			if !hasAddr(braddrs, "10.88.0.1/24") {
				t.Errorf("bridge addresses %v, want the gateway 10.88.0.1/24", braddrs)
			}
			hl, _ := linkAttrs(t, e.node, hostVeth.Name)
			if hl.Attrs().MasterIndex != bl.Attrs().Index {
				t.Errorf("host veth not a port of the bridge")
			}
			if err := e.node.Do(func() error {
				pi, err := netlink.LinkGetProtinfo(hl)
				if err == nil && !pi.Hairpin {
					err = fmt.Errorf("hairpin mode off: %+v", pi)
				}
				return err
			}); err != nil {
				t.Errorf("%s: %v", hostVeth.Name, err)
			}
			if files := addrFiles(t, e.dataDir, "pods"); len(files) != 2 {
				t.Errorf("allocation files %v, want 2", files)
			}
			// Pod to pod over the bridge.
			addr := serveOnce(t, podA, net.JoinHostPort(ipA.IP.String(), "0"), "hello from a")
			if got, err := dialRead(podB, addr); err != nil || got != "hello from a" {
				t.Errorf("pod b -> pod a %s: %q, %v", addr, got, err)
			}

			if err := e.rt.Check(ctx(t), list, rcA); err != nil {
				t.Errorf("CHECK right after ADD: %v", err)
			}
			// "The plugin should return an error if a resource included
			// in the CNI Result type (interface, address or route) was
			// created by the plugin ... but is missing"
			if err := podA.Do(func() error {
				l, err := netlink.LinkByName("eth0")
				if err != nil {
					return err
				}
				return netlink.AddrDel(l, &netlink.Addr{IPNet: &ipA})
			}); err != nil {
				t.Fatal(err)
			}
			if err := e.rt.Check(ctx(t), list, rcA); cniCode(err) != plugin.ErrCheckFailed {
				t.Errorf("CHECK with the address removed: %v, want code %d", err, plugin.ErrCheckFailed)
			}

			// "Plugins MUST accept multiple DEL calls for the same
			// (CNI_CONTAINERID, CNI_IFNAME) pair"
			for i := range 2 {
				if err := e.rt.Del(ctx(t), list, rcA); err != nil {
					t.Errorf("DEL #%d: %v", i+1, err)
				}
			}
			if err := e.rt.Del(ctx(t), list, rcB); err != nil {
				t.Errorf("DEL b: %v", err)
			}
			if files := addrFiles(t, e.dataDir, "pods"); len(files) != 0 {
				t.Errorf("allocation files after DEL: %v", files)
			}
			assertOnlyLinks(t, e.node, "lo", "sbcni0")
			assertOnlyLinks(t, podA, "lo")
		})
	}
}

func assertOnlyLinks(t *testing.T, n *cnitest.NetNS, want ...string) {
	t.Helper()
	links, err := n.Links()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(links, want) {
		t.Errorf("links in %s: %v, want %v", n.Name, links, want)
	}
}

// "the bridge plugin should delegate the DEL action to the IPAM plugin and
// clean up its own resources even if the container network namespace
// and/or container network interface no longer exist"
func TestDelWithoutNetns(t *testing.T) {
	e := newEnv(t)
	list := e.ourConf(t, "1.1.0", "pods", "")
	pod, closePod, err := cnitest.NewNetNS("gone")
	t.Cleanup(func() { _ = closePod() })
	if err != nil {
		t.Fatal(err)
	}
	rc := cnitest.Attachment("ctr-gone", pod.Path, "eth0")
	if _, err := e.rt.Add(ctx(t), list, rc); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := closePod(); err != nil {
		t.Fatal(err)
	}
	for _, netns := range []string{pod.Path, ""} { // gone, then not given at all
		rc.NetNS = netns
		if err := e.rt.Del(ctx(t), list, rc); err != nil {
			t.Errorf("DEL with CNI_NETNS=%q: %v", netns, err)
		}
	}
	if files := addrFiles(t, e.dataDir, "pods"); len(files) != 0 {
		t.Errorf("allocation files after DEL: %v", files)
	}
	assertOnlyLinks(t, e.node, "lo", "sbcni0")
}

// cniResult is the error object a plugin prints.
type cniResult struct {
	Code uint   `json:"code"`
	Msg  string `json:"msg"`
}

// execPlugin runs the plugin binary directly (not through libcni) in the
// node namespace, to control the environment variables.
func execPlugin(t *testing.T, e *env, env map[string]string, stdin string) (cniResult, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.rt.BinDir, "switchboard"))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out []byte
	_ = e.node.Do(func() error {
		out, _ = cmd.Output()
		return nil
	})
	var r cniResult
	_ = json.Unmarshal(out, &r)
	return r, string(out)
}

// The spec's error codes, each provoked for real.
func TestErrorCodes(t *testing.T) {
	e := newEnv(t)
	pod := newNS(t, "pod")
	conf := func(extra, ipam string) string {
		if ipam == "" {
			ipam = `"ranges": [[{"subnet": "10.77.0.0/24"}]]`
		}
		return fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "errs", "type": "switchboard", "bridge": "sberr0" %s,
		  "ipam": {"type": "switchboard-ipam", "dataDir": %q, %s}}`, extra, e.dataDir, ipam)
	}
	full := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "ctr1", "CNI_NETNS": pod.Path, "CNI_IFNAME": "eth0", "CNI_PATH": e.rt.BinDir}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range full {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name  string
		env   map[string]string
		stdin string
		code  uint
	}{
		{"1: Incompatible CNI version", full, strings.Replace(conf("", ""), `"1.1.0"`, `"9.0.0"`, 1), types.ErrIncompatibleCNIVersion},
		{"2: Unsupported field in network configuration (vlan)", full, conf(`, "vlan": 100`, ""), types.ErrUnsupportedField},
		{"2: Unsupported field in network configuration (ipMasqBackend iptables)", full, conf(`, "ipMasq": true, "ipMasqBackend": "iptables"`, ""), types.ErrUnsupportedField},
		{"3: Container unknown or does not exist (CNI_NETNS missing)", with("CNI_NETNS", "/run/netns/sbt-no-such-ns"), conf("", ""), types.ErrUnknownContainer},
		{"4: Invalid necessary environment variables (CNI_CONTAINERID missing)", with("CNI_CONTAINERID", ""), conf("", ""), types.ErrInvalidEnvironmentVariables},
		{"4: Invalid necessary environment variables (CNI_IFNAME invalid)", with("CNI_IFNAME", "eth0/x"), conf("", ""), types.ErrInvalidEnvironmentVariables},
		{"4: Invalid necessary environment variables (CNI_COMMAND unknown)", with("CNI_COMMAND", "FROB"), conf("", ""), types.ErrInvalidEnvironmentVariables},
		{"6: Failed to decode content", full, `{"cniVersion": "1.1.0", "name": `, types.ErrDecodingFailure},
		{"7: Invalid network config (subnet with host bits)", full, conf("", `"ranges": [[{"subnet": "10.77.0.1/24"}]]`), types.ErrInvalidNetworkConfig},
		{"7: Invalid network config (rangeStart outside subnet)", full, conf("", `"ranges": [[{"subnet": "10.77.0.0/24", "rangeStart": "10.78.0.1"}]]`), types.ErrInvalidNetworkConfig},
		{"7: Invalid network config (mtu)", full, conf(`, "mtu": 10`, ""), types.ErrInvalidNetworkConfig},
		{"7: CHECK without prevResult", with("CNI_COMMAND", "CHECK"), conf("", ""), types.ErrInvalidNetworkConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, out := execPlugin(t, e, c.env, c.stdin)
			if r.Code != c.code {
				t.Errorf("code %d, want %d; output %s", r.Code, c.code, out)
			}
			if files := addrFiles(t, e.dataDir, "errs"); len(files) != 0 {
				t.Errorf("a failed ADD left allocations %v", files)
			}
		})
	}

	t.Run("101: CNI_IFNAME already exists in the container", func(t *testing.T) {
		// "If an interface of the requested name already exists in the
		// container, the CNI plugin MUST return with an error."
		r, out := execPlugin(t, e, full, conf("", ""))
		if r.Code != 0 {
			t.Fatalf("first ADD: %s", out)
		}
		t.Cleanup(func() { execPlugin(t, e, with("CNI_COMMAND", "DEL"), conf("", "")) })
		r, out = execPlugin(t, e, with("CNI_CONTAINERID", "ctr2"), conf("", ""))
		if r.Code != plugin.ErrInterfaceExists {
			t.Errorf("second ADD of eth0: %s, want code %d", out, plugin.ErrInterfaceExists)
		}
		if files := addrFiles(t, e.dataDir, "errs"); len(files) != 1 {
			t.Errorf("allocations %v, want only the first ADD's", files)
		}
	})
}

// A /30 holds one address besides the gateway: the second ADD fails with
// 100 and leaks nothing, and STATUS says 50 ("The plugin is not available
// (i.e. cannot service ADD requests)"); "Likewise, if a plugin has a
// limited number of resources (e.g. IP addresses ...), it should return an
// error if those resources are exhausted".
func TestRangeFullAndStatus(t *testing.T) {
	e := newEnv(t)
	list := confList(t, fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "tiny", "plugins": [{"type": "switchboard", "bridge": "sbtiny0",
	  "ipam": {"dataDir": %q, "ranges": [[{"subnet": "10.66.0.0/30"}]]}}]}`, e.dataDir))
	if err := e.rt.Status(ctx(t), list); err != nil {
		t.Fatalf("STATUS with free addresses: %v", err)
	}
	p1, p2 := newNS(t, "p1"), newNS(t, "p2")
	rc1, rc2 := cnitest.Attachment("c1", p1.Path, "eth0"), cnitest.Attachment("c2", p2.Path, "eth0")
	t.Cleanup(func() { _ = e.rt.Del(context.Background(), list, rc1); _ = e.rt.Del(context.Background(), list, rc2) })
	if _, err := e.rt.Add(ctx(t), list, rc1); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Status(ctx(t), list); cniCode(err) != types.ErrPluginNotAvailable {
		t.Errorf("STATUS with the range full: %v, want code 50", err)
	}
	if _, err := e.rt.Add(ctx(t), list, rc2); cniCode(err) != plugin.ErrRangeFull {
		t.Errorf("ADD with the range full: %v, want code %d", err, plugin.ErrRangeFull)
	}
	if err := e.rt.Del(ctx(t), list, rc2); err != nil { // "A delete must still be executed even if the add fails."
		t.Errorf("DEL after failed ADD: %v", err)
	}
	assertOnlyLinks(t, p2, "lo")
	if files := addrFiles(t, e.dataDir, "tiny"); len(files) != 1 {
		t.Errorf("allocations %v, want one", files)
	}
	// 51: "The plugin is not available, and existing containers in the
	// network may have limited connectivity."
	if err := e.node.Do(func() error {
		l, err := netlink.LinkByName("sbtiny0")
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Status(ctx(t), list); cniCode(err) != types.ErrLimitedConnectivity {
		t.Errorf("STATUS with the bridge gone: %v, want code 51", err)
	}
}

// An ADD that fails after the address was allocated and the veth made
// (a route via an unreachable gateway) leaves neither behind.
func TestFailedAddLeaksNothing(t *testing.T) {
	e := newEnv(t)
	list := confList(t, fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "fail", "plugins": [{"type": "switchboard", "bridge": "sbfail0",
	  "ipam": {"dataDir": %q, "ranges": [[{"subnet": "10.55.0.0/24"}]], "routes": [{"dst": "10.99.0.0/16", "gw": "192.0.2.1"}]}}]}`, e.dataDir))
	pod := newNS(t, "pod")
	rc := cnitest.Attachment("c1", pod.Path, "eth0")
	t.Cleanup(func() { _ = e.rt.Del(context.Background(), list, rc) })
	if _, err := e.rt.Add(ctx(t), list, rc); err == nil {
		t.Fatal("ADD with an unreachable route gateway succeeded")
	}
	if files := addrFiles(t, e.dataDir, "fail"); len(files) != 0 {
		t.Errorf("failed ADD leaked allocations %v", files)
	}
	assertOnlyLinks(t, pod, "lo")
	assertOnlyLinks(t, e.node, "lo", "sbfail0")
}

// 200 ADD/DEL cycles leave no address, link or file behind.
func TestNoLeakAfter200Cycles(t *testing.T) {
	e := newEnv(t)
	list := e.ourConf(t, "1.1.0", "cycle", "")
	pod := newNS(t, "pod")
	seen := map[string]bool{}
	for i := range 200 {
		rc := cnitest.Attachment(fmt.Sprintf("cycle-%d", i), pod.Path, "eth0")
		res, err := e.rt.Add(ctx(t), list, rc)
		if err != nil {
			_ = e.rt.Del(ctx(t), list, rc)
			t.Fatalf("ADD #%d: %v", i, err)
		}
		seen[asCurrent(t, res).IPs[0].Address.IP.String()] = true
		if err := e.rt.Del(ctx(t), list, rc); err != nil {
			t.Fatalf("DEL #%d: %v", i, err)
		}
	}
	if files := addrFiles(t, e.dataDir, "cycle"); len(files) != 0 {
		t.Errorf("allocations after 200 cycles: %v", files)
	}
	attach, _ := os.ReadDir(filepath.Join(e.dataDir, "cycle", "attach"))
	if len(attach) != 0 {
		t.Errorf("attachment records after 200 cycles: %d", len(attach))
	}
	assertOnlyLinks(t, pod, "lo")
	assertOnlyLinks(t, e.node, "lo", "sbcni0")
	// host-local's round robin: a released address is not reused at once,
	// so 200 cycles over 253 addresses never repeat one.
	if len(seen) != 200 {
		t.Errorf("%d distinct addresses over 200 cycles, want 200 (round robin)", len(seen))
	}
}

// "The GC command provides a way for runtimes to specify the expected set
// of attachments to a network. The network plugin may then remove any
// resources related to attachments that do not exist in this set." The
// GC comes from a runtime with an empty result cache, so libcni issues no
// DEL itself: only the plugin's GC can free the stale attachments.
func TestGC(t *testing.T) {
	e := newEnv(t)
	list := e.ourConf(t, "1.1.0", "gc", "")
	var rcs []*libcni.RuntimeConf
	for i := range 3 {
		pod := newNS(t, fmt.Sprintf("gc%d", i))
		rc := cnitest.Attachment(fmt.Sprintf("gc-%d", i), pod.Path, "eth0")
		rcs = append(rcs, rc)
		t.Cleanup(func() { _ = e.rt.Del(context.Background(), list, rc) })
		if _, err := e.rt.Add(ctx(t), list, rc); err != nil {
			t.Fatal(err)
		}
	}
	other := cnitest.NewRuntime(e.node, e.rt.BinDir, t.TempDir())
	valid := []types.GCAttachment{{ContainerID: "gc-0", IfName: "eth0"}}
	if err := other.GC(ctx(t), list, valid); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if files := addrFiles(t, e.dataDir, "gc"); len(files) != 1 {
		t.Errorf("allocations after GC: %v, want gc-0's only", files)
	}
	assertOnlyLinks(t, e.node, "lo", "sbcni0", plugin.HostVethName("gc-0", "eth0"))
	if err := e.rt.Check(ctx(t), list, rcs[0]); err != nil {
		t.Errorf("CHECK of the valid attachment after GC: %v", err)
	}
	if err := e.rt.Check(ctx(t), list, rcs[1]); err == nil {
		t.Errorf("CHECK of a collected attachment passed")
	}
}

// Chaining: our result is the prevResult of the reference portmap, whose
// DNAT then reaches a server in the pod; the reference loopback brings the
// pod's lo up as a network of its own.
func TestChainPortmapAndLoopback(t *testing.T) {
	e := newEnv(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("the reference portmap plugin needs iptables (apt-get install iptables)")
	}
	// Debian's reference plugins speak up to 1.0.0.
	list := confList(t, fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "chain", "plugins": [
	  {"type": "switchboard", "bridge": "sbchain0",
	   "ipam": {"dataDir": %q, "ranges": [[{"subnet": "10.44.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
	  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]}`, e.dataDir))
	lo, err := libcni.NetworkPluginConfFromBytes([]byte(`{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}`))
	if err != nil {
		t.Fatal(err)
	}
	pod := newNS(t, "pod")
	if err := pod.Do(func() error { // lo down, as in a fresh container
		l, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	}); err != nil {
		t.Fatal(err)
	}
	rcLo := cnitest.Attachment("chain-1", pod.Path, "lo")
	rc := cnitest.Attachment("chain-1", pod.Path, "eth0")
	rc.CapabilityArgs = map[string]any{"portMappings": []map[string]any{{"hostPort": 30080, "containerPort": 8080, "protocol": "tcp"}}}
	t.Cleanup(func() {
		_ = e.rt.Del(context.Background(), list, rc)
		_ = e.rt.DelNetwork(context.Background(), lo, rcLo)
	})
	if _, err := e.rt.AddNetwork(ctx(t), lo, rcLo); err != nil {
		t.Fatalf("loopback ADD: %v", err)
	}
	raw, err := e.rt.Add(ctx(t), list, rc)
	if err != nil {
		t.Fatalf("ADD switchboard+portmap: %v", err)
	}
	res := asCurrent(t, raw)
	if len(res.Interfaces) != 3 || len(res.IPs) != 1 {
		t.Fatalf("portmap did not pass our result through: %+v", res)
	}
	l, _ := linkAttrs(t, pod, "lo")
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("loopback plugin left lo down")
	}
	podIP := res.IPs[0].Address.IP.String()
	serveOnce(t, pod, podIP+":8080", "through portmap")
	// From the node to its own bridge address and the host port: the
	// OUTPUT DNAT of portmap sends it to the pod.
	if got, err := dialRead(e.node, "10.44.0.1:30080"); err != nil || got != "through portmap" {
		t.Errorf("node -> hostPort 30080: %q, %v", got, err)
	}
	// No CHECK of the chain: Debian's portmap 1.1.1 fails its own CHECK in
	// a namespace without IPv6 NAT chains ("could not check ipv6 dnat").
	if err := e.rt.Del(ctx(t), list, rc); err != nil {
		t.Fatalf("DEL chain: %v", err)
	}
	out, err := e.node.Exec(ctx(t), "iptables-save", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "30080") {
		t.Errorf("portmap rules left after DEL:\n%s", out)
	}
	if files := addrFiles(t, e.dataDir, "chain"); len(files) != 0 {
		t.Errorf("allocations after DEL: %v", files)
	}
}

// The reference bridge plugin delegates its IPAM to switchboard-ipam ("The
// IPAM plugin must determine the interface IP/subnet, Gateway and Routes
// and return this information to the main plugin to apply").
func TestReferenceBridgeWithOurIPAM(t *testing.T) {
	e := newEnv(t)
	list := confList(t, fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "refbr", "plugins": [
	  {"type": "bridge", "bridge": "sbref0", "isGateway": true,
	   "ipam": {"type": "switchboard-ipam", "dataDir": %q, "ranges": [[{"subnet": "10.33.0.0/24", "rangeStart": "10.33.0.100"}]],
	            "routes": [{"dst": "0.0.0.0/0"}]}}]}`, e.dataDir))
	pod := newNS(t, "pod")
	rc := cnitest.Attachment("ref-1", pod.Path, "eth0")
	t.Cleanup(func() { _ = e.rt.Del(context.Background(), list, rc) })
	raw, err := e.rt.Add(ctx(t), list, rc)
	if err != nil {
		t.Fatalf("ADD reference bridge + switchboard-ipam: %v", err)
	}
	res := asCurrent(t, raw)
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.33.0.100/24" {
		t.Fatalf("ips %v, want 10.33.0.100/24 (rangeStart)", res.IPs)
	}
	b, err := os.ReadFile(filepath.Join(e.dataDir, "refbr", "10.33.0.100"))
	if err != nil || string(b) != "ref-1\r\neth0" {
		t.Errorf("allocation file: %q, %v (want host-local's format)", b, err)
	}
	_, addrs := linkAttrs(t, pod, "eth0")
	if !hasAddr(addrs, "10.33.0.100/24") {
		t.Errorf("pod addresses %v", addrs)
	}
	if err := e.rt.Check(ctx(t), list, rc); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	for range 2 {
		if err := e.rt.Del(ctx(t), list, rc); err != nil {
			t.Errorf("DEL: %v", err)
		}
	}
	if files := addrFiles(t, e.dataDir, "refbr"); len(files) != 0 {
		t.Errorf("allocations after DEL: %v", files)
	}
}

// ipMasq puts a masquerade rule for the pod into nftables of the node
// namespace (where the plugin runs), and DEL removes it.
func TestIPMasq(t *testing.T) {
	e := newEnv(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("ipMasq uses nft(8) (apt-get install nftables)")
	}
	list := e.ourConf(t, "1.1.0", "masq", `"ipMasq": true`)
	pod := newNS(t, "pod")
	rc := cnitest.Attachment("masq-1", pod.Path, "eth0")
	t.Cleanup(func() { _ = e.rt.Del(context.Background(), list, rc) })
	res, err := e.rt.Add(ctx(t), list, rc)
	if err != nil {
		t.Fatal(err)
	}
	ip := asCurrent(t, res).IPs[0].Address.IP.String()
	out, err := e.node.Exec(ctx(t), "nft", "list", "table", "inet", "cni_plugins_masquerade")
	if err != nil || !strings.Contains(out, "ip saddr "+ip+" ip daddr != 10.88.0.0/24 masquerade") {
		t.Errorf("masquerade rule for %s missing: %v\n%s", ip, err, out)
	}
	if err := e.rt.Del(ctx(t), list, rc); err != nil {
		t.Fatal(err)
	}
	out, _ = e.node.Exec(ctx(t), "nft", "list", "table", "inet", "cni_plugins_masquerade")
	if strings.Contains(out, ip) {
		t.Errorf("masquerade rule left after DEL:\n%s", out)
	}
	// Nothing reached the root namespace.
	var rootOut []byte
	rootOut, _ = exec.Command("nft", "list", "table", "inet", "cni_plugins_masquerade").CombinedOutput()
	if strings.Contains(string(rootOut), ip) {
		t.Errorf("masquerade rule in the root namespace")
	}
}
