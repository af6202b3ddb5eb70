package standalone

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

// progress prints timestamped lines while the node starts and runs.
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "[%6.2fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// podView is what progress reports of a pod.
type podView struct {
	ip       string
	ready    bool
	restarts int32
	phase    corev1.PodPhase
	waiting  string
}

func viewOf(p *corev1.Pod) podView {
	v := podView{ip: p.Status.PodIP, phase: p.Status.Phase}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			v.ready = true
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		v.restarts += cs.RestartCount
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "ContainerCreating" && cs.State.Waiting.Reason != "PodInitializing" {
			v.waiting = cs.State.Waiting.Reason
		}
	}
	return v
}

// followPods prints pod transitions (address assigned, ready, not ready,
// restarted, waiting) until ctx ends. The returned channel closes once
// every pod is Ready (or finished), or when timeout passes.
func (p *progress) followPods(ctx context.Context, s *cluster.Store, timeout time.Duration) <-chan struct{} {
	done := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(done) }) }
	var mu sync.Mutex
	seen := map[string]podView{}
	check := func() {
		pods := cluster.List[*corev1.Pod](s, "", nil)
		for _, pod := range pods {
			v := viewOf(pod)
			if !v.ready && v.phase != corev1.PodSucceeded && v.phase != corev1.PodFailed {
				return
			}
		}
		if len(pods) > 0 {
			finish()
		}
	}
	h := handlerFuncs{
		update: func(obj any) {
			pod := obj.(*corev1.Pod)
			key := cluster.KeyOf(pod)
			v := viewOf(pod)
			mu.Lock()
			old, had := seen[key]
			seen[key] = v
			mu.Unlock()
			if !had && v.ip == "" {
				p.printf("pod %s created", key)
			}
			if v.ip != "" && old.ip != v.ip {
				p.printf("pod %s started at %s", key, v.ip)
			}
			if v.ready && !old.ready {
				p.printf("pod %s ready", key)
			}
			if !v.ready && old.ready {
				p.printf("pod %s not ready", key)
			}
			if v.restarts > old.restarts {
				p.printf("pod %s restarted (%d restarts)", key, v.restarts)
			}
			if v.waiting != "" && v.waiting != old.waiting {
				p.printf("pod %s waiting: %s", key, v.waiting)
			}
			if v.phase != old.phase && (v.phase == corev1.PodSucceeded || v.phase == corev1.PodFailed) {
				p.printf("pod %s %s", key, strings.ToLower(string(v.phase)))
			}
			check()
		},
		remove: func(obj any) {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			mu.Lock()
			delete(seen, cluster.KeyOf(pod))
			mu.Unlock()
			p.printf("pod %s deleted", cluster.KeyOf(pod))
			check()
		},
	}
	sub := s.Subscribe(cluster.KindPod, h, 0)
	go func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-done:
		case <-t.C:
			p.printf("not every pod is ready after %s; the summary shows where they stand", timeout)
			finish()
		}
		<-ctx.Done()
		sub.Stop()
	}()
	return done
}

type handlerFuncs struct {
	update func(obj any)
	remove func(obj any)
}

func (h handlerFuncs) OnAdd(obj any, _ bool) { h.update(obj) }
func (h handlerFuncs) OnUpdate(_, obj any)   { h.update(obj) }
func (h handlerFuncs) OnDelete(obj any)      { h.remove(obj) }

// printSummary prints the pods with their addresses and readiness and the
// services with their cluster IPs and ready endpoints.
func printSummary(out io.Writer, s *cluster.Store, took time.Duration) {
	pods := cluster.List[*corev1.Pod](s, "", nil)
	ready := 0
	for _, p := range pods {
		if viewOf(p).ready {
			ready++
		}
	}
	fmt.Fprintf(out, "\n%d/%d pods ready after %.1fs\n\n", ready, len(pods), took.Seconds())
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPOD\tIP\tREADY\tSTATUS\tRESTARTS")
	for _, p := range pods {
		v := viewOf(p)
		status := string(v.phase)
		if v.waiting != "" {
			status = v.waiting
		}
		if p.DeletionTimestamp != nil {
			status = "Terminating"
		}
		total, readyC := len(p.Spec.Containers), 0
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				readyC++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%d\n", p.Namespace, p.Name, orNone(v.ip), readyC, total, status, v.restarts)
	}
	tw.Flush()
	fmt.Fprintln(out)

	slices := cluster.List[*discoveryv1.EndpointSlice](s, "", nil)
	tw = tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tSERVICE\tTYPE\tCLUSTER-IP\tPORTS\tREADY ENDPOINTS")
	for _, svc := range cluster.List[*corev1.Service](s, "", nil) {
		var ports []string
		for _, sp := range svc.Spec.Ports {
			x := fmt.Sprintf("%d/%s", sp.Port, sp.Protocol)
			if sp.NodePort != 0 {
				x = fmt.Sprintf("%d:%d/%s", sp.Port, sp.NodePort, sp.Protocol)
			}
			ports = append(ports, x)
		}
		ip := svc.Spec.ClusterIP
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			ip = svc.Spec.ExternalName
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", svc.Namespace, svc.Name, svc.Spec.Type, orNone(ip), orNone(strings.Join(ports, ",")), readyEndpoints(slices, svc))
	}
	tw.Flush()
	fmt.Fprintln(out, "\nswitchboard get pods -o wide | describe pod NAME | logs POD   (in another terminal); Ctrl-C stops everything")
}

func readyEndpoints(slices []*discoveryv1.EndpointSlice, svc *corev1.Service) string {
	var addrs []string
	for _, sl := range slices {
		if sl.Namespace != svc.Namespace || sl.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				addrs = append(addrs, ep.Addresses...)
			}
		}
	}
	sort.Strings(addrs)
	if len(addrs) == 0 {
		return "<none>"
	}
	if len(addrs) > 4 {
		return fmt.Sprintf("%s + %d more", strings.Join(addrs[:4], ","), len(addrs)-4)
	}
	return strings.Join(addrs, ",")
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
