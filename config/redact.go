package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
)

// Redacted returns a copy of c whose DatabaseURL and RedisURL have their
// passwords (in the user info or in a password-like query parameter)
// replaced by "xxxxx", and whose Temporal API key (if any) is "xxxxx". A
// URL that does not parse is replaced whole. (Environ, meant for a child's
// environment, carries the secrets.)
func (c Config) Redacted() Config {
	c.ObserverApplist = slices.Clone(c.ObserverApplist)
	c.DatabaseURL = redactURL(c.DatabaseURL)
	c.RedisURL = redactURL(c.RedisURL)
	if c.Temporal.APIKey != "" {
		c.Temporal.APIKey = "xxxxx"
	}
	return c
}

// plain has the fields of Config but none of its methods, so that it can be
// formatted without recursing into String.
type plain Config

// String formats the redacted configuration.
func (c Config) String() string {
	return fmt.Sprintf("%+v", plain(c.Redacted()))
}

// GoString formats the redacted configuration for the %#v verb.
func (c Config) GoString() string {
	return strings.Replace(fmt.Sprintf("%#v", plain(c.Redacted())), "config.plain", "config.Config", 1)
}

// LogValue implements slog.LogValuer: the redacted configuration as a group
// with one attribute per key.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	flds := fields()
	attrs := make([]slog.Attr, 0, len(flds))
	for _, f := range flds {
		attrs = append(attrs, slog.Any(f.key, f.value(&r).Elem().Interface()))
	}
	return slog.GroupValue(attrs...)
}

// redactURL hides the password of the URL s. A URL that does not parse is
// replaced whole, since it may hold a password anywhere.
func redactURL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[REDACTED]"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "[REDACTED]"
		} else {
			changed := false
			for k, vs := range q {
				lk := strings.ToLower(k)
				if strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
					for i := range vs {
						vs[i] = "xxxxx"
					}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	return u.String()
}
