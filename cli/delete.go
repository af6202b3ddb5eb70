package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/manifests"
)

type deleteFlags struct {
	namespace      string
	allNamespaces  bool
	filenames      []string
	recursive      bool
	selector       string
	all            bool
	gracePeriod    int
	force          bool
	wait           bool
	timeout        time.Duration
	ignoreNotFound bool
	output         string
}

func newDeleteCommand(opts *Options, out, errOut io.Writer) *cobra.Command {
	f := &deleteFlags{}
	cmd := &cobra.Command{
		Use:   "delete -f FILENAME | TYPE NAME... | TYPE/NAME... | TYPE -l SELECTOR | TYPE --all",
		Short: "Delete objects by file, name or label selector, as kubectl delete",
		Long: `Delete objects named in manifests, by name, by label selector or all of a
kind. Pods stop gracefully (SIGTERM, then SIGKILL after their
terminationGracePeriodSeconds, or --grace-period); --force removes them at
once. By default the command waits until the objects are gone.`,
		Example: `  switchboard delete -f extra.yaml
  switchboard delete pod web-7d4b9c-x2x9z
  switchboard delete deployment/web
  switchboard delete pods -l app=web --grace-period=1`,
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's, else default)")
	fl.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "with -l or --all: across all namespaces")
	fl.StringSliceVarP(&f.filenames, "filename", "f", nil, "files or directories of manifests whose objects to delete, or - for standard input")
	fl.BoolVarP(&f.recursive, "recursive", "R", false, "read directories recursively")
	fl.StringVarP(&f.selector, "selector", "l", "", "delete the objects matching this label selector")
	fl.BoolVar(&f.all, "all", false, "delete every object of the kinds in the namespace")
	fl.IntVar(&f.gracePeriod, "grace-period", -1, "seconds a pod has to stop; -1 uses the pod's terminationGracePeriodSeconds, 0 only with --force")
	fl.BoolVar(&f.force, "force", false, "remove pods at once, without waiting for their containers to stop (grace period 0)")
	fl.BoolVar(&f.wait, "wait", true, "wait until the objects are gone before returning")
	fl.DurationVar(&f.timeout, "timeout", 0, "how long to wait for the deletion; 0 waits as long as it takes")
	fl.BoolVar(&f.ignoreNotFound, "ignore-not-found", false, "treat objects that do not exist as deleted")
	fl.StringVarP(&f.output, "output", "o", "", "output format: name prints kind/name only")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		cmd.SilenceErrors = true
		return withErrors(errOut, func(ctx context.Context, args []string) error {
			return runDelete(ctx, opts, f, args, cmd.InOrStdin(), out, errOut)
		})(cmd.Context(), args)
	}
	return cmd
}

// target is one object to delete.
type target struct {
	kind      *cluster.Kind
	namespace string
	name      string
	source    string // the document it came from, for -f
}

func runDelete(ctx context.Context, opts *Options, f *deleteFlags, args []string, stdin io.Reader, out, errOut io.Writer) error {
	if f.output != "" && f.output != "name" {
		return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: name", f.output)
	}
	hasFiles := len(f.filenames) > 0
	switch {
	case hasFiles && len(args) > 0:
		return errors.New("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'switchboard delete -f FILE' names its objects itself)")
	case !hasFiles && len(args) == 0:
		return errors.New("you must provide one or more resources by argument or filename")
	}
	// kubectl: --grace-period=0 without --force becomes 1, so that an
	// accidental 0 does not skip the graceful stop; --force without a
	// grace period means 0.
	grace := int64(f.gracePeriod)
	if grace == 0 && !f.force {
		grace = 1
	}
	if f.force && grace < 0 {
		grace = 0
	}
	if f.force {
		fmt.Fprintln(errOut, "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.")
	}

	var docs []manifests.Document
	failed := false
	if hasFiles {
		var err error
		if docs, failed, err = loadDocuments(f.filenames, f.recursive, stdin, errOut); err != nil {
			return err
		}
	}
	c, err := newClient(opts)
	if err != nil {
		return err
	}
	ns := c.namespace
	if f.namespace != "" {
		ns = f.namespace
	}

	var targets []target
	if hasFiles {
		objs, bad := prepareDocs(docs, f.namespace, c.namespace, errOut)
		failed = failed || bad
		for _, p := range objs {
			targets = append(targets, target{kind: p.kind, namespace: p.obj.GetNamespace(), name: p.obj.GetName(), source: docName(p.doc)})
		}
	} else {
		reqs, _, err := parseResourceArgs(args)
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if len(r.names) > 0 {
				if f.all || f.selector != "" {
					return errors.New("name cannot be provided when a selector or --all is specified")
				}
				for _, n := range r.names {
					targets = append(targets, target{kind: r.kind, namespace: ns, name: n})
				}
				continue
			}
			if !f.all && f.selector == "" {
				return errors.New("resource(s) were provided, but no name was specified")
			}
			listNS := ns
			if f.allNamespaces {
				listNS = ""
			}
			objs, _, err := c.list(ctx, r.kind, listNS, metav1.ListOptions{LabelSelector: f.selector})
			if err != nil {
				return err
			}
			for _, o := range objs {
				targets = append(targets, target{kind: r.kind, namespace: o.GetNamespace(), name: o.GetName()})
			}
		}
		if len(targets) == 0 {
			fmt.Fprintln(errOut, "No resources found")
			return nil
		}
	}

	type deleted struct {
		target
		uid types.UID
	}
	var gone []deleted
	for _, t := range targets {
		uid, err := deleteOne(ctx, c, t, grace)
		if err != nil {
			if apierrors.IsNotFound(err) && f.ignoreNotFound {
				continue
			}
			var nn *NoNodeError
			if errors.As(err, &nn) {
				return err
			}
			printError(errOut, err)
			failed = true
			continue
		}
		if f.output == "name" {
			fmt.Fprintf(out, "%s/%s\n", kindLabel(t.kind), t.name)
		} else {
			fmt.Fprintf(out, "%s %q deleted\n", kindLabel(t.kind), t.name)
		}
		gone = append(gone, deleted{target: t, uid: uid})
	}
	if f.wait {
		wctx := ctx
		if f.timeout > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, f.timeout)
			defer cancel()
		}
		for _, d := range gone {
			if err := waitGone(wctx, c, d.target, d.uid); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				printError(errOut, err)
				failed = true
			}
		}
	}
	if failed {
		return errSomeFailed
	}
	return nil
}

// deleteOne deletes an object (pods' dependants in the background, as
// kubectl) and returns its uid, so that waiting recognises a new object
// of the same name.
func deleteOne(ctx context.Context, c *client, t target, grace int64) (types.UID, error) {
	r := c.resource(t.kind, t.namespace)
	cur, err := r.Get(ctx, t.name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	policy := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: ptrUID(cur.GetUID())},
	}
	if grace >= 0 {
		opts.GracePeriodSeconds = &grace
	}
	if cur.GetUID() == "" {
		opts.Preconditions = nil
	}
	if err := r.Delete(ctx, t.name, opts); err != nil {
		return "", err
	}
	return cur.GetUID(), nil
}

func ptrUID(u types.UID) *types.UID { return &u }

// waitGone waits until the object with this uid no longer exists: it
// watches the name from the object's resource version and re-reads the
// object whenever the watch ends (falling back to polling a server that
// cannot watch).
func waitGone(ctx context.Context, c *client, t target, uid types.UID) error {
	r := c.resource(t.kind, t.namespace)
	timedOut := func() error {
		return fmt.Errorf("timed out waiting for the condition on %s/%s", t.kind.Resource, t.name)
	}
	for {
		cur, err := r.Get(ctx, t.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return timedOut()
			}
			return err
		case uid != "" && cur.GetUID() != uid:
			return nil
		}
		w, err := r.Watch(ctx, metav1.ListOptions{
			FieldSelector:   "metadata.name=" + t.name,
			ResourceVersion: cur.GetResourceVersion(),
		})
		if err != nil {
			select {
			case <-ctx.Done():
				return timedOut()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		done := false
		for ev := range w.ResultChan() {
			if ev.Type != watch.Deleted {
				continue
			}
			if m, err := metaOf(ev.Object); err == nil && m.GetName() == t.name && (uid == "" || m.GetUID() == uid) {
				done = true
				break
			}
		}
		w.Stop()
		if done {
			return nil
		}
		if ctx.Err() != nil {
			return timedOut()
		}
	}
}
