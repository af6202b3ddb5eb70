package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/switchboard-dev/switchboard/cluster"
)

// client is what every command uses: the dynamic client for the generic
// kinds, the typed clientset for logs, and the default namespace.
type client struct {
	dyn       dynamic.Interface
	typed     kubernetes.Interface
	namespace string
}

func newClient(opts *Options) (*client, error) {
	cfg, ns, err := loadConfig(opts)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &client{dyn: dyn, typed: typed, namespace: ns}, nil
}

// resource is the dynamic client of a kind; ns "" on a namespaced kind
// means all namespaces.
func (c *client) resource(k *cluster.Kind, ns string) dynamic.ResourceInterface {
	r := c.dyn.Resource(k.GVK.GroupVersion().WithResource(k.Resource))
	if k.Namespaced && ns != "" {
		return r.Namespace(ns)
	}
	return r
}

func (c *client) get(ctx context.Context, k *cluster.Kind, ns, name string) (cluster.Object, error) {
	u, err := c.resource(k, ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return toTyped(k, u)
}

func (c *client) list(ctx context.Context, k *cluster.Kind, ns string, opts metav1.ListOptions) ([]cluster.Object, string, error) {
	ul, err := c.resource(k, ns).List(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	out := make([]cluster.Object, 0, len(ul.Items))
	for i := range ul.Items {
		o, err := toTyped(k, &ul.Items[i])
		if err != nil {
			return nil, "", err
		}
		out = append(out, o)
	}
	return out, ul.GetResourceVersion(), nil
}

// toTyped converts what the dynamic client returns into the kind's
// k8s.io/api type, with apiVersion and kind set.
func toTyped(k *cluster.Kind, u *unstructured.Unstructured) (cluster.Object, error) {
	o := k.New()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, o); err != nil {
		return nil, fmt.Errorf("decoding %s %q from the server: %w", k.Name(), u.GetName(), err)
	}
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	return o, nil
}

// unstructuredOf is what the dynamic client's watch delivers.
func unstructuredOf(o runtime.Object) (*unstructured.Unstructured, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T from the server", o)
	}
	return u, nil
}

func metaOf(o runtime.Object) (metav1.Object, error) { return meta.Accessor(o) }

// toUnstructured converts a typed object for the dynamic client.
func toUnstructured(k *cluster.Kind, o cluster.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(k.GVK)
	return u, nil
}

// kindLabel is how kubectl names a kind in messages and in -o name:
// "pod", "deployment.apps", "endpointslice.discovery.k8s.io".
func kindLabel(k *cluster.Kind) string {
	s := strings.ToLower(k.GVK.Kind)
	if k.GVK.Group != "" {
		s += "." + k.GVK.Group
	}
	return s
}

// resourceLabel is the plural form used in API errors: "pods",
// "deployments.apps".
func resourceLabel(k *cluster.Kind) string {
	if k.GVK.Group != "" {
		return k.Resource + "." + k.GVK.Group
	}
	return k.Resource
}

// ErrReported marks an error a command has already printed to its error
// writer in kubectl's words; the caller only has to exit with status 1.
// errors.Is(err, ErrReported) tells it apart.
var ErrReported = errors.New("error already reported")

type reportedError struct{ err error }

func (e reportedError) Error() string        { return e.err.Error() }
func (e reportedError) Unwrap() error        { return e.err }
func (e reportedError) Is(target error) bool { return target == ErrReported }

// errSomeFailed is returned when the command printed its errors as it
// went (one per failed object) and only the exit status remains.
var errSomeFailed = errors.New("one or more operations failed")

// errorMessage renders an error the way kubectl's
// cmdutil.StandardErrorMessage does: server Status errors as
// "Error from server (Reason): message", connection problems plainly,
// everything else as "error: message".
func errorMessage(err error) string {
	var nn *NoNodeError
	if errors.As(err, &nn) {
		return "error: " + nn.Error()
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		msg := statusMessage(s)
		switch {
		case s.Reason == metav1.StatusReasonUnauthorized:
			return fmt.Sprintf("error: You must be logged in to the server (%s)", msg)
		case s.Reason != "":
			return fmt.Sprintf("Error from server (%s): %s", s.Reason, msg)
		default:
			return "Error from server: " + msg
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if strings.Contains(ue.Err.Error(), "connection refused") {
			host := ue.URL
			if u, perr := url.Parse(ue.URL); perr == nil {
				host = u.Host
			}
			return fmt.Sprintf("The connection to the server %s was refused - did you specify the right host or port?", host)
		}
		return fmt.Sprintf("Unable to connect to the server: %v", ue.Err)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "error: ") || strings.HasPrefix(msg, "Error from server") {
		return msg
	}
	return "error: " + msg
}

// statusMessage is a Status's message, followed by its causes when the
// message does not already carry them.
func statusMessage(s metav1.Status) string {
	msg := s.Message
	if s.Details == nil {
		return msg
	}
	var extra []string
	for _, c := range s.Details.Causes {
		text := c.Message
		if c.Field != "" {
			text = c.Field + ": " + c.Message
		}
		if text == "" || strings.Contains(msg, c.Message) {
			continue
		}
		extra = append(extra, text)
	}
	if len(extra) > 0 {
		msg += " (" + strings.Join(extra, "; ") + ")"
	}
	return msg
}

// printError writes an error in kubectl's words, unless it was already
// printed.
func printError(w io.Writer, err error) {
	if err == nil || errors.Is(err, errSomeFailed) {
		return
	}
	fmt.Fprintln(w, errorMessage(err))
}

// withErrors wraps a command's work: runtime errors do not print usage,
// are printed in kubectl's words, and come back marked ErrReported.
func withErrors(errOut io.Writer, f func(ctx context.Context, args []string) error) func(cmdCtx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		if ctx == nil {
			ctx = context.Background()
		}
		err := f(ctx, args)
		if err == nil {
			return nil
		}
		printError(errOut, err)
		return reportedError{err}
	}
}
