package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/manifests"
)

type applyFlags struct {
	namespace string
	filenames []string
	recursive bool
}

func newApplyCommand(opts *Options, out, errOut io.Writer) *cobra.Command {
	f := &applyFlags{}
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME|DIR|- [-R]",
		Short: "Create or update objects from manifests, as kubectl apply",
		Long: `Create the objects of the manifests that do not exist yet and update those
that do (the manifest replaces the object's spec, labels and annotations;
its status stays the node's). Prints "service/web created",
"deployment.apps/web configured" or "pod/x unchanged" per object, and an
error naming the file and document for each one that fails; the others are
still applied. Namespaces are applied first.`,
		Example: `  switchboard apply -f extra.yaml
  switchboard apply -f manifests/ -R
  cat pod.yaml | switchboard apply -f -`,
		Args: cobra.NoArgs,
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace for objects that name none (default: the kubeconfig context's, else default)")
	fl.StringSliceVarP(&f.filenames, "filename", "f", nil, "files or directories of manifests (.yaml, .yml, .json), or - for standard input")
	fl.BoolVarP(&f.recursive, "recursive", "R", false, "read directories recursively")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		cmd.SilenceErrors = true
		return withErrors(errOut, func(ctx context.Context, args []string) error {
			return runApply(ctx, opts, f, cmd.InOrStdin(), out, errOut)
		})(cmd.Context(), args)
	}
	return cmd
}

// loadDocuments reads -f arguments with the manifests package ("-"
// reads standard input, named STDIN in messages as kubectl does). Paths
// that cannot be read are reported on errOut (failed is then true); the
// documents of the others are returned.
func loadDocuments(filenames []string, recursive bool, stdin io.Reader, errOut io.Writer) (docs []manifests.Document, failed bool, err error) {
	if len(filenames) == 0 {
		return nil, false, errors.New("must specify one of -f and -k")
	}
	var paths []string
	readStdin := false
	for _, p := range filenames {
		if p == "-" {
			readStdin = true
			continue
		}
		paths = append(paths, p)
	}
	if readStdin {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, false, fmt.Errorf("reading standard input: %w", err)
		}
		docs = append(docs, manifests.Decode("STDIN", b)...)
	}
	if len(paths) > 0 {
		more, rerr := manifests.ReadPaths(paths, recursive)
		for _, e := range manifests.ErrorsOf(rerr) {
			fmt.Fprintf(errOut, "error: %v\n", e)
			failed = true
		}
		docs = append(docs, more...)
	}
	return docs, failed, nil
}

// docPosition is " (document N, line L)" (with " item I" inside a List),
// or "" for a file's first document when it starts on line 1.
func docPosition(d manifests.Document) string {
	if d.Index <= 1 && d.Item == 0 && d.Line <= 1 {
		return ""
	}
	pos := fmt.Sprintf("document %d", d.Index)
	if d.Item > 0 {
		pos += fmt.Sprintf(" item %d", d.Item)
	}
	if d.Line > 0 {
		pos += fmt.Sprintf(", line %d", d.Line)
	}
	return " (" + pos + ")"
}

// docName names a document in messages: "extra.yaml" or
// "extra.yaml (document 2, line 14)".
func docName(d manifests.Document) string { return d.File + docPosition(d) }

// kindOrder is an object's place in cluster.Kinds (namespaces first).
func kindOrder(k *cluster.Kind) int {
	for i, x := range cluster.Kinds {
		if x == k {
			return i
		}
	}
	return len(cluster.Kinds)
}

// prepared is a document's object ready for the API.
type prepared struct {
	doc  manifests.Document
	kind *cluster.Kind
	obj  cluster.Object
}

// prepareDocs reports every document that failed to read and resolves
// the others' kinds and namespaces (the flag's, else the default), in
// apply order.
func prepareDocs(docs []manifests.Document, flagNS, defaultNS string, errOut io.Writer) ([]prepared, bool) {
	failed := false
	var out []prepared
	for _, d := range docs {
		if d.Err != nil {
			for _, e := range manifests.ErrorsOf(d.Err) {
				fmt.Fprintf(errOut, "error: %v\n", e)
			}
			failed = true
			continue
		}
		if d.Object == nil {
			// A kind a node does not hold, as kubectl says of a kind the
			// server does not serve.
			fmt.Fprintf(errOut, "error: resource mapping not found for %s: no matches for kind %q in version %q\n",
				docName(d), d.Kind, d.APIVersion)
			failed = true
			continue
		}
		k := cluster.KindOf(d.Object)
		if k == nil {
			fmt.Fprintf(errOut, "error: %s: no kind %T is served by a switchboard node\n", docName(d), d.Object)
			failed = true
			continue
		}
		obj := d.Object.DeepCopyObject().(cluster.Object)
		if k.Namespaced {
			switch ns := obj.GetNamespace(); {
			case ns == "" && flagNS != "":
				obj.SetNamespace(flagNS)
			case ns == "":
				obj.SetNamespace(defaultNS)
			case flagNS != "" && ns != flagNS:
				fmt.Fprintf(errOut, "error: %s: the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.\n",
					docName(d), ns, flagNS, ns)
				failed = true
				continue
			}
		} else {
			obj.SetNamespace("")
		}
		out = append(out, prepared{doc: d, kind: k, obj: obj})
	}
	sort.SliceStable(out, func(i, j int) bool { return kindOrder(out[i].kind) < kindOrder(out[j].kind) })
	return out, failed
}

func runApply(ctx context.Context, opts *Options, f *applyFlags, stdin io.Reader, out, errOut io.Writer) error {
	docs, failed, err := loadDocuments(f.filenames, f.recursive, stdin, errOut)
	if err != nil {
		return err
	}
	c, err := newClient(opts)
	if err != nil {
		return err
	}
	objs, bad := prepareDocs(docs, f.namespace, c.namespace, errOut)
	failed = failed || bad
	if len(objs) == 0 && !failed {
		return errors.New("no objects passed to apply")
	}
	for _, p := range objs {
		result, err := applyOne(ctx, c, p)
		if err != nil {
			var nn *NoNodeError
			if errors.As(err, &nn) {
				return err
			}
			fmt.Fprintln(errOut, applyErrorMessage(err, result, p))
			failed = true
			continue
		}
		fmt.Fprintf(out, "%s/%s %s\n", kindLabel(p.kind), p.obj.GetName(), result)
	}
	if failed {
		return errSomeFailed
	}
	return nil
}

// applyErrorMessage is kubectl's, with the document's position added:
// `Error from server (Invalid): error when creating "extra.yaml"
// (document 2, line 7): Service "web" is invalid: ...`.
func applyErrorMessage(err error, op string, p prepared) string {
	verb := "applying"
	switch op {
	case "created":
		verb = "creating"
	case "configured":
		verb = "updating"
	case "retrieving":
		verb = "retrieving current configuration of"
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		reason := ""
		if s.Reason != "" {
			reason = " (" + string(s.Reason) + ")"
		}
		return fmt.Sprintf("Error from server%s: error when %s %q%s: %s", reason, verb, p.doc.File, docPosition(p.doc), statusMessage(s))
	}
	return fmt.Sprintf("error: error when %s %q%s: %s", verb, p.doc.File, docPosition(p.doc), errorMessage(err))
}

// applyOne creates the object or replaces it, returning kubectl's word
// for what happened ("created", "configured", "unchanged"); on error the
// word names the step that failed.
func applyOne(ctx context.Context, c *client, p prepared) (string, error) {
	r := c.resource(p.kind, p.obj.GetNamespace())
	if p.obj.GetName() == "" && p.obj.GetGenerateName() != "" {
		u, err := toUnstructured(p.kind, p.obj)
		if err != nil {
			return "created", err
		}
		created, err := r.Create(ctx, u, metav1.CreateOptions{FieldManager: "switchboard-cli"})
		if err != nil {
			return "created", err
		}
		p.obj.SetName(created.GetName())
		return "created", nil
	}
	cur, err := c.get(ctx, p.kind, p.obj.GetNamespace(), p.obj.GetName())
	if apierrors.IsNotFound(err) {
		u, err := toUnstructured(p.kind, p.obj)
		if err != nil {
			return "created", err
		}
		_, err = r.Create(ctx, u, metav1.CreateOptions{FieldManager: "switchboard-cli"})
		return "created", err
	}
	if err != nil {
		return "retrieving", err
	}
	obj := p.obj.DeepCopyObject().(cluster.Object)
	obj.SetResourceVersion(cur.GetResourceVersion())
	keepAllocated(obj, cur)
	u, err := toUnstructured(p.kind, obj)
	if err != nil {
		return "configured", err
	}
	updated, err := r.Update(ctx, u, metav1.UpdateOptions{FieldManager: "switchboard-cli"})
	if err != nil {
		return "configured", err
	}
	if updated.GetResourceVersion() == cur.GetResourceVersion() {
		return "unchanged", nil
	}
	return "configured", nil
}

// keepAllocated carries over what the cluster assigned and a manifest
// usually leaves out, so that replacing the object keeps it (kubectl
// apply's patch never touches such fields): a pod's node (the scheduler's
// binding, which a pod update may not change), and a Service's cluster
// IPs, node ports and health check node port (the API server's service
// strategy does the same on update).
func keepAllocated(obj, cur cluster.Object) {
	if pod, ok := obj.(*corev1.Pod); ok {
		if old, ok := cur.(*corev1.Pod); ok && pod.Spec.NodeName == "" {
			pod.Spec.NodeName = old.Spec.NodeName
		}
		return
	}
	svc, ok := obj.(*corev1.Service)
	old, ok2 := cur.(*corev1.Service)
	if !ok || !ok2 {
		return
	}
	if svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		svc.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
	}
	if svc.Spec.HealthCheckNodePort == 0 {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			for _, op := range old.Spec.Ports {
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				if op.Port == p.Port && op.Protocol == proto {
					p.NodePort = op.NodePort
				}
			}
		}
	}
}
