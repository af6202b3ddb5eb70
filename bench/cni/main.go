// Command cni is the CNI plugin benchmark (issue 6). Through libcni, as a
// runtime would, with every plugin run inside one throwaway node network
// namespace, it measures side by side:
//
//   - ADD and DEL latency (p50, p99) over -pods pods (200; each pod its own
//     namespace) for the switchboard plugin (bridge + in-process IPAM) and
//     for the reference bridge + host-local pair from Debian's
//     containernetworking-plugins (/usr/lib/cni), configured alike
//     (isGateway, hairpinMode, one /16); the two ADDs (and DELs) of a pod
//     alternate which goes first;
//   - the wall time to wire -wire pods (100) with 4 ADDs in flight.
//
// It prints a table: the work, our figure, the reference's figure and the
// ratio (ours / reference; below 1 is faster). Goals (issue 6): faster
// than the reference pair, 100 pods wired in under 2 s.
//
// Everything it creates (namespaces named like internal/testnet's, the
// bin and data dirs) is removed when it ends, also on failure; nothing
// touches the machine's own network namespace. It needs root; without it,
// it says so and exits 0.
//
//	go run ./bench/cni [-quick] [-pods 200] [-wire 100] [-parallel 4]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/switchboard-dev/switchboard/cni/cnitest"
)

// Options are the benchmark's sizes.
type Options struct {
	Pods     int // pods for the latency figures
	Wire     int // pods wired concurrently
	Parallel int // ADDs in flight while wiring
}

func main() {
	quick := flag.Bool("quick", false, "small sizes (20 pods), for CI")
	pods := flag.Int("pods", 200, "pods for ADD/DEL latency")
	wire := flag.Int("wire", 100, "pods to wire concurrently")
	parallel := flag.Int("parallel", 4, "ADDs in flight while wiring")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Println("bench/cni: needs root (creates network namespaces, bridges and veths); skipped")
		return
	}
	opts := Options{Pods: *pods, Wire: *wire, Parallel: *parallel}
	if *quick {
		opts.Pods, opts.Wire = 20, 20
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/cni:", err)
		os.Exit(1)
	}
}

// pluginSet is one side of the comparison.
type pluginSet struct {
	name   string
	list   *libcni.NetworkConfigList
	ifname string
	add    []time.Duration
	del    []time.Duration
	wire   time.Duration
}

// Run runs the benchmark and writes the table to w.
func Run(ctx context.Context, o Options, w io.Writer) (err error) {
	var cleanups []func() error
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			if cerr := cleanups[i](); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	tmp, err := os.MkdirTemp("", "sbcni-bench-")
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() error { return os.RemoveAll(tmp) })
	bin := tmp + "/bin"
	if err := os.Mkdir(bin, 0o755); err != nil {
		return err
	}
	if err := cnitest.BuildBinDir(ctx, bin); err != nil {
		return err
	}
	node, closeNode, err := cnitest.NewNetNS("bench-node")
	cleanups = append(cleanups, closeNode)
	if err != nil {
		return err
	}
	n := max(o.Pods, o.Wire)
	pods := make([]*cnitest.NetNS, n)
	for i := range pods {
		p, closeP, err := cnitest.NewNetNS(fmt.Sprintf("bench-p%d", i))
		cleanups = append(cleanups, closeP)
		if err != nil {
			return err
		}
		pods[i] = p
	}
	rt := cnitest.NewRuntime(node, bin, tmp+"/cache")
	ours, err := libcni.NetworkConfFromBytes(fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": "sbbench", "plugins": [
	  {"type": "switchboard", "bridge": "sbbench0", "isGateway": true, "hairpinMode": true,
	   "ipam": {"type": "switchboard-ipam", "dataDir": %q, "ranges": [[{"subnet": "10.90.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}`, tmp+"/ours"))
	if err != nil {
		return err
	}
	ref, err := libcni.NetworkConfFromBytes(fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": "refbench", "plugins": [
	  {"type": "bridge", "bridge": "sbbenchr0", "isGateway": true, "hairpinMode": true,
	   "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "10.91.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}`, tmp+"/ref"))
	if err != nil {
		return err
	}
	sets := []*pluginSet{{name: "switchboard", list: ours, ifname: "eth0"}, {name: "bridge+host-local", list: ref, ifname: "eth1"}}
	rc := func(s *pluginSet, round string, i int) *libcni.RuntimeConf {
		return cnitest.Attachment(fmt.Sprintf("%s-%s-%d", s.name[:3], round, i), pods[i].Path, s.ifname)
	}
	// Whatever happens, DEL what was added and not yet deleted.
	var mu sync.Mutex
	live := map[*libcni.RuntimeConf]*pluginSet{}
	add := func(s *pluginSet, r *libcni.RuntimeConf) error {
		mu.Lock()
		live[r] = s
		mu.Unlock()
		_, err := rt.Add(ctx, s.list, r)
		return err
	}
	del := func(s *pluginSet, r *libcni.RuntimeConf) error {
		err := rt.Del(ctx, s.list, r)
		if err == nil {
			mu.Lock()
			delete(live, r)
			mu.Unlock()
		}
		return err
	}
	cleanups = append(cleanups, func() error {
		for r, s := range live {
			_ = rt.Del(context.Background(), s.list, r)
		}
		return nil
	})

	// Warm-up (bridges created, binaries in the page cache), not counted.
	for _, s := range sets {
		r := rc(s, "warm", 0)
		if err := add(s, r); err != nil {
			return fmt.Errorf("%s warm-up ADD: %w", s.name, err)
		}
		if err := del(s, r); err != nil {
			return fmt.Errorf("%s warm-up DEL: %w", s.name, err)
		}
	}
	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	for i := range o.Pods {
		for k := range sets {
			s := sets[(i+k)%len(sets)] // alternate who goes first
			r := rc(s, "lat", i)
			d, err := timed(func() error { return add(s, r) })
			if err != nil {
				return fmt.Errorf("%s ADD pod %d: %w", s.name, i, err)
			}
			s.add = append(s.add, d)
		}
	}
	lat := map[*pluginSet][]*libcni.RuntimeConf{}
	for r, s := range live {
		lat[s] = append(lat[s], r)
	}
	byPod := func(s *pluginSet, i int) *libcni.RuntimeConf {
		want := rc(s, "lat", i).ContainerID
		for _, r := range lat[s] {
			if r.ContainerID == want {
				return r
			}
		}
		return rc(s, "lat", i)
	}
	for i := range o.Pods {
		for k := range sets {
			s := sets[(i+k)%len(sets)]
			r := byPod(s, i)
			d, err := timed(func() error { return del(s, r) })
			if err != nil {
				return fmt.Errorf("%s DEL pod %d: %w", s.name, i, err)
			}
			s.del = append(s.del, d)
		}
	}
	for _, s := range sets {
		jobs := make(chan int)
		errc := make(chan error, o.Wire)
		var wg sync.WaitGroup
		start := time.Now()
		wired := make([]*libcni.RuntimeConf, o.Wire)
		for i := range wired {
			wired[i] = rc(s, "wire", i)
		}
		for range o.Parallel {
			wg.Go(func() {
				for i := range jobs {
					if err := add(s, wired[i]); err != nil {
						errc <- fmt.Errorf("%s wiring pod %d: %w", s.name, i, err)
					}
				}
			})
		}
		for i := range o.Wire {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		s.wire = time.Since(start)
		close(errc)
		if err := <-errc; err != nil {
			return err
		}
		for i := range o.Wire {
			if err := del(s, wired[i]); err != nil {
				return fmt.Errorf("%s DEL wired pod %d: %w", s.name, i, err)
			}
		}
	}

	a, b := sets[0], sets[1]
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "work\t%s\t%s\tratio\t\n", a.name, b.name)
	row := func(work string, x, y time.Duration) {
		fmt.Fprintf(tw, "%s\t%v\t%v\t%.2f\t\n", work, x.Round(10*time.Microsecond), y.Round(10*time.Microsecond), float64(x)/float64(y))
	}
	row(fmt.Sprintf("ADD p50 (%d pods)", o.Pods), pct(a.add, 50), pct(b.add, 50))
	row(fmt.Sprintf("ADD p99 (%d pods)", o.Pods), pct(a.add, 99), pct(b.add, 99))
	row(fmt.Sprintf("DEL p50 (%d pods)", o.Pods), pct(a.del, 50), pct(b.del, 50))
	row(fmt.Sprintf("DEL p99 (%d pods)", o.Pods), pct(a.del, 99), pct(b.del, 99))
	row(fmt.Sprintf("wire %d pods (%d in flight)", o.Wire, o.Parallel), a.wire, b.wire)
	if err := tw.Flush(); err != nil {
		return err
	}
	goal := "met"
	if a.wire >= 2*time.Second*time.Duration(o.Wire)/100 || pct(a.add, 50) >= pct(b.add, 50) {
		goal = "NOT met"
	}
	fmt.Fprintf(w, "goal (faster than the reference pair; 100 pods in under 2 s): %s\n", goal)
	return nil
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}
