package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

// WatcherLog is the file, in the backend directory, to which the demo's
// watcher appends a line for every change it handles.
const WatcherLog = "watcher.log"

// NetworkWatcher is the demo's watcher (it runs with
// observer_enable_watchers): an Instance's file in the backend holds the
// CIDR of its network, and the Instance step writes it only when the
// Instance itself changes. When a Network's cidr changes, the watcher
// rewrites the file of every instance on that network with the new CIDR,
// and appends a line to WatcherLog. Changes to other columns of the network
// do not fire it (the link's Into is "cidr").
func (b *Backend) NetworkWatcher() tsync.Watcher {
	return tsync.WatcherOf[Instance](tsync.WatcherFuncs[Instance]{
		Name:   "InstanceNetwork",
		Links:  []models.Link{models.LinkInto[Network]("network_id", "cidr")},
		Handle: b.networkChanged,
	})
}

func (b *Backend) networkChanged(ctx context.Context, i *Instance, ev tsync.WatchEvent) error {
	slice, err := models.Load[Slice](ctx, b.Store, i.SliceID)
	if err != nil {
		return fmt.Errorf("instance %d: %w", i.ID, err)
	}
	network, err := models.Load[Network](ctx, b.Store, i.NetworkID)
	if err != nil {
		return fmt.Errorf("instance %d: %w", i.ID, err)
	}
	path := filepath.Join(b.slice(slice.SiteID, slice.ID), "instances", fmt.Sprintf("%d.json", i.ID))
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Not in the backend yet: its step will write the current CIDR.
		return b.logWatch(ev, "instance %d is not in the backend yet: its step will write the CIDR", i.ID)
	}
	if err != nil {
		return err
	}
	var entry map[string]any
	if err := json.Unmarshal(data, &entry); err != nil {
		return fmt.Errorf("instance %d: %s: %w", i.ID, path, err)
	}
	if entry["cidr"] == network.CIDR && entry["network"] == network.Name {
		return b.logWatch(ev, "instance %d: cidr %s is in the backend already", i.ID, network.CIDR)
	}
	entry["cidr"], entry["network"] = network.CIDR, network.Name
	if err := writeJSONUnique(path, entry); err != nil {
		return err
	}
	return b.logWatch(ev, "instance %d: cidr is now %s", i.ID, network.CIDR)
}

// logWatch appends a line to WatcherLog: the time, the change and what the
// watcher did, e.g.
//
//	2026-11-25T16:40:41.3Z Network 1 update [cidr] (change 3f2a...): instance 2: cidr is now 10.9.0.0/24
func (b *Backend) logWatch(ev tsync.WatchEvent, format string, args ...any) error {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(b.Dir, WatcherLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	change := fmt.Sprintf("%s %d %s", ev.Changed.Model, ev.Changed.ID, ev.Op)
	if len(ev.Fields) > 0 {
		change += " [" + strings.Join(ev.Fields, " ") + "]"
	}
	_, err = fmt.Fprintf(f, "%s %s (change %s): %s\n", time.Now().UTC().Format(time.RFC3339Nano), change, ev.ID, fmt.Sprintf(format, args...))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeJSONUnique writes v to path atomically through a temporary file of
// its own, so that it never collides with a step writing the same entry.
func writeJSONUnique(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".watch-*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
