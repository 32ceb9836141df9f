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
// does not exist is an error.
func Load(file string, environ []string) (Config, error) {
	if file == "" {
		return load(source{hint: "a config file"}, nil, environ)
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
	return load(source{where: file, hint: file}, data, environ)
}

// Parse is Load with the YAML given as bytes rather than a file name, for
// example an embedded default configuration. Errors refer to it as "the
// YAML config".
func Parse(yaml []byte, environ []string) (Config, error) {
	if yaml == nil {
		yaml = []byte{}
	}
	const name = "the YAML config"
	return load(source{where: name, hint: name}, yaml, environ)
}

// source describes where the YAML came from, for error messages.
type source struct {
	where string // "config.yaml" in "unknown key ... in config.yaml"; "" if there is no YAML
	hint  string // where to set a required key: "set it in <hint> or TSYNC_..."
}

func load(src source, data []byte, environ []string) (Config, error) {
	c := Default()
	flds := fields()

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
	for _, f := range flds {
		ptr := f.value(&c).Interface()
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
	return c, nil
}

// oneLine joins the lines of s with "; " (text.OneLine), a line that ends
// with a colon to the next with a space only.
func oneLine(s string) string {
	return strings.ReplaceAll(text.OneLine(s, "; "), ":; ", ": ")
}
