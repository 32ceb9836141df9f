package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/demo"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// The demo synchronizer keeps a directory tree in step with its objects,
// creating and removing entries in dependency order.
func TestDemoBackendFollowsModel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, backend, n := openDemo(ctx, t, nil)
	require.Equal(t, 12, n)
	go func() { _ = a.RunWorker(ctx) }()
	go func() { _ = a.RunStarter(ctx) }()

	countPending := func() int {
		total := 0
		for _, model := range []string{"Site", "Network", "Slice", "Instance", "Service"} {
			ids, err := syncstate.New(a.Store).FetchPending(ctx, model, false, 0, 100)
			require.NoError(t, err)
			total += len(ids)
			del, err := syncstate.New(a.Store).FetchPending(ctx, model, true, 0, 100)
			require.NoError(t, err)
			total += len(del)
		}
		return total
	}
	require.Eventually(t, func() bool { return countPending() == 0 }, 60*time.Second, 50*time.Millisecond)

	var files []string
	require.NoError(t, filepath.WalkDir(backend.Dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(backend.Dir, p)
			files = append(files, rel)
		}
		return err
	}))
	require.Len(t, files, 12)
	inst, err := models.Load[demo.Instance](ctx, a.Store, 1)
	require.NoError(t, err)
	slice, err := models.Load[demo.Slice](ctx, a.Store, inst.SliceID)
	require.NoError(t, err)
	net, err := models.Load[demo.Network](ctx, a.Store, inst.NetworkID)
	require.NoError(t, err)
	path := filepath.Join(backend.Dir, "sites", fmt.Sprint(slice.SiteID), "slices", fmt.Sprint(slice.ID), "instances", "1.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, inst.Name, got["name"])
	require.Equal(t, net.CIDR, got["cidr"])

	// The Service's file was written by its Ansible playbook, the banner's
	// quotes, $(...) and {{ ... }} verbatim.
	svc, err := models.Load[demo.Service](ctx, a.Store, 1)
	require.NoError(t, err)
	svcPath := filepath.Join(backend.Dir, "services", "1.json")
	data, err = os.ReadFile(svcPath)
	require.NoError(t, err)
	got = nil
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, svc.Banner, got["banner"])
	require.Contains(t, svc.Banner, "{{ and so is this }}")
	require.FileExists(t, filepath.Join(a.Config.ObserverSysDir, "Service", "1", "sync", "run.sh"))

	// Change a network's CIDR: its file follows.
	net.CIDR = "192.168.77.0/24"
	require.NoError(t, a.Store.Save(ctx, net))
	netPath := filepath.Join(backend.Dir, "sites", fmt.Sprint(net.SiteID), "networks", fmt.Sprintf("%d.json", net.ID))
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(netPath)
		return err == nil && json.Unmarshal(data, &got) == nil && got["cidr"] == "192.168.77.0/24"
	}, 30*time.Second, 50*time.Millisecond)

	// Delete the whole site: everything goes, dependents first.
	for _, model := range []string{"Instance", "Slice", "Network", "Service", "Site"} {
		for id := int64(1); id <= 6; id++ {
			if _, err := a.Store.Get(ctx, model, id); err == nil {
				require.NoError(t, a.Store.Delete(ctx, model, id))
			}
		}
	}
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(backend.Dir, "sites", "1"))
		return os.IsNotExist(err)
	}, 60*time.Second, 50*time.Millisecond, "site directory still there")
	require.NoFileExists(t, svcPath)
	require.Eventually(t, func() bool { return countPending() == 0 }, 30*time.Second, 50*time.Millisecond, "rows not purged")
}
