package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tsync/tsync/internal/text"
)

// otherVariables are TSYNC_* environment variables that are not
// configuration keys but are read by tsync's tests and tools: UnknownEnv
// does not warn about them. A name ending in "_" stands for every variable
// it starts.
var otherVariables = []string{
	"TSYNC_TEMPORAL_BIN",     // the temporal CLI the tests and `make bench` use
	"TSYNC_RECORD_HISTORIES", // re-record the replay tests' histories
	"TSYNC_ANSIBLE_EVENTS",   // set by the Ansible runner for its callback plugin
	"TSYNC_TEST_",            // test settings (TSYNC_TEST_DATABASE_URL, TSYNC_TEST_TEMPORAL, ...)
	"TSYNC_HELPER_",          // helper processes of the integration tests
	"TSYNC_CLUSTER_",         // the cluster tests (TSYNC_CLUSTER_BIN, ...)
}

// UnknownEnv returns a warning, one line each and sorted, for each TSYNC_*
// variable of environ (in os.Environ form) that overrides no configuration
// key, neither tsync's nor one of sections', nor is one of the variables
// tsync's tests and tools read. Load ignores such a variable, so it is
// most likely a misspelt one; the warning names the closest variable, if
// one is close:
//
//	TSYNC_DATABASE_URLL is not a tsync variable: ignored (did you mean TSYNC_DATABASE_URL?)
func UnknownEnv(environ []string, sections ...Section) []string {
	known := make(map[string]bool)
	for _, f := range fields() {
		for _, n := range f.envNames() {
			known[n] = true
		}
	}
	for _, s := range sections {
		if !sectionNameRE.MatchString(s.Name) {
			continue // Load reports it
		}
		if sf, err := fieldsOfPtr(s.Ptr, s.Name+"."); err == nil {
			for _, f := range sf {
				known[envName(f.key)] = true
			}
		}
	}
	var out []string
	for name := range envMap(environ) {
		if !strings.HasPrefix(name, EnvPrefix) || known[name] || isOtherVariable(name) {
			continue
		}
		msg := fmt.Sprintf("%s is not a tsync variable: ignored", name)
		if s := closestVar(name, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		out = append(out, msg)
	}
	sort.Strings(out)
	return out
}

func isOtherVariable(name string) bool {
	for _, o := range otherVariables {
		if name == o || strings.HasSuffix(o, "_") && strings.HasPrefix(name, o) {
			return true
		}
	}
	return false
}

// closestVar returns the TSYNC_ variable of known closest to name, or "".
func closestVar(name string, known map[string]bool) string {
	unknown := strings.TrimPrefix(name, EnvPrefix)
	best, bestDist := "", 3
	var names []string
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names) // ties go to the first in order
	for _, k := range names {
		if !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		if d := text.EditDistance(unknown, strings.TrimPrefix(k, EnvPrefix)); d < bestDist && d < len(unknown)/2 {
			best, bestDist = k, d
		}
	}
	return best
}

// fieldsOfPtr is fieldsOf for the struct ptr points to.
func fieldsOfPtr(ptr any, prefix string) ([]field, error) {
	b, err := bindSections([]Section{{Name: strings.TrimSuffix(prefix, "."), Ptr: ptr}}, nil)
	if err != nil {
		return nil, err
	}
	return b[0].fields, nil
}
