package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cluster"
)

type getFlags struct {
	namespace     string
	allNamespaces bool
	output        string
	selector      string
	fieldSelector string
	showLabels    bool
	noHeaders     bool
	watch         bool
	watchOnly     bool
}

func newGetCommand(opts *Options, out, errOut io.Writer) *cobra.Command {
	f := &getFlags{}
	cmd := &cobra.Command{
		Use:   "get TYPE[,TYPE...] [NAME...] | TYPE/NAME...",
		Short: "Display one or many objects, as kubectl get",
		Long: `Display one or many objects of the node (or of --kubeconfig's cluster) in
kubectl's table columns, or as YAML, JSON or kind/name.

Types: ` + kindNames() + `, and "all" (pods, services, deployments, replicasets).`,
		Example: `  switchboard get pods -o wide
  switchboard get all -A
  switchboard get svc web -o yaml
  switchboard get pods -l app=web -w`,
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's, else default)")
	fl.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list objects across all namespaces")
	fl.StringVarP(&f.output, "output", "o", "", "output format: wide, yaml, json or name")
	fl.StringVarP(&f.selector, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	fl.StringVar(&f.fieldSelector, "field-selector", "", "field selector, e.g. metadata.name=web")
	fl.BoolVar(&f.showLabels, "show-labels", false, "show each object's labels as the last column")
	fl.BoolVar(&f.noHeaders, "no-headers", false, "print no header row")
	fl.BoolVarP(&f.watch, "watch", "w", false, "after listing, watch for changes")
	fl.BoolVar(&f.watchOnly, "watch-only", false, "watch for changes without listing first")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		cmd.SilenceErrors = true
		return withErrors(errOut, func(ctx context.Context, args []string) error {
			return runGet(ctx, opts, f, args, out, errOut, time.Now)
		})(cmd.Context(), args)
	}
	return cmd
}

func runGet(ctx context.Context, opts *Options, f *getFlags, args []string, out, errOut io.Writer, now func() time.Time) error {
	format, err := parseOutput(f.output)
	if err != nil {
		return err
	}
	reqs, single, err := parseResourceArgs(args)
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
	if f.allNamespaces {
		for _, r := range reqs {
			if len(r.names) > 0 {
				return errors.New("a resource cannot be retrieved by name across all namespaces")
			}
		}
		ns = ""
	}
	p := printOpts{
		wide:          format == outWide,
		showLabels:    f.showLabels,
		noHeaders:     f.noHeaders,
		withNamespace: f.allNamespaces,
		withKind:      len(reqs) > 1,
	}
	if f.watch || f.watchOnly {
		if len(reqs) != 1 {
			return errors.New("you may only specify a single resource type with --watch")
		}
		return watchGet(ctx, c, reqs[0], ns, f, p, format, out, now)
	}

	var errs []error
	var items []item
	groups := make([][]cluster.Object, len(reqs))
	for i, r := range reqs {
		objs, fetchErrs := fetch(ctx, c, r, ns, f.selector, f.fieldSelector)
		if len(fetchErrs) > 0 {
			if len(r.names) == 0 {
				return fetchErrs[0]
			}
			errs = append(errs, fetchErrs...)
		}
		groups[i] = objs
		for _, o := range objs {
			items = append(items, item{kind: r.kind, obj: o})
		}
	}

	switch format {
	case outYAML, outJSON:
		if len(items) > 0 || !single {
			if err := printObjects(out, items, single, format); err != nil {
				return err
			}
		}
	case outName:
		printNames(out, items)
	default:
		p.now = now()
		printed := 0
		for i, r := range reqs {
			if len(groups[i]) == 0 {
				continue
			}
			if printed > 0 {
				fmt.Fprintln(out)
			}
			if err := printTable(out, r.kind, groups[i], p); err != nil {
				return err
			}
			printed++
		}
		if printed == 0 && len(errs) == 0 {
			kinds := make([]*cluster.Kind, len(reqs))
			for i, r := range reqs {
				kinds[i] = r.kind
			}
			fmt.Fprintln(errOut, noResourcesMessage(ns, f.allNamespaces, kinds))
		}
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

// fetch lists a request's kind, or gets each named object (collecting
// one error per missing name).
func fetch(ctx context.Context, c *client, r request, ns, selector, fieldSelector string) ([]cluster.Object, []error) {
	if len(r.names) == 0 {
		objs, _, err := c.list(ctx, r.kind, ns, metav1.ListOptions{LabelSelector: selector, FieldSelector: fieldSelector})
		if err != nil {
			return nil, []error{err}
		}
		return objs, nil
	}
	var objs []cluster.Object
	var errs []error
	for _, name := range r.names {
		o, err := c.get(ctx, r.kind, ns, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, o)
	}
	return objs, errs
}

// watchGet is get -w: the current list (unless --watch-only), then one
// row per change, until interrupted.
func watchGet(ctx context.Context, c *client, r request, ns string, f *getFlags, p printOpts, format outputFormat, out io.Writer, now func() time.Time) error {
	fieldSelector := f.fieldSelector
	if len(r.names) > 1 {
		return errors.New("watch is only supported on individual resources and resource collections, but 2 or more resources were found")
	}
	if len(r.names) == 1 {
		fs := "metadata.name=" + r.names[0]
		if fieldSelector != "" {
			fs = fieldSelector + "," + fs
		}
		fieldSelector = fs
	}
	objs, rv, err := c.list(ctx, r.kind, ns, metav1.ListOptions{LabelSelector: f.selector, FieldSelector: fieldSelector})
	if err != nil {
		return err
	}
	if len(r.names) == 1 {
		objs = filterName(objs, r.names[0])
		if len(objs) == 0 && !f.watchOnly {
			return apierrors.NewNotFound(r.kind.GVK.GroupVersion().WithResource(r.kind.Resource).GroupResource(), r.names[0])
		}
	}
	tw := newStreamTable(out)
	var first [][]string // header and current objects, aligned together
	emit := func(o cluster.Object) error {
		it := item{kind: r.kind, obj: o}
		switch format {
		case outYAML, outJSON:
			if format == outYAML {
				fmt.Fprintln(out, "---")
			}
			return printObjects(out, []item{it}, true, format)
		case outName:
			printNames(out, []item{it})
			return nil
		}
		p.now = now()
		if first != nil {
			first = append(first, rowCells(r.kind, o, p))
			return nil
		}
		tw.block([][]string{rowCells(r.kind, o, p)})
		return nil
	}
	table := format == outTable || format == outWide
	if table {
		first = [][]string{}
		if !p.noHeaders {
			first = append(first, headerCells(r.kind, p))
		}
	}
	if !f.watchOnly {
		for _, o := range objs {
			if err := emit(o); err != nil {
				return err
			}
		}
	}
	if table {
		tw.block(first)
		first = nil
	}
	for {
		w, err := c.resource(r.kind, ns).Watch(ctx, metav1.ListOptions{
			LabelSelector: f.selector, FieldSelector: fieldSelector, ResourceVersion: rv, AllowWatchBookmarks: true,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Bookmark:
				if m, err := metaOf(ev.Object); err == nil {
					rv = m.GetResourceVersion()
				}
				continue
			case watch.Error:
				w.Stop()
				if ctx.Err() != nil {
					return nil
				}
				return apierrors.FromObject(ev.Object)
			}
			u, err := unstructuredOf(ev.Object)
			if err != nil {
				continue
			}
			rv = u.GetResourceVersion()
			if len(r.names) == 1 && u.GetName() != r.names[0] {
				continue
			}
			o, err := toTyped(r.kind, u)
			if err != nil {
				w.Stop()
				return err
			}
			if err := emit(o); err != nil {
				w.Stop()
				return err
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return nil
		}
		// The server ended the watch (timeout): go on from the last
		// version seen.
	}
}

func filterName(objs []cluster.Object, name string) []cluster.Object {
	var out []cluster.Object
	for _, o := range objs {
		if o.GetName() == name {
			out = append(out, o)
		}
	}
	return out
}

func headerCells(k *cluster.Kind, p printOpts) []string {
	h := columns(k, p.wide)
	if p.withNamespace && k.Namespaced {
		h = append([]string{"NAMESPACE"}, h...)
	}
	if p.showLabels {
		h = append(h, "LABELS")
	}
	return h
}

func rowCells(k *cluster.Kind, o cluster.Object, p printOpts) []string {
	var b strings.Builder
	writeRow(&b, k, o, p)
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\t")
}

// streamTable prints rows as they come. The first block (header and
// current objects) is aligned as a whole, and later rows keep its column
// widths, growing them only when a cell is wider (kubectl's tabwriter
// with RememberWidths).
type streamTable struct {
	out    io.Writer
	widths []int
}

func newStreamTable(out io.Writer) *streamTable { return &streamTable{out: out} }

func (t *streamTable) block(rows [][]string) {
	for _, cells := range rows {
		for i, c := range cells {
			if i == len(cells)-1 {
				break // the last cell is not padded
			}
			if i >= len(t.widths) {
				t.widths = append(t.widths, 6)
			}
			t.widths[i] = max(t.widths[i], len(c)+3)
		}
	}
	var b strings.Builder
	for _, cells := range rows {
		for i, c := range cells {
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", t.widths[i]-len(c)))
			}
		}
		b.WriteByte('\n')
	}
	io.WriteString(t.out, b.String())
}
