package standalone

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// TestQuickstartAsRoot runs the README's first command as root, with no
// --network flag: "As root, `up` uses the netns sandbox by default". From
// a quickstart pod (entered with `switchboard exec`), the pod's
// resolv.conf is kubelet's, `getent hosts web` resolves through cluster
// DNS and `curl http://web/` reaches a web pod through the nftables
// service proxy; after Ctrl-C no namespace, mount, link, rule or process
// remains.
func TestQuickstartAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the netns sandbox (up's default as root) needs root")
	}
	before := rootNetState(t)
	n := newNetNSNode(t, "qs")
	hostIP := fmt.Sprintf("127.55.%d.%d", rand.IntN(250), 1+rand.IntN(250))
	n.Launch([]string{"up", "-f", "../examples/quickstart", "--state-dir", n.StateDir, "--node-name", n.Name,
		"--ingress-http-addr", hostIP + ":0", "--ingress-https-addr", hostIP + ":0", "--dns-publish-addr", hostIP + ":0"})
	n.waitPodsReady("default", 6, 60*time.Second)
	n.WaitFor(30*time.Second, "three web endpoints ready", func() bool { r, _ := n.ReadyEndpoints("default", "web"); return r == 3 })

	out := n.Stdout.String()
	for _, want := range []string{
		"running as root: the netns sandbox",
		"node " + n.Name + " (netns sandbox in network namespace " + sandbox.NetnsDir + "/" + sandbox.NodeNamespaceName(n.Name),
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("stdout lacks %q:\n%s", want, out)
		}
	}
	web, dnsSvc := n.Service("default", "web"), n.Service("kube-system", "kube-dns")
	exe := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		full := append([]string{"--state-dir", n.StateDir, "exec", "echo", "-c", "tcp", "--"}, args...)
		b, err := exec.CommandContext(ctx, binary, full...).CombinedOutput()
		return string(b), err
	}

	// kubelet: "nameserver = cluster DNS service IP, search
	// <ns>.svc.<zone> svc.<zone> <zone>, options ndots:5".
	got, err := exe("cat", "/etc/resolv.conf")
	want := fmt.Sprintf("search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5\n", dnsSvc.Spec.ClusterIP)
	if err != nil || got != want {
		t.Errorf("resolv.conf: %v\n%q\nwant\n%q", err, got, want)
	}
	got, err = exe("getent", "hosts", "web")
	if f := strings.Fields(got); err != nil || len(f) < 2 || f[0] != web.Spec.ClusterIP || f[1] != "web.default.svc.cluster.local" {
		t.Errorf("getent hosts web: %v: %q, want %s web.default.svc.cluster.local", err, got, web.Spec.ClusterIP)
	}
	var reached string
	for i := 0; i < 10 && reached == ""; i++ {
		got, err = exe("curl", "-sS", "-m", "5", "http://web/")
		for _, p := range n.Pods("default", "") {
			if strings.HasPrefix(p.Name, "web-") && strings.Contains(got, `"pod": "`+p.Name+`"`) {
				reached = p.Name
			}
		}
	}
	if reached == "" {
		t.Errorf("curl http://web/ from pod echo reached no web pod: %v: %s", err, got)
	}
	// The quickstart's Ingress over TLS from the host, as the README's
	// curl line does it (here on the test's own loopback address).
	if m := regexp.MustCompile(`ingress on http://\S+ and https://(\S+) `).FindStringSubmatch(out); m == nil {
		t.Errorf("stdout names no ingress address:\n%s", out)
	} else {
		_, port, _ := net.SplitHostPort(m[1])
		b, err := exec.Command("curl", "-sS", "-k", "-m", "5", "--resolve", "shop.example.test:"+port+":"+hostIP,
			"https://shop.example.test:"+port+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(b), `"pod": "web-`) {
			t.Errorf("curl https://shop.example.test:%s/ through the ingress: %v: %s", port, err, b)
		}
	}

	if err := n.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	checkNothingRemains(t, n.Name, before)
}
