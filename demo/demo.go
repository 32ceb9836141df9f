// Package demo is the synchronizer that ships with tsync: five models with a
// chain and a shared dependency, and steps that keep a directory tree on this
// machine in step with them.
//
// The models form a diamond: an Instance depends on its Slice and its Network,
// and both depend on their Site. A Service, synced by an Ansible playbook,
// depends on its Site too.
//
//	Site <- Slice <- Instance
//	Site <- Network <- Instance
//	Site <- Service
//
// The backend is the directory demo_dir:
//
//	sites/<site>/site.json
//	sites/<site>/networks/<network>.json
//	sites/<site>/slices/<slice>/slice.json
//	sites/<site>/slices/<slice>/instances/<instance>.json
//	services/<service>.json   (written by Ansible: see Service, ServiceStep)
//
// Each step refuses to write below a parent that is not in the backend yet,
// so a sync out of dependency order fails loudly; each delete removes only
// its own entry, so a delete out of reverse order fails too.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

// Site is a place that holds slices and networks.
type Site struct {
	models.Base
	Name string `db:"name"`
}

// Network is a network of a site, shared by instances of several slices.
type Network struct {
	models.Base
	Name   string `db:"name"`
	CIDR   string `db:"cidr"`
	SiteID int64  `db:"site_id"`
}

// Slice is a share of a site's resources.
type Slice struct {
	models.Base
	Name         string `db:"name"`
	SiteID       int64  `db:"site_id"`
	MaxInstances int64  `db:"max_instances"`
}

// Instance is a machine of a slice, attached to a network.
type Instance struct {
	models.Base
	Name      string `db:"name"`
	Image     string `db:"image"`
	SliceID   int64  `db:"slice_id"`
	NetworkID int64  `db:"network_id"`
}

// Models returns a registry of the demo's models.
func Models() *models.Registry {
	reg := models.NewRegistry()
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Network](reg, "Network", models.LinkTo[Site]("site_id"))
	models.MustRegister[Slice](reg, "Slice", models.LinkTo[Site]("site_id"))
	models.MustRegister[Instance](reg, "Instance",
		models.LinkTo[Slice]("slice_id"),
		models.LinkInto[Network]("network_id", "cidr"))
	registerService(reg)
	return reg
}

// Backend is the demo's backend: a directory tree.
type Backend struct {
	// Dir is the root of the tree.
	Dir string
	// Store loads the parents an entry is written below.
	Store *models.Store

	// logMu serializes the watcher's appends to WatcherLog.
	logMu sync.Mutex
}

func (b *Backend) site(id int64) string {
	return filepath.Join(b.Dir, "sites", strconv.FormatInt(id, 10))
}

func (b *Backend) slice(siteID, id int64) string {
	return filepath.Join(b.site(siteID), "slices", strconv.FormatInt(id, 10))
}

// Synchronizer returns the demo synchronizer writing to b.
func Synchronizer(b *Backend) tsync.Synchronizer {
	return tsync.Synchronizer{
		Models: Models(),
		Steps: []tsync.Step{
			tsync.StepOf[Site](tsync.StepFuncs[Site]{Sync: b.syncSite, Delete: b.deleteSite}),
			tsync.StepOf[Network](tsync.StepFuncs[Network]{Sync: b.syncNetwork, Delete: b.deleteNetwork}),
			tsync.StepOf[Slice](tsync.StepFuncs[Slice]{Sync: b.syncSlice, Delete: b.deleteSlice}),
			tsync.StepOf[Instance](tsync.StepFuncs[Instance]{Sync: b.syncInstance, Delete: b.deleteInstance}),
		},
		AnsibleSteps: []tsync.AnsibleStep{b.ServiceStep()},
		Watchers:     []tsync.Watcher{b.NetworkWatcher()},
	}
}

func (b *Backend) syncSite(_ context.Context, s *Site) error {
	dir := b.site(s.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "site.json"), map[string]any{"id": s.ID, "name": s.Name})
}

func (b *Backend) deleteSite(_ context.Context, s *Site) error {
	dir := b.site(s.ID)
	return removeAll(filepath.Join(dir, "site.json"), filepath.Join(dir, "networks"), filepath.Join(dir, "slices"), dir)
}

func (b *Backend) syncNetwork(_ context.Context, n *Network) error {
	if err := present(filepath.Join(b.site(n.SiteID), "site.json"), "site", n.SiteID); err != nil {
		return err
	}
	dir := filepath.Join(b.site(n.SiteID), "networks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, fmt.Sprintf("%d.json", n.ID)), map[string]any{"id": n.ID, "name": n.Name, "cidr": n.CIDR})
}

func (b *Backend) deleteNetwork(_ context.Context, n *Network) error {
	return removeAll(filepath.Join(b.site(n.SiteID), "networks", fmt.Sprintf("%d.json", n.ID)))
}

func (b *Backend) syncSlice(_ context.Context, s *Slice) error {
	if err := present(filepath.Join(b.site(s.SiteID), "site.json"), "site", s.SiteID); err != nil {
		return err
	}
	dir := b.slice(s.SiteID, s.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "slice.json"), map[string]any{"id": s.ID, "name": s.Name, "max_instances": s.MaxInstances})
}

func (b *Backend) deleteSlice(_ context.Context, s *Slice) error {
	dir := b.slice(s.SiteID, s.ID)
	return removeAll(filepath.Join(dir, "slice.json"), filepath.Join(dir, "instances"), dir)
}

func (b *Backend) syncInstance(ctx context.Context, i *Instance) error {
	slice, err := models.Load[Slice](ctx, b.Store, i.SliceID)
	if err != nil {
		return fmt.Errorf("instance %d: %w", i.ID, err)
	}
	network, err := models.Load[Network](ctx, b.Store, i.NetworkID)
	if err != nil {
		return fmt.Errorf("instance %d: %w", i.ID, err)
	}
	sliceDir := b.slice(slice.SiteID, slice.ID)
	if err := present(filepath.Join(sliceDir, "slice.json"), "slice", slice.ID); err != nil {
		return err
	}
	if err := present(filepath.Join(b.site(network.SiteID), "networks", fmt.Sprintf("%d.json", network.ID)), "network", network.ID); err != nil {
		return err
	}
	dir := filepath.Join(sliceDir, "instances")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, fmt.Sprintf("%d.json", i.ID)), map[string]any{
		"id": i.ID, "name": i.Name, "image": i.Image, "network": network.Name, "cidr": network.CIDR,
	})
}

func (b *Backend) deleteInstance(ctx context.Context, i *Instance) error {
	slice, err := models.Load[Slice](ctx, b.Store, i.SliceID)
	if err != nil {
		return fmt.Errorf("instance %d: %w", i.ID, err)
	}
	return removeAll(filepath.Join(b.slice(slice.SiteID, slice.ID), "instances", fmt.Sprintf("%d.json", i.ID)))
}

// present fails unless the parent entry at path is in the backend.
func present(path, kind string, id int64) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s %d is not in the backend (%s): %w", kind, id, path, err)
	}
	return nil
}

// writeJSON writes v to path atomically.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeAll removes each path in turn (directories must be empty by then);
// what is gone already is fine, so a retried delete converges.
func removeAll(paths ...string) error {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Seed inserts sites sites, each with two networks, two slices of three
// instances spread over the networks, and a Service (the Ansible step's
// model), and returns how many objects it made: 12 per site.
func Seed(ctx context.Context, store *models.Store, sites int) (int, error) {
	n := 0
	insert := func(obj models.Object) error {
		if err := store.Insert(ctx, obj); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		n++
		return nil
	}
	for s := 1; s <= sites; s++ {
		site := &Site{Name: fmt.Sprintf("site-%d", s)}
		if err := insert(site); err != nil {
			return n, err
		}
		var nets []*Network
		for k := 1; k <= 2; k++ {
			net := &Network{Name: fmt.Sprintf("site-%d-net-%d", s, k), CIDR: fmt.Sprintf("10.%d.%d.0/24", s, k), SiteID: site.ID}
			if err := insert(net); err != nil {
				return n, err
			}
			nets = append(nets, net)
		}
		for k := 1; k <= 2; k++ {
			slice := &Slice{Name: fmt.Sprintf("site-%d-slice-%d", s, k), SiteID: site.ID, MaxInstances: 10}
			if err := insert(slice); err != nil {
				return n, err
			}
			for i := 1; i <= 3; i++ {
				inst := &Instance{Name: fmt.Sprintf("%s-vm-%d", slice.Name, i), Image: "debian-12", SliceID: slice.ID, NetworkID: nets[i%2].ID}
				if err := insert(inst); err != nil {
					return n, err
				}
			}
		}
		if err := insert(siteService(site)); err != nil {
			return n, err
		}
	}
	return n, nil
}
