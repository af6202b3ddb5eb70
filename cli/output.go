package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/switchboard-dev/switchboard/cluster"
)

// outputFormat is a parsed -o value.
type outputFormat string

const (
	outTable outputFormat = ""
	outWide  outputFormat = "wide"
	outYAML  outputFormat = "yaml"
	outJSON  outputFormat = "json"
	outName  outputFormat = "name"
)

func parseOutput(s string) (outputFormat, error) {
	switch f := outputFormat(strings.ToLower(strings.TrimSpace(s))); f {
	case outTable, outWide, outYAML, outJSON, outName:
		return f, nil
	}
	return "", fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,name,wide,yaml", s)
}

// item is one object with its kind.
type item struct {
	kind *cluster.Kind
	obj  cluster.Object
}

// objectMap is an object as the API serves it (apiVersion and kind set,
// managedFields hidden as kubectl hides them).
func objectMap(it item) (map[string]any, error) {
	u, err := toUnstructured(it.kind, it.obj)
	if err != nil {
		return nil, err
	}
	u.SetManagedFields(nil)
	return u.Object, nil
}

// printObjects writes items as -o json or -o yaml: the object itself when
// one object was asked for by name, else a v1 List, as kubectl get does.
func printObjects(out io.Writer, items []item, single bool, f outputFormat) error {
	var v any
	if single && len(items) == 1 {
		m, err := objectMap(items[0])
		if err != nil {
			return err
		}
		v = m
	} else {
		list := []any{}
		for _, it := range items {
			m, err := objectMap(it)
			if err != nil {
				return err
			}
			list = append(list, m)
		}
		v = map[string]any{
			"apiVersion": "v1",
			"kind":       "List",
			"items":      list,
			"metadata":   map[string]any{"resourceVersion": ""},
		}
	}
	switch f {
	case outJSON:
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	default:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
}

// printNames writes kind/name lines (-o name).
func printNames(out io.Writer, items []item) {
	for _, it := range items {
		fmt.Fprintf(out, "%s/%s\n", kindLabel(it.kind), it.obj.GetName())
	}
}
