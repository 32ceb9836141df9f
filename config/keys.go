package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/viper"

	"github.com/tsync/tsync/internal/text"
)

// field is one configuration key and the Config field holding it.
type field struct {
	key   string
	index []int
}

// value returns a pointer to the field of c.
func (f field) value(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index).Addr()
}

// fields lists the configuration keys in the order of the Config fields,
// as given by their mapstructure tags.
func fields() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			key := prefix + sf.Tag.Get("mapstructure")
			idx := append(slices.Clone(index), i)
			if sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, key+".", idx)
				continue
			}
			out = append(out, field{key: key, index: idx})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// checkKeys reports the first (in sorted order) key of the YAML that is not
// a configuration key, or a section (temporal, ...) that is not a mapping.
func checkKeys(v *viper.Viper, flds []field, where string) error {
	leaves := make(map[string]bool)
	sections := make(map[string][]string)
	for _, f := range flds {
		leaves[f.key] = true
		if sec, sub, ok := strings.Cut(f.key, "."); ok {
			sections[sec] = append(sections[sec], sub)
		}
	}
	keys := v.AllKeys()
	sort.Strings(keys)
	for _, k := range keys {
		if leaves[k] || underLeaf(k, leaves) {
			continue // a leaf holding a mapping is reported when decoded
		}
		if subs, ok := sections[k]; ok {
			return fmt.Errorf("config: %s: must be a mapping with keys %s, got %s (in %s)",
				k, strings.Join(subs, ", "), describe(v.Get(k)), where)
		}
		first, rest, _ := strings.Cut(k, ".")
		unknown := first
		if _, ok := sections[first]; ok {
			sub, _, _ := strings.Cut(rest, ".")
			unknown = first + "." + sub
		}
		msg := fmt.Sprintf("config: unknown key %q in %s", unknown, where)
		if s := suggest(unknown, flds); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return errors.New(msg)
	}
	return nil
}

func underLeaf(k string, leaves map[string]bool) bool {
	for i := range len(k) {
		if k[i] == '.' && leaves[k[:i]] {
			return true
		}
	}
	return false
}

// suggest returns the configuration key closest to the unknown key, or ""
// if none is close.
func suggest(unknown string, flds []field) string {
	best, bestDist := "", 3
	for _, f := range flds {
		if strings.HasSuffix(f.key, "."+unknown) {
			return f.key // a nested key given at the top level
		}
		if d := text.EditDistance(unknown, f.key); d < bestDist && d < len(unknown)/2 {
			best, bestDist = f.key, d
		}
	}
	return best
}
