package config

import _ "embed"

// Sample is the sample config.yaml: every key with its default, documented.
// It is the tsync command's embedded default, used when neither --config
// nor ./config.yaml is given, and what `tsync new` scaffolds start from.
//
//go:embed sample.yaml
var Sample []byte
