package objectview_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/inspect/inspecttest"
	"github.com/tsync/tsync/internal/objectview"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/internal/syncstate"
	"github.com/tsync/tsync/models"
)

// chromium returns the browser to drive: TSYNC_CHROMIUM, else chromium on
// PATH (Debian's package). Without one the test skips, except in CI
// (CI=true), where it fails: scripts/ensure-tools.sh installs it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TSYNC_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (apt-get install chromium; make tools does): %v", err)
		}
		t.Skipf("chromium is not installed (apt-get install chromium, or make tools): %v", err)
	}
	return p
}

// browser starts a headless chromium with a fresh profile and returns its
// context, ended with the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	return bctx
}

// value runs a in the browser and returns its value.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// steps runs steps in the browser, in order.
func steps(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// screenshot saves the whole page as name (a PNG) in dir.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := value(t, ctx, chromedp.FullScreenshot(100))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
}

// In a real browser: open the error list (with the token, as a browser
// does: ?token= once, then its cookie), see the errors marked red and
// their markup shown as text, click the Instance in error, and check its
// page: the status text, the red mark, and its dependency chain. Then a
// page refreshes itself when the object changes. Screenshots go to the
// test's artifact directory (kept with go test -artifacts, under
// -outputdir; logged).
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	f := inspecttest.New(t)
	in := inspect.New(f.Store, nil, inspect.Options{Synchronizer: "demo", Namespace: "default", UIURL: "http://127.0.0.1:8233"})
	const token = "browser-token"
	v, err := objectview.New(in, objectview.Options{Token: token, Title: "demo", Refresh: time.Minute})
	require.NoError(t, err)
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	shots := t.ArtifactDir()
	t.Logf("screenshots in %s", shots)

	// Without the token: 401.
	steps(t, ctx, chromedp.Navigate(srv.URL+"/objects?state=error"))
	require.Contains(t, value(t, ctx, chromedp.Text(chromedp.CSS("body"))), "401 unauthorized")

	// The error list, the token given once.
	steps(t, ctx,
		chromedp.Navigate(srv.URL+"/objects?state=error&token="+url.QueryEscape(token)),
		chromedp.WaitVisible(chromedp.CSS("#objects")))
	require.Equal(t, srv.URL+"/objects?state=error", value(t, ctx, chromedp.Location()))
	require.Equal(t, []string{
		fmt.Sprintf("Site/%d row-error", f.Failed.ID),
		fmt.Sprintf("Instance/%d row-error", f.Broken.ID),
	}, value(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#objects tbody tr')).map(r => r.dataset.ref + ' ' + r.className)`)))
	require.Equal(t, []string{"rgb(209, 42, 42)", "rgb(209, 42, 42)"},
		value(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#objects tbody tr .mark')).map(m => getComputedStyle(m).color)`)),
		"the error marks are red")
	// The status holding markup is shown as text, not run.
	require.Contains(t, value(t, ctx, chromedp.Text(chromedp.CSS("#objects"))), inspecttest.ErrorText)
	require.Zero(t, value(t, ctx, chromedp.Evaluate[int](`document.scripts.length`)))
	screenshot(t, ctx, shots, "1-error-list.png")

	// Click the Instance in error.
	steps(t, ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-ref="Instance/%d"] a.object-link`, f.Broken.ID))),
		chromedp.WaitVisible(chromedp.CSS("#object-title")))
	require.Equal(t, srv.URL+fmt.Sprintf("/objects/Instance/%d", f.Broken.ID), value(t, ctx, chromedp.Location()))
	require.Equal(t, inspecttest.BrokenText, value(t, ctx, chromedp.Text(chromedp.CSS("#status"))))
	require.Contains(t, value(t, ctx, chromedp.Text(chromedp.CSS("#state"))), "error")
	require.Equal(t, "rgb(209, 42, 42)",
		value(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#object-title .mark')).color`)),
		"the object's mark is red")
	require.Equal(t, []string{
		fmt.Sprintf("Slice/%d ✓ in sync indent 0px", f.Synced.ID),
		fmt.Sprintf("Site/%d ✓ in sync indent 20px", f.InSync.ID),
	}, value(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#dependencies li')).map(li =>
		li.dataset.ref + ' ' + li.querySelector('.state').textContent.trim() + ' indent ' + getComputedStyle(li).marginLeft)`)))
	screenshot(t, ctx, shots, "2-object-in-error.png")

	// The overview: counts and the graph, drawn.
	steps(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("svg.graph")))
	require.Equal(t, 5, value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.graph a.node').length`)))
	require.Equal(t, 3, value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.graph path.edge').length`)))
	screenshot(t, ctx, shots, "3-overview.png")

	// A page refreshes itself: the object's status changes in the
	// database, and its page shows the new one without being reloaded.
	fast, err := objectview.New(in, objectview.Options{Token: token, Title: "demo", Refresh: time.Second})
	require.NoError(t, err)
	fastSrv := httptest.NewServer(fast)
	t.Cleanup(fastSrv.Close)
	page := fastSrv.URL + fmt.Sprintf("/objects/Instance/%d", f.Broken.ID)
	steps(t, ctx, chromedp.Navigate(page+"?token="+token), chromedp.WaitVisible(chromedp.CSS("#status")))
	require.NoError(t, syncstate.New(f.Store).RecordError(storetest.Ctx(t), models.Ref{Model: "Instance", ID: f.Broken.ID}, "boot failed again"))
	// (Polled from here, each read retried: a page reloading under a
	// script loses it.)
	var seen string
	require.Eventually(t, func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ' | ' + (document.querySelector('#status') ? document.querySelector('#status').textContent : '')`))
		seen = v
		return err == nil && strings.Contains(v, "boot failed again")
	}, time.Minute, 200*time.Millisecond)
	require.Equal(t, page+" | "+inspecttest.BrokenText+" // boot failed again", seen)
	require.Eventually(t, func() bool {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		return err == nil && os.WriteFile(filepath.Join(shots, "4-refreshed.png"), png, 0o644) == nil
	}, time.Minute, 200*time.Millisecond)
	for _, name := range []string{"1-error-list.png", "2-object-in-error.png", "3-overview.png", "4-refreshed.png"} {
		st, err := os.Stat(filepath.Join(shots, name))
		require.NoError(t, err)
		require.Greater(t, st.Size(), int64(1000), name)
	}
}
