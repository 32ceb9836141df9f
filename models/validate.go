package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"unicode/utf8"
)

// ErrInvalidValue is wrapped by every FieldError.
var ErrInvalidValue = errors.New("invalid value")

// FieldError is a content field value PostgreSQL cannot store as given: text
// that is not valid UTF-8 or holds a NUL byte (text and jsonb columns refuse
// both, and JSON encoding would silently replace invalid bytes), a
// json.RawMessage that is not JSON, or a NaN or infinite number in a jsonb
// map. Insert and Save return it before writing anything.
type FieldError struct {
	// Model and Column name the field; GoName is its struct field.
	Model, Column, GoName string
	// Path locates the bad value inside the field: "" for the field
	// itself, "[2]" for an element of a []string, `["key"]` for a map entry.
	Path string
	// Reason says what is wrong, e.g. "invalid UTF-8 at byte 3".
	Reason string
}

func (e *FieldError) Error() string {
	hint := ""
	if strings.Contains(e.Reason, "UTF-8") || strings.Contains(e.Reason, "NUL") {
		hint = " (binary data belongs in a []byte field)"
	}
	return fmt.Sprintf("model %s field %s (column %s)%s: %s%s", e.Model, e.GoName, e.Column, e.Path, e.Reason, hint)
}

// Unwrap makes errors.Is(err, ErrInvalidValue) hold.
func (e *FieldError) Unwrap() error { return ErrInvalidValue }

// Check returns a *FieldError for the first content field of obj that
// PostgreSQL cannot store as given, and nil when all can be.
func (m *Model) Check(obj Object) error {
	v := reflect.ValueOf(obj).Elem()
	for _, f := range m.Fields {
		if path, reason := checkValue(v.FieldByIndex(f.index), ""); reason != "" {
			return &FieldError{Model: m.Name, Column: f.Column, GoName: f.GoName, Path: path, Reason: reason}
		}
	}
	return nil
}

// checkValue walks a field's value and returns where and why the first
// unstorable part is, or "" reasons when all is well.
func checkValue(v reflect.Value, path string) (string, string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", ""
		}
		return checkValue(v.Elem(), path)
	case reflect.String:
		return path, textProblem(v.String())
	case reflect.Float32, reflect.Float64:
		// A float column takes NaN and ±Infinity; only JSON (inside a map)
		// cannot hold them.
		if path != "" && (math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0)) {
			return path, fmt.Sprintf("%v cannot be stored in JSON", v.Float())
		}
	case reflect.Slice:
		if v.Type() == rawType {
			if v.Len() == 0 {
				return "", "" // stored as NULL
			}
			if r := textProblem(string(v.Bytes())); r != "" {
				return path, r
			}
			var doc any
			if err := json.Unmarshal(v.Bytes(), &doc); err != nil {
				return path, "not valid JSON: " + err.Error()
			}
			return checkValue(reflect.ValueOf(&doc), path)
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", "" // bytea holds any bytes
		}
		for i := range v.Len() {
			if p, r := checkValue(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); r != "" {
				return p, r
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			key := iter.Key()
			kp := fmt.Sprintf("%s[%q]", path, strings.ToValidUTF8(key.String(), "\uFFFD"))
			if key.Kind() == reflect.String {
				if r := textProblem(key.String()); r != "" {
					return kp, "key: " + r
				}
			}
			if p, r := checkValue(iter.Value(), kp); r != "" {
				return p, r
			}
		}
	}
	return "", ""
}

// textProblem says why PostgreSQL's text cannot hold s, or "".
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		for i, r := range s {
			if r == utf8.RuneError {
				if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
					return fmt.Sprintf("invalid UTF-8 at byte %d", i)
				}
			}
		}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Sprintf("NUL byte at byte %d", i)
	}
	return ""
}
