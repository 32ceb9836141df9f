package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Section is a synchronizer's own configuration: a top-level mapping of the
// config file named Name, whose keys are the mapstructure tags of the
// struct Ptr points to, each overridden by TSYNC_<NAME>_<KEY>. Load and
// Parse check and decode it as they do tsync's own keys: an unknown key in
// it is an error with a "did you mean", a value of the wrong type a
// one-line error naming the key and where the value came from.
//
//	type Options struct {
//		TargetDir string `mapstructure:"target_dir"`
//	}
//	opts := Options{TargetDir: "var/mysync"} // the defaults
//	cfg, err := config.Load("config.yaml", os.Environ(), config.Section{Name: "mysync", Ptr: &opts})
//
// reads
//
//	mysync:
//	  target_dir: /srv/mysync   # or TSYNC_MYSYNC_TARGET_DIR=/srv/mysync
type Section struct {
	// Name is the section's key: lower-case letters, digits and '_',
	// starting with a letter, and not one of tsync's keys.
	Name string
	// Ptr points to a struct holding the defaults; Load fills it only when
	// it succeeds. Its fields are string, bool, int, float64,
	// time.Duration, []string or structs of those (a nested mapping), each
	// with a mapstructure tag. If *Ptr has a method Validate() error, Load
	// calls it after decoding and reports its error as the section's.
	Ptr any
}

var sectionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// boundSection is a checked Section, decoded into a copy of *Ptr.
type boundSection struct {
	Section
	fields []field
	tmp    reflect.Value // a pointer to the copy
}

// ptr returns a pointer to f's field in the copy.
func (b boundSection) ptr(f field) any {
	return b.tmp.Elem().FieldByIndex(f.index).Addr().Interface()
}

// bindSections checks secs against tsync's keys and each other, and copies
// their structs. The errors are the program's, not the user's.
func bindSections(secs []Section, flds []field) ([]boundSection, error) {
	taken := make(map[string]string) // env name or top-level key -> what has it
	for _, f := range flds {
		if top, _, nested := strings.Cut(f.key, "."); nested {
			taken[top] = "tsync's section " + top
		} else {
			taken[top] = "tsync's key " + top
		}
		for _, n := range f.envNames() {
			taken[n] = "tsync's key " + f.key
		}
	}
	var out []boundSection
	for _, s := range secs {
		if !sectionNameRE.MatchString(s.Name) {
			return nil, fmt.Errorf("config: section name %q must match %s", s.Name, sectionNameRE)
		}
		if by, ok := taken[s.Name]; ok {
			return nil, fmt.Errorf("config: section %q clashes with %s", s.Name, by)
		}
		v := reflect.ValueOf(s.Ptr)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return nil, fmt.Errorf("config: section %q: Ptr must be a non-nil pointer to a struct, got %T", s.Name, s.Ptr)
		}
		sf, err := fieldsOf(v.Elem().Type(), s.Name+".")
		if err != nil {
			return nil, fmt.Errorf("config: section %q: %w", s.Name, err)
		}
		for _, f := range sf {
			for _, n := range f.envNames() {
				if by, ok := taken[n]; ok {
					return nil, fmt.Errorf("config: section %q: key %s has the variable %s of %s", s.Name, f.key, n, by)
				}
				taken[n] = "section " + s.Name
			}
		}
		taken[s.Name] = "section " + s.Name
		tmp := reflect.New(v.Elem().Type())
		tmp.Elem().Set(v.Elem())
		out = append(out, boundSection{Section: s, fields: sf, tmp: tmp})
	}
	return out, nil
}

// fieldsOf lists the keys of a section's struct type t, each prefixed,
// checking that every field has a mapstructure tag and a type decode knows.
func fieldsOf(t reflect.Type, prefix string) ([]field, error) {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int) error
	walk = func(t reflect.Type, prefix string, index []int) error {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag, _, _ := strings.Cut(sf.Tag.Get("mapstructure"), ",")
			if !sf.IsExported() || tag == "" || tag == "-" || tag != strings.ToLower(tag) {
				return fmt.Errorf("field %s needs to be exported, with a lower-case mapstructure tag", sf.Name)
			}
			key := prefix + tag
			idx := append(slices.Clone(index), i)
			switch sf.Type {
			case reflect.TypeFor[string](), reflect.TypeFor[bool](), reflect.TypeFor[int](),
				reflect.TypeFor[float64](), reflect.TypeFor[time.Duration](), reflect.TypeFor[[]string]():
				out = append(out, field{key: key, index: idx})
				continue
			}
			if sf.Type.Kind() != reflect.Struct {
				return fmt.Errorf("key %s: type %s is not string, bool, int, float64, time.Duration, []string or a struct", key, sf.Type)
			}
			if err := walk(sf.Type, key+".", idx); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(t, prefix, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// validate calls the section's Validate method, if it has one.
func (b boundSection) validate() error {
	if v, ok := b.tmp.Interface().(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("config: %s: %v", b.Name, err)
		}
	}
	return nil
}

// commit copies the decoded struct into *Ptr.
func (b boundSection) commit() {
	reflect.ValueOf(b.Ptr).Elem().Set(b.tmp.Elem())
}
