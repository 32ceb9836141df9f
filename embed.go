package tsync

import _ "embed"

// SampleConfig is the sample config.yaml; the demo's embedded default,
// used by the tsync command when no config file is given and there is no
// config.yaml in the working directory.
//
//go:embed config.yaml
var SampleConfig []byte
