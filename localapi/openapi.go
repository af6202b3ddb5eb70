package localapi

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/switchboard-dev/switchboard/cluster"
)

// The OpenAPI v3 documents served are skeletons: one path per object URL
// and per collection URL with its operations, their
// x-kubernetes-group-version-kind and x-kubernetes-action extensions and
// the fieldValidation query parameter, and no schemas. That is what
// kubectl reads to learn that the server validates fields itself
// (kubectl create/apply then send fieldValidation=Strict instead of
// validating against schemas); `kubectl explain` needs the schemas and
// is not served.

type openAPIParam struct {
	Name        string            `json:"name"`
	In          string            `json:"in"`
	Description string            `json:"description,omitempty"`
	Schema      map[string]string `json:"schema"`
}

type openAPIOp struct {
	OperationID string            `json:"operationId"`
	Parameters  []openAPIParam    `json:"parameters,omitempty"`
	Responses   map[string]any    `json:"responses"`
	Action      string            `json:"x-kubernetes-action"`
	GVK         map[string]string `json:"x-kubernetes-group-version-kind"`
}

var fieldValidationParam = openAPIParam{
	Name: "fieldValidation", In: "query",
	Description: "Strict (the default here), Warn or Ignore: what to do with unknown or duplicate fields in the body.",
	Schema:      map[string]string{"type": "string"},
}

// openAPIPath is "api/v1" or "apis/GROUP/VERSION", as in /openapi/v3.
func openAPIPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

func openAPIDoc(gv schema.GroupVersion) []byte {
	paths := map[string]map[string]openAPIOp{}
	for _, k := range cluster.Kinds {
		if k.GVK.GroupVersion() != gv {
			continue
		}
		gvk := map[string]string{"group": k.GVK.Group, "version": k.GVK.Version, "kind": k.GVK.Kind}
		op := func(verb, action string, params ...openAPIParam) openAPIOp {
			return openAPIOp{
				OperationID: verb + strings.ReplaceAll(gv.String(), "/", "_") + k.GVK.Kind,
				Parameters:  params,
				Responses:   map[string]any{"200": map[string]string{"description": "OK"}},
				Action:      action,
				GVK:         gvk,
			}
		}
		coll := k.APIPath() + "/" + k.Resource
		if k.Namespaced {
			coll = k.APIPath() + "/namespaces/{namespace}/" + k.Resource
		}
		paths[coll] = map[string]openAPIOp{
			"get":    op("list", "list"),
			"post":   op("create", "post", fieldValidationParam),
			"delete": op("deletecollection", "deletecollection"),
		}
		paths[coll+"/{name}"] = map[string]openAPIOp{
			"get":    op("read", "get"),
			"put":    op("replace", "put", fieldValidationParam),
			"patch":  op("patch", "patch", fieldValidationParam),
			"delete": op("delete", "delete"),
		}
		if hasStatus(k) {
			paths[coll+"/{name}/status"] = map[string]openAPIOp{
				"get":   op("read_status", "get"),
				"put":   op("replace_status", "put", fieldValidationParam),
				"patch": op("patch_status", "patch", fieldValidationParam),
			}
		}
	}
	major, minor, patch := apiLevel()
	b, _ := json.Marshal(map[string]any{
		"openapi": "3.0.0",
		"info":    map[string]string{"title": "Switchboard", "version": "v" + major + "." + minor + "." + patch},
		"paths":   paths,
	})
	return b
}

func contentHash(b []byte) string {
	h := sha512.Sum512(b)
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

// serveOpenAPI answers /openapi/v3 (the index of group versions) and
// /openapi/v3/api/v1, /openapi/v3/apis/G/V.
func (s *server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if !onlyGet(w, r) {
		return
	}
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/openapi/v3"), "/")
	var gvs []schema.GroupVersion
	for _, k := range cluster.Kinds {
		gv := k.GVK.GroupVersion()
		if !containsGV(gvs, gv) {
			gvs = append(gvs, gv)
		}
	}
	if rest == "" {
		idx := map[string]map[string]string{}
		for _, gv := range gvs {
			idx[openAPIPath(gv)] = map[string]string{"serverRelativeURL": "/openapi/v3/" + openAPIPath(gv) + "?hash=" + contentHash(openAPIDoc(gv))}
		}
		writeObject(w, r, http.StatusOK, map[string]any{"paths": idx})
		return
	}
	sort.Slice(gvs, func(i, j int) bool { return gvs[i].String() < gvs[j].String() })
	for _, gv := range gvs {
		if openAPIPath(gv) == rest {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Etag", `"`+contentHash(openAPIDoc(gv))+`"`)
			w.WriteHeader(http.StatusOK)
			if r.Method != http.MethodHead {
				_, _ = w.Write(openAPIDoc(gv))
			}
			return
		}
	}
	writeError(w, r, errNotFound())
}

func containsGV(l []schema.GroupVersion, gv schema.GroupVersion) bool {
	for _, x := range l {
		if x == gv {
			return true
		}
	}
	return false
}
