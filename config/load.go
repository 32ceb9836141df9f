package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/viper"

	"github.com/tsync/tsync/internal/text"
)

// Load reads the YAML configuration file named file over the defaults, then
// applies the overrides found in environ (in os.Environ form, "KEY=VALUE"),
// then validates the result. If file is "", no file is read. A file that
// does not exist is an error. The synchronizer's own sections, if any, are
// decoded too (see Section): their structs are filled only when Load
// succeeds.
func Load(file string, environ []string, sections ...Section) (Config, error) {
	if file == "" {
		return load(source{hint: "a config file"}, nil, environ, sections)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, fmt.Errorf("config: config file %s does not exist", file)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Config{}, fmt.Errorf("config: reading %s: %v", file, err)
	}
	return load(source{where: file, hint: file}, data, environ, sections)
}

// Parse is Load with the YAML given as bytes rather than a file name, for
// example an embedded default configuration. Errors refer to it as "the
// YAML config".
func Parse(yaml []byte, environ []string, sections ...Section) (Config, error) {
	if yaml == nil {
		yaml = []byte{}
	}
	const name = "the YAML config"
	return load(source{where: name, hint: name}, yaml, environ, sections)
}

// source describes where the YAML came from, for error messages.
type source struct {
	where string // "config.yaml" in "unknown key ... in config.yaml"; "" if there is no YAML
	hint  string // where to set a required key: "set it in <hint> or TSYNC_..."
}

// target is a key and a pointer to where its value goes.
type target struct {
	field
	ptr any
}

func load(src source, data []byte, environ []string, sections []Section) (Config, error) {
	c := Default()
	flds := fields()
	bound, err := bindSections(sections, flds)
	if err != nil {
		return Config{}, err
	}
	var targets []target
	for _, f := range flds {
		targets = append(targets, target{f, f.value(&c).Interface()})
	}
	for _, b := range bound {
		for _, f := range b.fields {
			targets = append(targets, target{f, b.ptr(f)})
			flds = append(flds, f)
		}
	}

	var v *viper.Viper
	if data != nil {
		v = viper.New()
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			var pe viper.ConfigParseError
			if errors.As(err, &pe) && pe.Unwrap() != nil {
				err = pe.Unwrap()
			}
			return Config{}, fmt.Errorf("config: invalid YAML in %s: %s", src.where, oneLine(err.Error()))
		}
		if err := checkKeys(v, flds, src.where); err != nil {
			return Config{}, err
		}
	}

	env := envMap(environ)
	from := make(map[string]string) // key -> where its value came from
	for _, t := range targets {
		f, ptr := t.field, t.ptr
		if v != nil {
			if raw := v.Get(f.key); raw != nil {
				if err := decode(ptr, raw); err != nil {
					return Config{}, fmt.Errorf("config: %s: %v (in %s)", f.key, err, src.where)
				}
				if err := checkSecretInFile(f.key, ptr, src.where); err != nil {
					return Config{}, err
				}
				from[f.key] = "in " + src.where
			}
		}
		for _, name := range f.envNames() {
			s := env[name]
			if s == "" {
				continue
			}
			if err := decode(ptr, s); err != nil {
				return Config{}, fmt.Errorf("config: %s: %v (from %s)", f.key, err, name)
			}
			from[f.key] = "from " + name
		}
	}

	if p := c.problem(); p != nil {
		return Config{}, p.err(src, from[p.key])
	}
	for _, b := range bound {
		if err := b.validate(); err != nil {
			return Config{}, err
		}
	}
	for _, b := range bound {
		b.commit()
	}
	return c, nil
}

// oneLine joins the lines of s with "; " (text.OneLine), a line that ends
// with a colon to the next with a space only.
func oneLine(s string) string {
	return strings.ReplaceAll(text.OneLine(s, "; "), ":; ", ": ")
}
