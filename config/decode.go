package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// decode stores raw, a value from the YAML or an environment string, into
// ptr, a pointer to a Config field. The error does not name the key.
func decode(ptr any, raw any) error {
	switch p := ptr.(type) {
	case *string:
		s, ok := raw.(string)
		if !ok {
			return fmt.Errorf("must be a string, got %s", describe(raw))
		}
		*p = s
	case *bool:
		switch x := raw.(type) {
		case bool:
			*p = x
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return fmt.Errorf("invalid boolean %q, want true or false", x)
			}
			*p = b
		default:
			return fmt.Errorf("must be true or false, got %s", describe(raw))
		}
	case *int:
		switch x := raw.(type) {
		case int:
			*p = x
		case int64:
			if x < math.MinInt || x > math.MaxInt {
				return fmt.Errorf("integer %d out of range", x)
			}
			*p = int(x)
		case uint64:
			if x > math.MaxInt {
				return fmt.Errorf("integer %d out of range", x)
			}
			*p = int(x)
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				return fmt.Errorf("invalid integer %q", x)
			}
			*p = n
		default:
			return fmt.Errorf("must be an integer, got %s", describe(raw))
		}
	case *time.Duration:
		switch x := raw.(type) {
		case string:
			d, err := time.ParseDuration(strings.TrimSpace(x))
			if err != nil {
				if _, nerr := strconv.ParseFloat(strings.TrimSpace(x), 64); nerr == nil {
					return fmt.Errorf("invalid duration %q, missing a unit such as \"s\" or \"ms\"", x)
				}
				return fmt.Errorf("invalid duration %q", x)
			}
			*p = d
		case int, int64, uint64, float64:
			return fmt.Errorf("invalid duration %v, missing a unit such as \"s\" or \"ms\"", x)
		default:
			return fmt.Errorf("must be a duration such as \"1s\", got %s", describe(raw))
		}
	case *float64:
		switch x := raw.(type) {
		case float64:
			*p = x
		case int:
			*p = float64(x)
		case int64:
			*p = float64(x)
		case uint64:
			*p = float64(x)
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return fmt.Errorf("invalid number %q", x)
			}
			*p = f
		default:
			return fmt.Errorf("must be a number, got %s", describe(raw))
		}
	case *[]string:
		switch x := raw.(type) {
		case string:
			*p = splitList(x)
		case []any:
			list := make([]string, 0, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("entry %d must be a string, got %s", i+1, describe(e))
				}
				list = append(list, s)
			}
			*p = list
		default:
			return fmt.Errorf("must be a list or a comma-separated string, got %s", describe(raw))
		}
	default:
		panic(fmt.Sprintf("config: no decoder for %T", ptr))
	}
	return nil
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty entries.
func splitList(s string) []string {
	list := []string{}
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			list = append(list, e)
		}
	}
	return list
}

// describe names the type (and for scalars the value) of a YAML value.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	case int, int64, uint64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case string:
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	default:
		return fmt.Sprintf("a %T", x)
	}
}
