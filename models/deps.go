package models

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// DepsFile renders the graph as a model-deps file (as XOS's
// observer_dependency_graph): a JSON object mapping each model to the sorted
// models it depends on. A model that links to itself (a tree) lists itself.
func (g *Graph) DepsFile() []byte {
	deps := map[string][]string{}
	for _, name := range g.order {
		list := []string{}
		for _, l := range g.models[name].Links {
			if !slices.Contains(list, l.Dest) {
				list = append(list, l.Dest)
			}
		}
		slices.Sort(list)
		deps[name] = list
	}
	out, _ := json.MarshalIndent(deps, "", "  ") // a map of strings always marshals
	return append(out, '\n')
}

// ParseDepsFile parses a model-deps file.
func ParseDepsFile(data []byte) (map[string][]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var deps map[string][]string
	if err := dec.Decode(&deps); err != nil {
		return nil, fmt.Errorf("model-deps file: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("model-deps file: data after the JSON object")
	}
	if deps == nil {
		return nil, fmt.Errorf("model-deps file: want a JSON object of model -> [models]")
	}
	for model, list := range deps {
		if !identifier.MatchString(model) {
			return nil, fmt.Errorf("model-deps file: bad model name %q", model)
		}
		for _, d := range list {
			if !identifier.MatchString(d) {
				return nil, fmt.Errorf("model-deps file: model %s: bad dependency name %q", model, d)
			}
		}
	}
	return deps, nil
}

// CheckDepsFile compares a model-deps file with the graph and reports every
// difference in one error.
func (g *Graph) CheckDepsFile(data []byte) error {
	file, err := ParseDepsFile(data)
	if err != nil {
		return err
	}
	var code map[string][]string
	if err := json.Unmarshal(g.DepsFile(), &code); err != nil {
		return err
	}
	var diffs []string
	for _, model := range sortedKeys(code) {
		want, ok := file[model]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("model %s is missing from the file", model))
			continue
		}
		got := slices.Clone(want)
		slices.Sort(got)
		if !slices.Equal(got, code[model]) {
			diffs = append(diffs, fmt.Sprintf("model %s: the file says %v, the code says %v", model, got, code[model]))
		}
	}
	for _, model := range sortedKeys(file) {
		if _, ok := code[model]; !ok {
			diffs = append(diffs, fmt.Sprintf("model %s is in the file but not registered", model))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("model-deps file disagrees with the code: %s", strings.Join(diffs, "; "))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
