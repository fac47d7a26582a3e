// Command helm-render renders a Helm chart the way `helm template` does, for the tests of
// the chart that `codequal-installer plan --format helm` exports (no helm binary can be had
// on the test machines).
//
// What it does, following Helm 3's documented behaviour:
//   - reads Chart.yaml (exposed as .Chart with Helm's field names: .Chart.Name, .Version,
//     .AppVersion, .Description, .Type, .KubeVersion, .Annotations) and values.yaml;
//   - deep-merges each -f FILE over the values, then each --set path=value (maps merge key by
//     key, anything else replaces; a --set value is read as a YAML scalar, so 3 is a number,
//     true a boolean, null null);
//   - parses every file under templates/ into one template set (so a define in _helpers.tpl
//     is visible everywhere), with Go's text/template, the sprig functions without env and
//     expandenv (Helm removes them), and Helm's own include, tpl, required, toYaml, fromYaml,
//     toJson, fromJson, and lookup (which always returns an empty map, as under
//     `helm template`);
//   - executes with missingkey=zero and removes "<no value>" from the output, as Helm does;
//   - renders .Release.Name (--name, default "release-name"), .Release.Namespace (--namespace,
//     default "default"), .Release.Service "Helm", .Release.IsInstall true;
//   - does not render templates whose base name starts with "_", nor templates/NOTES.txt as
//     a manifest (--notes prints it instead); drops documents that are empty or only
//     whitespace and comments; prints the others as `---` + "# Source: <chart>/<path>",
//     in file name order.
//
// What it does NOT do: chart dependencies (charts/ and Chart.yaml dependencies), hooks and
// their annotations, .Capabilities, .Files, lookup against a cluster, values.schema.json
// validation (the tests run a JSON Schema validator), values coalescing beyond the plain
// deep merge above (no deletion of a key by null, no global values, no subchart scoping),
// --set syntax beyond path=value (no lists, no escaped dots, no --set-string/--set-file),
// and no sorting of the output by kind.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func readYAMLMap(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if out == nil {
		out = map[string]interface{}{}
	}
	return out, nil
}

// merge copies src over dst: maps merge key by key, anything else replaces.
func merge(dst, src map[string]interface{}) map[string]interface{} {
	for key, value := range src {
		sub, isMap := value.(map[string]interface{})
		existing, wasMap := dst[key].(map[string]interface{})
		if isMap && wasMap {
			dst[key] = merge(existing, sub)
		} else {
			dst[key] = value
		}
	}
	return dst
}

func setPath(values map[string]interface{}, assignment string) error {
	eq := strings.Index(assignment, "=")
	if eq <= 0 {
		return fmt.Errorf("--set %q: expected path=value", assignment)
	}
	var parsed interface{}
	if err := yaml.Unmarshal([]byte(assignment[eq+1:]), &parsed); err != nil {
		return fmt.Errorf("--set %q: %w", assignment, err)
	}
	keys := strings.Split(assignment[:eq], ".")
	node := values
	for _, key := range keys[:len(keys)-1] {
		next, ok := node[key].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			node[key] = next
		}
		node = next
	}
	node[keys[len(keys)-1]] = parsed
	return nil
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(text string) map[string]interface{} {
	out := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(text), &out); err != nil {
		out["Error"] = err.Error()
	}
	return out
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(text string) map[string]interface{} {
	out := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(text), &out); err != nil {
		out["Error"] = err.Error()
	}
	return out
}

func funcMap(root *template.Template) template.FuncMap {
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	funcs["required"] = func(message string, value interface{}) (interface{}, error) {
		if value == nil {
			return nil, errors.New(message)
		}
		if s, ok := value.(string); ok && s == "" {
			return nil, errors.New(message)
		}
		return value, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return funcs
}

var emptyDocument = regexp.MustCompile(`^(\s*(#[^\n]*)?\n?)*$`)

func run() error {
	var valueFiles, sets listFlag
	name := flag.String("name", "release-name", "the release name (.Release.Name)")
	namespace := flag.String("namespace", "default", "the release namespace (.Release.Namespace)")
	notes := flag.Bool("notes", false, "print templates/NOTES.txt rendered, not the manifests")
	flag.Var(&valueFiles, "f", "a values file merged over values.yaml (repeatable)")
	flag.Var(&sets, "set", "path=value merged over the values (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		return errors.New("usage: helm-render [-f FILE]... [--set path=value]... CHART_DIR")
	}
	chartDir := flag.Arg(0)

	chartMeta, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	chart := map[string]interface{}{}
	for key, value := range chartMeta {
		chart[strings.ToUpper(key[:1])+key[1:]] = value
	}
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if values == nil {
		values = map[string]interface{}{}
	}
	for _, file := range valueFiles {
		extra, err := readYAMLMap(file)
		if err != nil {
			return err
		}
		values = merge(values, extra)
	}
	for _, assignment := range sets {
		if err := setPath(values, assignment); err != nil {
			return err
		}
	}

	chartName, _ := chart["Name"].(string)
	var paths []string
	templatesDir := filepath.Join(chartDir, "templates")
	err = filepath.Walk(templatesDir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)

	root := template.New(chartName)
	root.Funcs(funcMap(root)).Option("missingkey=zero")
	names := map[string]string{}
	for _, path := range paths {
		rel, _ := filepath.Rel(chartDir, path)
		templateName := chartName + "/" + filepath.ToSlash(rel)
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if _, err := root.New(templateName).Parse(string(text)); err != nil {
			return err
		}
		names[path] = templateName
	}

	data := map[string]interface{}{
		"Values": values,
		"Chart":  chart,
		"Release": map[string]interface{}{
			"Name": *name, "Namespace": *namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Template": map[string]interface{}{"BasePath": chartName + "/templates"},
	}
	var out strings.Builder
	for _, path := range paths {
		base := filepath.Base(path)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != *notes {
			continue
		}
		var buf bytes.Buffer
		data["Template"].(map[string]interface{})["Name"] = names[path]
		if err := root.ExecuteTemplate(&buf, names[path], data); err != nil {
			return err
		}
		rendered := strings.ReplaceAll(buf.String(), "<no value>", "")
		if *notes {
			out.WriteString(rendered)
			continue
		}
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(rendered, -1) {
			if emptyDocument.MatchString(doc) {
				continue
			}
			out.WriteString("---\n# Source: " + names[path] + "\n")
			out.WriteString(strings.Trim(doc, "\n") + "\n")
		}
	}
	_, err = os.Stdout.WriteString(out.String())
	return err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
