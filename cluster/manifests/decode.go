package manifests

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	yamlnode "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/switchboard-dev/switchboard/cluster"
)

// Document is one object read from a manifest file.
type Document struct {
	File  string // path as given or walked
	Index int    // 1-based position of the document in its file (empty documents are not counted)
	Item  int    // 1-based position inside a List document; 0 for a document that is not a List
	Line  int    // line where the document (or the List item) starts

	// APIVersion and Kind as written (set whenever they could be read).
	APIVersion string
	Kind       string

	// Object is the decoded typed object (k8s.io/api types), with its
	// namespace as written (possibly empty). It is nil when Err is set and
	// when the document's kind is not one the store holds (skipped).
	Object cluster.Object
	// Err is a *Error when the document is bad, or the errors.Join of
	// several *Error when it has several problems (see Errors).
	Err error

	id  ident    // kind/namespace/name as far as they could be read
	loc *locator // field path -> line (parsed on first use)
	sum [32]byte // SHA-256 of the object's JSON, when Object is set
}

// Skipped tells whether the document was read but names a kind the store
// does not hold.
func (d *Document) Skipped() bool { return d.Err == nil && d.Object == nil }

// Errors lists the document's problems.
func (d *Document) Errors() []*Error { return ErrorsOf(d.Err) }

// ErrorsOf flattens an error returned by this package (a *Error or a join
// of them) into its *Error values.
func ErrorsOf(err error) []*Error {
	if err == nil {
		return nil
	}
	var out []*Error
	var walk func(error)
	walk = func(e error) {
		if me, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range me.Unwrap() {
				walk(x)
			}
			return
		}
		var pe *Error
		if errors.As(e, &pe) {
			out = append(out, pe)
			return
		}
		out = append(out, &Error{Reason: e.Error()})
	}
	walk(err)
	return out
}

// Error is a problem with one document, naming where it is and what is
// wrong: "examples/x.yaml: document 2 (line 14) Service default/web:
// spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535,
// inclusive".
type Error struct {
	File   string
	Index  int // document, 1-based; 0 for a problem with the whole file
	Item   int // List item, 1-based; 0 when not in a List
	Line   int // line where the document (or item) starts
	Object string
	Field  string
	// FieldLine is the line of Field (or of the closest enclosing field
	// present in the file) when known, else 0.
	FieldLine int
	Reason    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("<input>")
	}
	if e.Index > 0 {
		fmt.Fprintf(&b, ": document %d", e.Index)
		if e.Item > 0 {
			fmt.Fprintf(&b, " item %d", e.Item)
		}
		if e.Line > 0 {
			fmt.Fprintf(&b, " (line %d)", e.Line)
		}
	}
	if e.Object != "" {
		b.WriteString(" ")
		b.WriteString(e.Object)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// ident is what is known of a document's object even when it is bad.
type ident struct {
	apiVersion, kind, namespace, name string
}

// describe is "Kind namespace/name" as cluster.Describe writes it, with
// the namespace a source would give a namespaced object that has none.
func (id ident) describe() string {
	if id.kind == "" || id.name == "" {
		return ""
	}
	ns := id.namespace
	if k := cluster.LookupGVK(id.apiVersion, id.kind); k != nil {
		if !k.Namespaced {
			ns = ""
		} else if ns == "" {
			ns = "default"
		}
	}
	return id.kind + " " + cluster.Key(ns, id.name)
}

// IsManifestFile tells whether a file found in a directory is read as a
// manifest: .yaml, .yml or .json (any case), not hidden (editors' swap and
// lock files start with a dot).
func IsManifestFile(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(base)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// DecodeFile reads and decodes one file. The error is set only when the
// file cannot be read; problems inside it are in the documents.
func DecodeFile(path string) ([]Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Reason: "cannot read: " + errReason(err)}
	}
	return Decode(path, data), nil
}

func errReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ReadPaths reads files and directories ("-" is standard input) and decodes
// every document in them, in order: paths as given, files of a directory in
// lexical order (subdirectories too when recursive; hidden files and
// directories are skipped; only .yaml, .yml and .json files are read from
// directories, while a file named explicitly is read whatever its name).
// The error joins a *Error for each path or file that cannot be read; the
// documents of the others are returned.
func ReadPaths(paths []string, recursive bool) ([]Document, error) {
	files, errs := listFiles(paths, recursive)
	var docs []Document
	for _, f := range files {
		if f == "-" {
			data, err := io.ReadAll(os.Stdin)
			if err != nil {
				errs = append(errs, &Error{File: "-", Reason: "cannot read: " + err.Error()})
				continue
			}
			docs = append(docs, Decode("-", data)...)
			continue
		}
		d, err := DecodeFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		docs = append(docs, d...)
	}
	return docs, errors.Join(errs...)
}

// listFiles expands paths into the files to read, in order, without
// duplicates.
func listFiles(paths []string, recursive bool) ([]string, []error) {
	var files []string
	var errs []error
	seen := map[string]bool{}
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		if p == "-" {
			add(p)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Reason: "cannot read: " + errReason(err)})
			continue
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, &Error{File: path, Reason: "cannot read: " + errReason(err)})
				if d != nil && d.IsDir() && path != p {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if path != p && (!recursive || strings.HasPrefix(d.Name(), ".")) {
					return fs.SkipDir
				}
				return nil
			}
			if IsManifestFile(path) {
				add(path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, &Error{File: p, Reason: "cannot read: " + errReason(err)})
		}
	}
	return files, errs
}

// Decode decodes every document of one file's content: multi-document
// YAML ("---"), a JSON object or a stream of them, and List documents
// (kind: List, or e.g. kind: PodList), whose items become documents of
// their own (Item set). Empty documents are skipped. Decoding is strict:
// unknown and duplicate fields are errors naming the field path. It never
// panics.
func Decode(name string, data []byte) []Document {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if looksLikeJSON(data) {
		if docs, ok := decodeJSONStream(name, data); ok {
			return docs
		}
	}
	var docs []Document
	index := 0
	for _, c := range splitYAML(data) {
		if !hasContent(c.text) {
			continue
		}
		d := decodeYAMLDocument(name, index+1, c)
		if d == nil {
			continue // an explicit null document
		}
		index++
		docs = append(docs, d...)
	}
	return docs
}

func looksLikeJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// decodeJSONStream decodes concatenated JSON values. ok is false when the
// first value is not valid JSON, so that the caller reads the file as YAML
// (a YAML flow mapping also starts with '{').
func decodeJSONStream(name string, data []byte) (docs []Document, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	index := 0
	for {
		start := dec.InputOffset()
		for int(start) < len(data) && strings.IndexByte(" \t\r\n", data[start]) >= 0 {
			start++
		}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return docs, true
		}
		line := lineAt(data, int(start))
		if err != nil {
			if index == 0 {
				return nil, false
			}
			off := int(dec.InputOffset())
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = int(se.Offset)
			}
			index++
			e := &Error{File: name, Index: index, Line: line, FieldLine: lineAt(data, off),
				Reason: fmt.Sprintf("invalid JSON at line %d: %s", lineAt(data, off), strings.TrimPrefix(err.Error(), "json: "))}
			return append(docs, Document{File: name, Index: index, Line: line, Err: e}), true
		}
		index++
		loc := newLocator(raw, line-1)
		docs = append(docs, decodeObject(name, index, 0, line, raw, loc, nil)...)
	}
}

// lineAt is the 1-based line of a byte offset.
func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

type yamlChunk struct {
	text  []byte
	first int // file line of text's first line
}

// splitYAML splits a YAML stream at document markers: a line starting with
// "---" followed by nothing, a space, a tab or a comment starts a
// document (text after the marker belongs to it), and a line "..." ends
// one.
func splitYAML(data []byte) []yamlChunk {
	var chunks []yamlChunk
	var cur bytes.Buffer
	first := 1
	line := 0
	flush := func(next int) {
		chunks = append(chunks, yamlChunk{text: bytes.Clone(cur.Bytes()), first: first})
		cur.Reset()
		first = next
	}
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i+1], data[i+1:]
		} else {
			l, data = data, nil
		}
		trimmed := bytes.TrimRight(l, "\r\n")
		switch {
		case bytes.HasPrefix(trimmed, []byte("---")) && (len(trimmed) == 3 || trimmed[3] == ' ' || trimmed[3] == '\t'):
			flush(line)
			rest := bytes.TrimSpace(trimmed[3:])
			if len(rest) > 0 && rest[0] != '#' {
				// Content on the marker line: keep its column-free form
				// on the same line so that line numbers stay right.
				cur.Write(rest)
			}
			cur.WriteByte('\n')
			first = line
		case bytes.Equal(bytes.TrimRight(trimmed, " \t"), []byte("...")):
			cur.WriteByte('\n')
			flush(line + 1)
		default:
			cur.Write(l)
			if !bytes.HasSuffix(l, []byte("\n")) {
				cur.WriteByte('\n')
			}
		}
	}
	if cur.Len() > 0 {
		flush(line + 1)
	}
	return chunks
}

// hasContent tells whether a chunk holds anything but blank lines and
// comments.
func hasContent(text []byte) bool {
	for _, l := range bytes.Split(text, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

// firstContentLine is the file line of a chunk's first line with content.
func firstContentLine(c yamlChunk) int {
	for i, l := range bytes.Split(c.text, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return c.first + i
		}
	}
	return c.first
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// shiftYAMLError rewrites "line N" in a YAML parser's message, relative to
// the chunk, into file lines, and returns the first such line.
func shiftYAMLError(msg string, base int) (string, int) {
	first := 0
	out := yamlLineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(m[len("line "):])
		if err != nil {
			return m
		}
		if first == 0 {
			first = n + base
		}
		return "line " + strconv.Itoa(n+base)
	})
	out = strings.TrimPrefix(out, "error converting YAML to JSON: ")
	return out, first
}

// decodeYAMLDocument decodes one YAML document; nil when it is an explicit
// null (e.g. "~").
func decodeYAMLDocument(name string, index int, c yamlChunk) (docs []Document) {
	line := firstContentLine(c)
	base := c.first - 1
	defer func() {
		if r := recover(); r != nil {
			e := &Error{File: name, Index: index, Line: line, Reason: fmt.Sprintf("cannot decode YAML: %v", r)}
			docs = []Document{{File: name, Index: index, Line: line, Err: e}}
		}
	}()
	if !utf8.Valid(c.text) {
		e := &Error{File: name, Index: index, Line: line, Reason: "invalid YAML: the document is not valid UTF-8"}
		return []Document{{File: name, Index: index, Line: line, Err: e}}
	}
	j, err := yaml.YAMLToJSONStrict(c.text)
	if err != nil {
		msg, at := shiftYAMLError(err.Error(), base)
		msg = strings.Join(strings.Fields(strings.TrimPrefix(msg, "yaml: ")), " ")
		e := &Error{File: name, Index: index, Line: line, FieldLine: at, Reason: "invalid YAML: " + msg}
		d := Document{File: name, Index: index, Line: line, Err: e}
		d.id = looseIdent(c.text)
		e.Object = d.id.describe()
		return []Document{d}
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil
	}
	return decodeObject(name, index, 0, line, j, newLocator(c.text, base), nil)
}

// looseIdent reads apiVersion, kind and metadata of a document that does
// not decode, line by line, so that its object can still be named (and
// its last good version kept).
func looseIdent(text []byte) ident {
	var id ident
	inMeta := false
	for _, l := range strings.Split(string(text), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		indented := l[0] == ' ' || l[0] == '\t'
		if !indented {
			inMeta = strings.HasPrefix(l, "metadata:")
		}
		key, val, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok {
			continue
		}
		val = strings.Trim(strings.TrimSpace(strings.SplitN(val, " #", 2)[0]), `"'`)
		switch {
		case !indented && key == "apiVersion":
			id.apiVersion = val
		case !indented && key == "kind":
			id.kind = val
		case inMeta && indented && key == "name" && id.name == "":
			id.name = val
		case inMeta && indented && key == "namespace" && id.namespace == "":
			id.namespace = val
		}
	}
	return id
}

// decodeObject decodes one JSON object (a document or a List item).
// listPath is the path of the item in its List ("items[2]"), nil for a
// document.
func decodeObject(name string, index, item, line int, j []byte, loc *locator, listPath []pathElem) []Document {
	d := Document{File: name, Index: index, Item: item, Line: line, loc: loc.sub(listPath)}
	fail := func(fieldPath, reason string) []Document {
		e := &Error{File: name, Index: index, Item: item, Line: line, Object: d.id.describe(), Field: fieldPath, Reason: reason}
		if fieldPath != "" {
			e.FieldLine = d.loc.lineOf(fieldPath)
		}
		d.Err = e
		return []Document{d}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(j, &top); err != nil || top == nil {
		return fail("", "expected an object with apiVersion and kind, found "+jsonKind(j))
	}
	var h struct{ APIVersion, Kind string }
	// Each header field on its own, so that one of the wrong type does
	// not hide the others.
	_ = json.Unmarshal(top["apiVersion"], &h.APIVersion)
	_ = json.Unmarshal(top["kind"], &h.Kind)
	d.APIVersion, d.Kind = h.APIVersion, h.Kind
	d.id = ident{apiVersion: h.APIVersion, kind: h.Kind}
	var meta struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	if m, ok := top["metadata"]; ok {
		_ = json.Unmarshal(m, &meta)
		d.id.name, d.id.namespace = meta.Name, meta.Namespace
	}
	switch {
	case h.Kind == "" && h.APIVersion == "":
		return fail("", "apiVersion and kind are required (is this a Kubernetes manifest?)")
	case h.Kind == "":
		return fail("kind", "Required value")
	case h.APIVersion == "":
		return fail("apiVersion", "Required value")
	}

	if isList(h.APIVersion, h.Kind) {
		if listPath != nil {
			return fail("kind", fmt.Sprintf("Invalid value: %q: a List item may not be a List", h.Kind))
		}
		for k := range top {
			switch k {
			case "apiVersion", "kind", "metadata", "items":
			default:
				return fail(k, "unknown field")
			}
		}
		var items []json.RawMessage
		if raw, ok := top["items"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &items); err != nil {
				return fail("items", "Invalid type: expected an array, got "+jsonKind(raw))
			}
		}
		var docs []Document
		for i, it := range items {
			p := []pathElem{{key: "items"}, {index: i, isIndex: true}}
			itemLine := loc.lineOfPath(p)
			if itemLine == 0 {
				itemLine = line
			}
			docs = append(docs, decodeObject(name, index, i+1, itemLine, it, loc, p)...)
		}
		return docs
	}

	k := cluster.LookupGVK(h.APIVersion, h.Kind)
	if k == nil {
		return []Document{d} // skipped: not a kind the store holds
	}
	obj := k.New()
	strictErrs, err := sigsjson.UnmarshalStrict(j, obj)
	if err != nil {
		fieldPath, reason := describeDecodeError(j, k, err)
		return fail(fieldPath, reason)
	}
	if len(strictErrs) > 0 {
		var errs []error
		for _, se := range strictErrs {
			fieldPath, reason := "", se.Error()
			var fe sigsjson.FieldError
			if errors.As(se, &fe) {
				fieldPath = fe.FieldPath()
				switch {
				case strings.HasPrefix(se.Error(), "unknown field"):
					reason = "unknown field (misspelt, or at the wrong indentation?)"
				case strings.HasPrefix(se.Error(), "duplicate field"):
					reason = "duplicate field"
				}
			}
			e := &Error{File: name, Index: index, Item: item, Line: line, Object: d.id.describe(), Field: fieldPath, Reason: reason}
			if fieldPath != "" {
				e.FieldLine = d.loc.lineOf(fieldPath)
			}
			errs = append(errs, e)
		}
		if len(errs) == 1 {
			d.Err = errs[0]
		} else {
			d.Err = errors.Join(errs...)
		}
		return []Document{d}
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GVK)
	d.Object = obj
	d.sum = sha256.Sum256(j)
	return []Document{d}
}

// isList tells whether apiVersion/kind name a list: v1 List, or the list
// kind of a kind the store holds (PodList).
func isList(apiVersion, kind string) bool {
	if kind == "List" {
		return true
	}
	base, ok := strings.CutSuffix(kind, "List")
	return ok && base != "" && cluster.LookupGVK(apiVersion, base) != nil
}

func jsonKind(j []byte) string {
	t := bytes.TrimSpace(j)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// describeDecodeError turns a decoding error (a value of the wrong type,
// or a value its type refuses, such as a bad quantity) into a field path
// and a reason.
func describeDecodeError(j []byte, k *cluster.Kind, err error) (string, string) {
	// encoding/json reports the offset of the value of the wrong type;
	// sigs.k8s.io/json keeps it in an internal type, so ask the standard
	// decoder for the same error.
	var ute *json.UnmarshalTypeError
	if stdErr := json.Unmarshal(j, k.New()); errors.As(stdErr, &ute) {
		return jsonPathAt(j, ute.Offset), fmt.Sprintf("Invalid type: expected %s, got %s", typeName(ute.Type), jsonValueName(ute.Value))
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return "", "Invalid value: " + msg
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

func jsonValueName(v string) string {
	switch {
	case v == "object":
		return "an object"
	case v == "array":
		return "an array"
	case v == "string":
		return "a string"
	case v == "bool":
		return "a boolean"
	case strings.HasPrefix(v, "number"):
		return "a " + v
	}
	return v
}

// pathElem is one step of a field path: a key or an index.
type pathElem struct {
	key     string
	index   int
	isIndex bool
}

func formatPath(p []pathElem) string {
	var b strings.Builder
	for _, e := range p {
		if e.isIndex {
			fmt.Fprintf(&b, "[%d]", e.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.key)
	}
	return b.String()
}

// parsePath reads a field path as validation writes it:
// spec.containers[0].ports[1].name, data[key.with.dots].
func parsePath(s string) []pathElem {
	var p []pathElem
	for len(s) > 0 {
		switch s[0] {
		case '.':
			s = s[1:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return p
			}
			inner := s[1:end]
			if n, err := strconv.Atoi(inner); err == nil {
				p = append(p, pathElem{index: n, isIndex: true})
			} else {
				p = append(p, pathElem{key: inner})
			}
			s = s[end+1:]
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			p = append(p, pathElem{key: s[:end]})
			s = s[end:]
		}
	}
	return p
}

// jsonPathAt returns the field path of the JSON value that encoding/json
// blames for a type error at byte offset off: the scalar that ends there,
// or the object or array that starts there.
func jsonPathAt(j []byte, off int64) string {
	dec := json.NewDecoder(bytes.NewReader(j))
	type frame struct {
		obj       bool
		key       string
		index     int
		expectKey bool
	}
	var stack []frame
	path := func() string {
		p := make([]pathElem, 0, len(stack))
		for _, f := range stack {
			switch {
			case f.obj && f.key != "":
				p = append(p, pathElem{key: f.key})
			case !f.obj && f.index >= 0:
				p = append(p, pathElem{index: f.index, isIndex: true})
			}
		}
		return formatPath(p)
	}
	// enterValue notes that a value starts in the innermost container.
	enterValue := func() {
		if n := len(stack); n > 0 && !stack[n-1].obj {
			stack[n-1].index++
		}
	}
	// leaveValue notes that it ended: an object expects its next key.
	leaveValue := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				enterValue()
				if dec.InputOffset() >= off {
					return path()
				}
				stack = append(stack, frame{obj: d == '{', index: -1, expectKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				leaveValue()
			}
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].expectKey {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].expectKey = false
			continue
		}
		enterValue()
		if dec.InputOffset() >= off {
			return path()
		}
		leaveValue()
	}
}

// locator maps field paths of one document to file lines, from the YAML
// (or JSON) node tree, which is parsed only when a line is first asked
// for (most documents never need one, and a node tree is several times
// the size of the text). A nil locator knows nothing.
type locator struct {
	src    *locatorSource
	prefix []pathElem
}

// locatorSource is a document's text and its node tree once parsed;
// List items share their document's.
type locatorSource struct {
	once sync.Once
	text []byte
	base int // added to node lines
	root *yamlnode.Node
}

func (s *locatorSource) tree() *yamlnode.Node {
	s.once.Do(func() {
		defer func() {
			if recover() != nil {
				s.root = nil
			}
		}()
		var n yamlnode.Node
		if err := yamlnode.Unmarshal(s.text, &n); err == nil && len(n.Content) > 0 {
			s.root = n.Content[0]
		}
		s.text = nil
	})
	return s.root
}

func newLocator(text []byte, base int) *locator {
	return &locator{src: &locatorSource{text: text, base: base}}
}

func (l *locator) sub(prefix []pathElem) *locator {
	if l == nil || len(prefix) == 0 {
		return l
	}
	return &locator{src: l.src, prefix: append(append([]pathElem{}, l.prefix...), prefix...)}
}

func (l *locator) lineOf(fieldPath string) int {
	if l == nil {
		return 0
	}
	return l.lineOfPath(parsePath(fieldPath))
}

// lineOfPath walks the path as far as the file has it and returns the line
// of the deepest node reached.
func (l *locator) lineOfPath(p []pathElem) int {
	if l == nil {
		return 0
	}
	n := l.src.tree()
	if n == nil {
		return 0
	}
	line := n.Line
	for _, e := range append(append([]pathElem{}, l.prefix...), p...) {
		for n.Kind == yamlnode.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yamlnode.Node
		switch {
		case e.isIndex && n.Kind == yamlnode.SequenceNode:
			if e.index >= 0 && e.index < len(n.Content) {
				next = n.Content[e.index]
			}
		case !e.isIndex && n.Kind == yamlnode.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == e.key {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			break
		}
		n = next
		if n.Kind != yamlnode.ScalarNode || e.isIndex {
			line = n.Line
		}
	}
	if line == 0 {
		return 0
	}
	return line + l.src.base
}

// ErrorsFor turns the error the store returned for doc's object into
// *Error values that name the file, the document, the object and, for
// validation errors, each field.
func ErrorsFor(doc *Document, obj cluster.Object, err error) []*Error {
	if err == nil {
		return nil
	}
	id := doc.id
	if obj != nil {
		id.namespace, id.name = obj.GetNamespace(), obj.GetName()
	}
	base := Error{File: doc.File, Index: doc.Index, Item: doc.Item, Line: doc.Line, Object: id.describe()}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		if s.Details != nil && len(s.Details.Causes) > 0 {
			out := make([]*Error, 0, len(s.Details.Causes))
			for _, c := range s.Details.Causes {
				e := base
				e.Field, e.Reason = c.Field, c.Message
				e.FieldLine = doc.loc.lineOf(c.Field)
				out = append(out, &e)
			}
			return out
		}
		e := base
		e.Reason = s.Message
		return []*Error{&e}
	}
	e := base
	e.Reason = err.Error()
	return []*Error{&e}
}

// sortErrors orders problems by file, document, item and field.
func sortErrors(errs []*Error) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		if a.Item != b.Item {
			return a.Item < b.Item
		}
		return a.Field < b.Field
	})
}
