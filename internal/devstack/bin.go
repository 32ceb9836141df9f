package devstack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// FindTemporalBin returns the temporal CLI to run: flag when set, else
// bin/temporal next to the go.mod at or above the working directory, else
// `temporal` on PATH.
func FindTemporalBin(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			if p, lerr := exec.LookPath(flag); lerr == nil {
				return p, nil
			}
			return "", fmt.Errorf("temporal CLI %s: %w", flag, err)
		}
		return flag, nil
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, "bin", "temporal")
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", errors.New("temporal CLI not found: run `make tools` (builds bin/temporal), put `temporal` on PATH, or pass --temporal-bin")
}
