// helm-render: `helm template` for machines without helm.
//
// Renders a Helm chart (a directory with Chart.yaml, values.yaml and
// templates/) the way Helm 3's template engine does: Go's text/template
// with sprig's function map (less env and expandenv, as in Helm) and
// Helm's own functions (include, tpl, required, fail, toYaml, fromYaml,
// fromYamlArray, toJson, fromJson, fromJsonArray, toToml is not provided,
// lookup answers an empty map as under `helm template`), .Values merged
// from the chart's values.yaml, every -f file in order and every --set,
// .Release, .Chart, .Capabilities (a fixed Kubernetes version) and
// .Template; Chart.yaml's kubeVersion is checked against that version.
// Files whose name starts with `_` are partials (parsed, never output);
// NOTES.txt is rendered (its errors count) but not output.
// Missing keys render as nothing (Helm's missingkey=zero and its removal
// of "<no value>").
//
// Output: every YAML document of every rendered template, as
// `helm template` prints them: `---`, `# Source: CHART/templates/FILE`, the
// document. Each document must parse as YAML, else the render fails, as in
// Helm.
//
// Build (Debian: golang-go, golang-github-masterminds-sprig-dev,
// golang-github-ghodss-yaml-dev), offline, in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o helm-render ./deploy/helm/render
//
// Usage:
//
//	helm-render [--name RELEASE] [--namespace NS] [--kube-version vX.Y.Z]
//	            [-f values.yaml]... [--set a.b=c]... [--set-string a.b=c]... CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
)

// ChartMeta is .Chart: the fields of Chart.yaml templates use.
type ChartMeta struct {
	APIVersion  string   `json:"apiVersion"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	AppVersion  string   `json:"appVersion"`
	Description string   `json:"description"`
	Type        string   `json:"type"`
	KubeVersion string   `json:"kubeVersion"`
	Keywords    []string `json:"keywords"`
	Home        string   `json:"home"`
	Sources     []string `json:"sources"`
	Icon        string   `json:"icon"`
	Deprecated  bool     `json:"deprecated"`
}

// KubeVersion is .Capabilities.KubeVersion.
type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

// VersionSet is .Capabilities.APIVersions.
type VersionSet []string

// Has tells whether an API version (group/version or group/version/Kind) is
// known.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// Capabilities is .Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

// The API versions of a current Kubernetes release that charts test for.
var builtinAPIVersions = VersionSet{
	"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2",
	"policy/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1",
	"storage.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"scheduling.k8s.io/v1", "apiextensions.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "certificates.k8s.io/v1",
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("helm-render", flag.ContinueOnError)
	name := fs.String("name", "release-name", "release name")
	namespace := fs.String("namespace", "default", "release namespace")
	kube := fs.String("kube-version", "v1.37.0", "Kubernetes version of .Capabilities")
	var valueFiles, sets, setStrings multiFlag
	fs.Var(&valueFiles, "f", "values file (repeatable; later ones win)")
	fs.Var(&valueFiles, "values", "values file (repeatable; later ones win)")
	fs.Var(&sets, "set", "KEY=VALUE, typed as Helm's --set (repeatable)")
	fs.Var(&setStrings, "set-string", "KEY=VALUE, always a string (repeatable)")
	// Flags may follow the chart directory, as with helm.
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return errors.New("usage: helm-render [flags] CHART_DIR")
	}
	out, err := render(positional[0], *name, *namespace, *kube, valueFiles, sets, setStrings)
	if err != nil {
		return err
	}
	_, err = os.Stdout.WriteString(out)
	return err
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// coalesce merges src over dst as Helm does: maps recursively, anything
// else replaced, a null in src deletes the key.
func coalesce(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			coalesce(dm, sm)
			continue
		}
		dst[k] = v
	}
}

var intRe = regexp.MustCompile(`^[-+]?[0-9]+$`)

// typed is a --set value typed as Helm's strvals parser types it.
func typed(s string) interface{} {
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if intRe.MatchString(s) && !(len(s) > 1 && strings.HasPrefix(s, "0")) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return s
}

func applySet(vals map[string]interface{}, expr string, asString bool) error {
	for _, part := range strings.Split(expr, ",") {
		kv := strings.SplitN(part, "=", 2)
		if len(kv) != 2 || kv[0] == "" {
			return fmt.Errorf("--set %q: expected KEY=VALUE", part)
		}
		if strings.ContainsAny(kv[0], "[]") {
			return fmt.Errorf("--set %q: list indexes are not supported here", part)
		}
		keys := strings.Split(kv[0], ".")
		m := vals
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]interface{})
			if !ok {
				next = map[string]interface{}{}
				m[k] = next
			}
			m = next
		}
		last := keys[len(keys)-1]
		var v interface{} = kv[1]
		if !asString {
			v = typed(kv[1])
		}
		if v == nil {
			delete(m, last)
		} else {
			m[last] = v
		}
	}
	return nil
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// funcMap is Helm's: sprig without env and expandenv, Helm's own
// functions; include and tpl close over the template set.
func funcMap(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["mustToYaml"] = func(v interface{}) (string, error) {
		data, err := yaml.Marshal(v)
		return strings.TrimSuffix(string(data), "\n"), err
	}
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["fromJsonArray"] = fromJSONArray
	f["required"] = func(warn string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, errors.New(warn)
		}
		if s, ok := val.(string); ok && s == "" {
			return val, errors.New(warn)
		}
		return val, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	depth := map[string]int{}
	f["include"] = func(name string, data interface{}) (string, error) {
		if depth[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		depth[name]++
		defer func() { depth[name]-- }()
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, vals map[string]interface{}) (string, error) {
		c, err := t.Clone()
		if err != nil {
			return "", err
		}
		c.Option("missingkey=zero")
		c.Funcs(funcMap(c))
		name := "tpl"
		if tp, ok := vals["Template"].(map[string]interface{}); ok {
			if n, ok := tp["Name"].(string); ok {
				name = n + "/tpl"
			}
		}
		if _, err := c.New(name).Parse(text); err != nil {
			return "", fmt.Errorf("cannot parse template %q: %v", text, err)
		}
		var buf strings.Builder
		if err := c.ExecuteTemplate(&buf, name, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %v", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

func render(chartDir, name, namespace, kube string, valueFiles, sets, setStrings []string) (string, error) {
	metaBytes, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	var meta ChartMeta
	if err := yaml.Unmarshal(metaBytes, &meta); err != nil {
		return "", fmt.Errorf("Chart.yaml: %v", err)
	}
	if meta.Name == "" || meta.Version == "" {
		return "", errors.New("Chart.yaml: name and version are required")
	}
	if meta.APIVersion != "v2" {
		return "", fmt.Errorf("Chart.yaml: apiVersion %q (Helm 3 charts are v2)", meta.APIVersion)
	}

	vals := map[string]interface{}{}
	if _, err := os.Stat(filepath.Join(chartDir, "values.yaml")); err == nil {
		if vals, err = readYAMLMap(filepath.Join(chartDir, "values.yaml")); err != nil {
			return "", err
		}
	}
	for _, f := range valueFiles {
		user, err := readYAMLMap(f)
		if err != nil {
			return "", err
		}
		coalesce(vals, user)
	}
	for _, s := range sets {
		if err := applySet(vals, s, false); err != nil {
			return "", err
		}
	}
	for _, s := range setStrings {
		if err := applySet(vals, s, true); err != nil {
			return "", err
		}
	}

	v := strings.TrimPrefix(kube, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return "", fmt.Errorf("--kube-version %q: expected vMAJOR.MINOR.PATCH", kube)
	}
	// Chart.yaml's kubeVersion constraint, checked as Helm does.
	if meta.KubeVersion != "" {
		c, err := semver.NewConstraint(meta.KubeVersion)
		if err != nil {
			return "", fmt.Errorf("Chart.yaml: kubeVersion %q: %v", meta.KubeVersion, err)
		}
		kv, err := semver.NewVersion(v)
		if err != nil {
			return "", fmt.Errorf("--kube-version %q: %v", kube, err)
		}
		if !c.Check(kv) {
			return "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes v%s", meta.KubeVersion, v)
		}
	}
	caps := Capabilities{
		KubeVersion: KubeVersion{Version: "v" + v, Major: parts[0], Minor: parts[1], GitVersion: "v" + v},
		APIVersions: builtinAPIVersions,
		HelmVersion: map[string]string{"version": "v3.19.0"},
	}

	// The templates: every file under templates/, named CHART/templates/...
	tdir := filepath.Join(chartDir, "templates")
	files := map[string]string{}
	err = filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(chartDir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[path.Join(meta.Name, filepath.ToSlash(rel))] = string(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	t := template.New("gotpl").Option("missingkey=zero")
	t.Funcs(funcMap(t))
	for _, n := range names {
		if _, err := t.New(n).Parse(files[n]); err != nil {
			return "", fmt.Errorf("parse error in %v", err)
		}
	}

	var out strings.Builder
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			continue
		}
		top := map[string]interface{}{
			"Values": vals,
			"Chart":  meta,
			"Release": map[string]interface{}{
				"Name": name, "Namespace": namespace, "IsInstall": true, "IsUpgrade": false,
				"Revision": 1, "Service": "Helm",
			},
			"Capabilities": caps,
			"Template":     map[string]interface{}{"Name": n, "BasePath": path.Join(meta.Name, "templates")},
			"Files":        map[string]interface{}{},
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, n, top); err != nil {
			return "", cleanupExecError(n, err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if path.Base(n) == "NOTES.txt" {
			continue
		}
		for _, doc := range docSep.Split(text, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head map[string]interface{}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				return "", fmt.Errorf("YAML parse error on %s: %v", n, err)
			}
			if head == nil {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", n, strings.Trim(doc, "\n"))
		}
	}
	return out.String(), nil
}

var (
	execLocation = regexp.MustCompile(`^template: ([^:]+:\d+:\d+): `)
	execCalling  = regexp.MustCompile(`error calling \w+: `)
)

// cleanupExecError shortens an execution error as Helm does: the place in
// the first template and the innermost message (what fail or required
// said).
func cleanupExecError(name string, err error) error {
	msg := err.Error()
	loc := execLocation.FindStringSubmatch(msg)
	if loc == nil {
		return fmt.Errorf("execution error in %s: %s", name, msg)
	}
	if idx := execCalling.FindAllStringIndex(msg, -1); len(idx) > 0 {
		msg = msg[idx[len(idx)-1][1]:]
	} else {
		msg = strings.TrimPrefix(msg, loc[0])
	}
	return fmt.Errorf("execution error at (%s): %s", loc[1], msg)
}
