package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cluster"
)

type describeFlags struct {
	namespace     string
	allNamespaces bool
	selector      string
	showEvents    bool
}

func newDescribeCommand(opts *Options, out, errOut io.Writer) *cobra.Command {
	f := &describeFlags{}
	cmd := &cobra.Command{
		Use:   "describe TYPE [NAME_PREFIX...] | TYPE/NAME...",
		Short: "Show details of objects and their recent events, as kubectl describe",
		Long: `Show the details of one or many objects: for pods their status, conditions,
containers with state, last state (why the last restart happened), probes and
restart counts, and the recent events; for services their endpoints; for
deployments their replica sets and rollout conditions.

A NAME that matches no object exactly describes every object whose name
starts with it, as kubectl does.`,
		Example: `  switchboard describe pod web-7d4b9c-x2x9z
  switchboard describe deployment/web
  switchboard describe svc -l app=web`,
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's, else default)")
	fl.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "describe objects across all namespaces")
	fl.StringVarP(&f.selector, "selector", "l", "", "label selector, e.g. app=web")
	fl.BoolVar(&f.showEvents, "show-events", true, "show the objects' events")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		cmd.SilenceErrors = true
		return withErrors(errOut, func(ctx context.Context, args []string) error {
			return runDescribe(ctx, opts, f, args, out, errOut, time.Now)
		})(cmd.Context(), args)
	}
	return cmd
}

func runDescribe(ctx context.Context, opts *Options, f *describeFlags, args []string, out, errOut io.Writer, now func() time.Time) error {
	reqs, _, err := parseResourceArgs(args)
	if err != nil {
		return err
	}
	c, err := newClient(opts)
	if err != nil {
		return err
	}
	ns := c.namespace
	if f.namespace != "" {
		ns = f.namespace
	}
	listNS := ns
	if f.allNamespaces {
		listNS = ""
	}
	var items []item
	var errs []error
	for _, r := range reqs {
		if len(r.names) == 0 {
			objs, _, err := c.list(ctx, r.kind, listNS, metav1.ListOptions{LabelSelector: f.selector})
			if err != nil {
				return err
			}
			for _, o := range objs {
				items = append(items, item{kind: r.kind, obj: o})
			}
			continue
		}
		for _, name := range r.names {
			o, err := c.get(ctx, r.kind, ns, name)
			if err == nil {
				items = append(items, item{kind: r.kind, obj: o})
				continue
			}
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
				continue
			}
			// kubectl describe falls back to a name prefix.
			objs, _, lerr := c.list(ctx, r.kind, ns, metav1.ListOptions{LabelSelector: f.selector})
			found := false
			if lerr == nil {
				for _, o := range objs {
					if strings.HasPrefix(o.GetName(), name) {
						items = append(items, item{kind: r.kind, obj: o})
						found = true
					}
				}
			}
			if !found {
				errs = append(errs, err)
			}
		}
	}
	if len(items) == 0 && len(errs) == 0 {
		kinds := make([]*cluster.Kind, len(reqs))
		for i, r := range reqs {
			kinds[i] = r.kind
		}
		fmt.Fprintln(errOut, noResourcesMessage(ns, f.allNamespaces, kinds))
		return nil
	}
	for i, it := range items {
		s, err := describeItem(ctx, c, it, f.showEvents, now())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i > 0 {
			io.WriteString(out, "\n\n")
		}
		io.WriteString(out, s)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	for _, e := range errs {
		printError(errOut, e)
	}
	if len(errs) > 0 {
		return errSomeFailed
	}
	return nil
}

// describeItem renders one object with what kubectl shows beside it.
func describeItem(ctx context.Context, c *client, it item, showEvents bool, now time.Time) (string, error) {
	w := newDescribeWriter(now)
	var events []corev1.Event
	if showEvents {
		events = searchEvents(ctx, c, it)
	}
	switch o := it.obj.(type) {
	case *corev1.Pod:
		describePod(o, events, w)
	case *corev1.Service:
		slices, _, _ := c.list(ctx, cluster.KindEndpointSlice, o.Namespace, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + o.Name,
		})
		var items []discoveryv1.EndpointSlice
		for _, s := range slices {
			if eps := s.(*discoveryv1.EndpointSlice); eps.Labels[discoveryv1.LabelServiceName] == o.Name {
				items = append(items, *eps)
			}
		}
		describeService(o, items, events, w)
	case *appsv1.Deployment:
		oldRSs, newRS := deploymentReplicaSets(ctx, c, o)
		describeDeployment(o, oldRSs, newRS, events, w)
	case *appsv1.ReplicaSet:
		running, waiting, succeeded, failed := 0, 0, 0, 0
		if sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector); err == nil {
			pods, _, _ := c.list(ctx, cluster.KindPod, o.Namespace, metav1.ListOptions{LabelSelector: sel.String()})
			for _, p := range pods {
				pod := p.(*corev1.Pod)
				if ref := metav1.GetControllerOf(pod); ref == nil || ref.UID != o.UID {
					continue
				}
				switch pod.Status.Phase {
				case corev1.PodRunning:
					running++
				case corev1.PodPending:
					waiting++
				case corev1.PodSucceeded:
					succeeded++
				case corev1.PodFailed:
					failed++
				}
			}
		}
		describeReplicaSet(o, running, waiting, succeeded, failed, events, w)
	case *discoveryv1.EndpointSlice:
		describeEndpointSlice(o, events, w)
	case *corev1.Node:
		pods, _, _ := c.list(ctx, cluster.KindPod, "", metav1.ListOptions{})
		var onNode []*corev1.Pod
		for _, p := range pods {
			pod := p.(*corev1.Pod)
			if pod.Spec.NodeName == o.Name && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
				onNode = append(onNode, pod)
			}
		}
		describeNode(o, onNode, events, w)
	case *corev1.Namespace:
		describeNamespace(o, events, w)
	case *corev1.ConfigMap:
		describeConfigMap(o, events, w)
	case *corev1.Secret:
		describeSecret(o, w)
	default:
		describeGeneric(it, events, w)
	}
	return w.String(), nil
}

// searchEvents lists the events about an object: those whose
// involvedObject.uid is the object's (for a node also its name, as the
// kubelet reports node events under the node's name), asked of the server
// with a field selector and checked here again.
func searchEvents(ctx context.Context, c *client, it item) []corev1.Event {
	uid := string(it.obj.GetUID())
	ns := it.obj.GetNamespace()
	match := func(e *corev1.Event) bool {
		ref := e.InvolvedObject
		if uid != "" && string(ref.UID) == uid {
			return true
		}
		if it.kind == cluster.KindNode && string(ref.UID) == it.obj.GetName() {
			return true
		}
		// Events written without a uid still name the object.
		return ref.UID == "" && ref.Name == it.obj.GetName() && ref.Namespace == ns &&
			(ref.Kind == "" || ref.Kind == it.kind.GVK.Kind)
	}
	opts := metav1.ListOptions{}
	if uid != "" && it.kind != cluster.KindNode {
		opts.FieldSelector = "involvedObject.uid=" + uid
	}
	objs, _, err := c.list(ctx, cluster.KindEvent, ns, opts)
	if err != nil && opts.FieldSelector != "" {
		objs, _, err = c.list(ctx, cluster.KindEvent, ns, metav1.ListOptions{})
	}
	if err != nil {
		return nil
	}
	var out []corev1.Event
	for _, o := range objs {
		if e := o.(*corev1.Event); match(e) {
			out = append(out, *e)
		}
	}
	return out
}

// deploymentReplicaSets finds a deployment's replica sets as kubectl's
// deploymentutil does: those it controls; the new one is the oldest whose
// pod template equals the deployment's, ignoring the pod-template-hash
// label; the rest are old.
func deploymentReplicaSets(ctx context.Context, c *client, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, *appsv1.ReplicaSet) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, nil
	}
	objs, _, err := c.list(ctx, cluster.KindReplicaSet, d.Namespace, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil
	}
	var owned []*appsv1.ReplicaSet
	for _, o := range objs {
		rs := o.(*appsv1.ReplicaSet)
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.UID == d.UID && sel.Matches(labels.Set(rs.Labels)) {
			owned = append(owned, rs)
		}
	}
	sort.SliceStable(owned, func(i, j int) bool {
		if owned[i].CreationTimestamp.Equal(&owned[j].CreationTimestamp) {
			return owned[i].Name < owned[j].Name
		}
		return owned[i].CreationTimestamp.Before(&owned[j].CreationTimestamp)
	})
	var newRS *appsv1.ReplicaSet
	for _, rs := range owned {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			break
		}
	}
	var old []*appsv1.ReplicaSet
	for _, rs := range owned {
		if rs != newRS {
			old = append(old, rs)
		}
	}
	return old, newRS
}

func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}
