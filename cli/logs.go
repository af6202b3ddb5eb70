package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cluster"
)

type logsFlags struct {
	namespace  string
	container  string
	follow     bool
	previous   bool
	tail       int64
	timestamps bool
	since      time.Duration
}

// defaultContainerAnnotation names the container kubectl picks when -c
// is not given.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

func newLogsCommand(opts *Options, out, errOut io.Writer) *cobra.Command {
	f := &logsFlags{}
	cmd := &cobra.Command{
		Use:   "logs POD | TYPE/NAME [-c CONTAINER]",
		Short: "Print the logs of a container in a pod, as kubectl logs",
		Long: `Print the logs of a container of a pod. TYPE/NAME may name a pod, or a
deployment or replica set, whose first pod is used. Without -c a pod with
several containers shows the container named by the
kubectl.kubernetes.io/default-container annotation, else its first one.`,
		Example: `  switchboard logs web-7d4b9c-x2x9z
  switchboard logs deployment/web -f
  switchboard logs web-7d4b9c-x2x9z -c sidecar --previous --tail 20`,
		Args: cobra.RangeArgs(1, 2),
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's, else default)")
	fl.StringVarP(&f.container, "container", "c", "", "container name")
	fl.BoolVarP(&f.follow, "follow", "f", false, "stream the logs as they are written")
	fl.BoolVarP(&f.previous, "previous", "p", false, "the previous instance of the container (before its last restart)")
	fl.Int64Var(&f.tail, "tail", -1, "lines of recent log to show; -1 shows all")
	fl.BoolVar(&f.timestamps, "timestamps", false, "prefix each line with its RFC3339 timestamp")
	fl.DurationVar(&f.since, "since", 0, "only logs newer than a relative duration like 5s, 2m or 3h")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		cmd.SilenceErrors = true
		return withErrors(errOut, func(ctx context.Context, args []string) error {
			return runLogs(ctx, opts, f, args, out, errOut)
		})(cmd.Context(), args)
	}
	return cmd
}

func runLogs(ctx context.Context, opts *Options, f *logsFlags, args []string, out, errOut io.Writer) error {
	container := f.container
	if len(args) == 2 {
		// kubectl logs POD CONTAINER (the old form).
		if container != "" {
			return errors.New("only one of -c or an inline [CONTAINER] arg is allowed")
		}
		container = args[1]
	}
	c, err := newClient(opts)
	if err != nil {
		return err
	}
	ns := c.namespace
	if f.namespace != "" {
		ns = f.namespace
	}
	pod, err := podForLogs(ctx, c, ns, args[0], errOut)
	if err != nil {
		return err
	}
	if container == "" {
		container = defaultContainer(pod, errOut)
	}
	lo := &corev1.PodLogOptions{
		Container:  container,
		Follow:     f.follow,
		Previous:   f.previous,
		Timestamps: f.timestamps,
	}
	if f.tail >= 0 {
		tail := f.tail
		lo.TailLines = &tail
	}
	if f.since > 0 {
		s := int64(f.since.Round(time.Second) / time.Second)
		if s == 0 {
			s = 1
		}
		lo.SinceSeconds = &s
	}
	stream, err := c.typed.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, lo).Stream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer stream.Close()
	if _, err := io.Copy(out, stream); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// podForLogs resolves POD, pod/NAME, or a workload's first pod (kubectl
// picks one of the workload's pods and says which).
func podForLogs(ctx context.Context, c *client, ns, arg string, errOut io.Writer) (*corev1.Pod, error) {
	typ, name, hasType := strings.Cut(arg, "/")
	if !hasType {
		typ, name = "pod", arg
	}
	kinds, err := lookupKinds(typ)
	if err != nil {
		return nil, err
	}
	k := kinds[0]
	o, err := c.get(ctx, k, ns, name)
	if err != nil {
		return nil, err
	}
	var sel *metav1.LabelSelector
	switch obj := o.(type) {
	case *corev1.Pod:
		return obj, nil
	case *appsv1.Deployment:
		sel = obj.Spec.Selector
	case *appsv1.ReplicaSet:
		sel = obj.Spec.Selector
	case *corev1.Service:
		if len(obj.Spec.Selector) == 0 {
			return nil, fmt.Errorf("cannot attach to %s: the service has no selector", kindLabel(k)+"/"+name)
		}
		sel = &metav1.LabelSelector{MatchLabels: obj.Spec.Selector}
	default:
		return nil, fmt.Errorf("cannot get the logs of a %s", k.GVK.Kind)
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	objs, _, err := c.list(ctx, cluster.KindPod, ns, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no pods found for %s/%s", kindLabel(k), name)
	}
	pods := make([]*corev1.Pod, len(objs))
	for i, o := range objs {
		pods[i] = o.(*corev1.Pod)
	}
	// Prefer, as kubectl's ActivePods ordering does, pods that run and
	// are ready, then the older ones.
	rank := func(p *corev1.Pod) int {
		switch {
		case p.DeletionTimestamp != nil:
			return 3
		case p.Status.Phase == corev1.PodRunning && podConditionTrue(p, corev1.PodReady):
			return 0
		case p.Status.Phase == corev1.PodRunning:
			return 1
		}
		return 2
	}
	sort.SliceStable(pods, func(i, j int) bool {
		if ri, rj := rank(pods[i]), rank(pods[j]); ri != rj {
			return ri < rj
		}
		return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp)
	})
	if len(pods) > 1 {
		fmt.Fprintf(errOut, "Found %d pods, using pod/%s\n", len(pods), pods[0].Name)
	}
	return pods[0], nil
}

// defaultContainer is kubectl's choice when -c is not given
// (podcmd.FindOrDefaultContainerByName): the container the
// default-container annotation names, else the first container, saying so
// on stderr when the pod has others.
func defaultContainer(pod *corev1.Pod, errOut io.Writer) string {
	if a := pod.Annotations[defaultContainerAnnotation]; a != "" {
		for _, c := range append(append([]corev1.Container(nil), pod.Spec.Containers...), pod.Spec.InitContainers...) {
			if c.Name == a {
				return a
			}
		}
	}
	if len(pod.Spec.Containers) == 0 {
		return ""
	}
	name := pod.Spec.Containers[0].Name
	if len(pod.Spec.Containers) > 1 || len(pod.Spec.InitContainers) > 0 || len(pod.Spec.EphemeralContainers) > 0 {
		var all []string
		for _, c := range pod.Spec.Containers {
			all = append(all, c.Name)
		}
		for _, c := range pod.Spec.EphemeralContainers {
			all = append(all, c.Name+" (ephem)")
		}
		for _, c := range pod.Spec.InitContainers {
			all = append(all, c.Name+" (init)")
		}
		fmt.Fprintf(errOut, "Defaulted container %q out of: %s\n", name, strings.Join(all, ", "))
	}
	return name
}
