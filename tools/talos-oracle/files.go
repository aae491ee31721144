package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// withFiles writes each text to a private temporary file and calls fn with their paths, for machinery
// functions that only read files (secrets.LoadBundle, configpatcher.LoadPatches with @file).
func withFiles(texts []string, fn func(paths []string)) error {
	dir, err := os.MkdirTemp("", "talos-oracle-")
	if err != nil {
		return err
	}

	defer os.RemoveAll(dir) //nolint:errcheck

	paths := make([]string, len(texts))

	for i, text := range texts {
		paths[i] = filepath.Join(dir, fmt.Sprintf("%d.yaml", i))

		if err = os.WriteFile(paths[i], []byte(text), 0o600); err != nil {
			return err
		}
	}

	fn(paths)

	return nil
}
