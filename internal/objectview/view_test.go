package objectview_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/internal/inspect/inspecttest"
	"github.com/tsync/tsync/internal/objectview"
)

// newServer serves the view of a fresh Fixture.
func newServer(t *testing.T, token string) (*httptest.Server, *inspecttest.Fixture) {
	t.Helper()
	f := inspecttest.New(t)
	in := inspect.New(f.Store, nil, inspect.Options{Synchronizer: "demo", Namespace: "default", UIURL: "http://127.0.0.1:8233"})
	v, err := objectview.New(in, objectview.Options{Token: token, Title: "demo", Retries: "every 1s, forever"})
	require.NoError(t, err)
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	return srv, f
}

// noRedirect is a client that shows redirects rather than following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends a request and returns the response and its body.
func do(t *testing.T, method, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, body := do(t, http.MethodGet, u, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	return body
}

// The status text holding markup, as html/template escapes it.
var escapedError = `connect to backend: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; refused`

func TestOverview(t *testing.T) {
	srv, _ := newServer(t, "")
	body := get(t, srv.URL+"/")
	require.Contains(t, body, `<meta http-equiv="refresh" content="5">`)
	// Counts: Site has 1 in sync, 1 pending, 0 deferred, 0 held, 1 error,
	// and its error count is marked and links to the list.
	require.Contains(t, body, `<tr data-model="Site">`)
	site := body[strings.Index(body, `<tr data-model="Site">`):]
	site = site[:strings.Index(site, "</tr>")]
	require.Contains(t, site, `<td class="num">3</td>`)
	require.Contains(t, site, `<td class="num has-error"><a href="/objects?model=Site&amp;state=error">1</a></td>`)
	require.Contains(t, body, `<tfoot><tr><td>all</td><td class="num">9</td>`)
	// The graph: a node per model, Site in red, an arrow per link.
	require.Contains(t, body, `<svg class="graph"`)
	for _, m := range []string{"Everything", "Image", "Site", "Slice", "Instance"} {
		require.Contains(t, body, `data-model="`+m+`"`)
	}
	siteNode := body[strings.Index(body, `<a href="/objects?model=Site" class="node"`):]
	require.Contains(t, siteNode[:300], `class="node-error"`)
	require.Equal(t, 3, strings.Count(body, `<path class="edge"`))
	require.Contains(t, body, `<title>Instance depends on Slice</title>`)
	require.NotContains(t, body, "<script")

	graph := get(t, srv.URL+"/graph")
	require.Contains(t, graph, `<svg class="graph"`)
}

func TestList(t *testing.T) {
	srv, f := newServer(t, "")
	body := get(t, srv.URL+"/objects?state=error")
	require.Equal(t, 2, strings.Count(body, `<tr class="row-error"`))
	require.Equal(t, 2, strings.Count(body, `<tr class="row-`))
	require.Contains(t, body, fmt.Sprintf(`<tr class="row-error" data-ref="Instance/%d">`, f.Broken.ID))
	require.Contains(t, body, fmt.Sprintf(`<tr class="row-error" data-ref="Site/%d">`, f.Failed.ID))
	require.Contains(t, body, `<span class="mark mark-error" title="error">●</span>`)
	require.Contains(t, body, fmt.Sprintf(`<a href="/objects/Site/%d" class="object-link">Site %d</a>`, f.Failed.ID, f.Failed.ID))
	require.Contains(t, body, escapedError)
	require.NotContains(t, body, "<script")

	body = get(t, srv.URL+"/objects?model=slice&state=HELD")
	require.Equal(t, 1, strings.Count(body, `<tr class="row-`))
	require.Contains(t, body, fmt.Sprintf(`<tr class="row-held" data-ref="Slice/%d">`, f.Held.ID))
	require.Contains(t, body, `<option value="Slice" selected>`)

	body = get(t, srv.URL+"/objects")
	require.Equal(t, 9, strings.Count(body, `<tr class="row-`))
	require.Equal(t, 2, strings.Count(body, `<tr class="row-error"`))

	body = get(t, srv.URL+"/objects?model=Image")
	require.Contains(t, body, "No objects of model Image.")

	resp, msg := do(t, http.MethodGet, srv.URL+"/objects?state=broken", nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, msg, `unknown state "broken"`)
	resp, msg = do(t, http.MethodGet, srv.URL+"/objects?model=Nope", nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, msg, `unknown model "Nope"`)
}

func TestObjectPage(t *testing.T) {
	srv, f := newServer(t, "")
	body := get(t, srv.URL+fmt.Sprintf("/objects/Instance/%d", f.HeldToo.ID))
	require.Contains(t, body, `<td id="status" class="status">`+
		fmt.Sprintf("Failed due to error in model Site id %d: ", f.Failed.ID)+escapedError+`</td>`)
	require.Contains(t, body, `<td id="code">2</td>`)
	require.Contains(t, body, `<td id="retries">a failing step is retried every 1s, forever</td>`)
	require.Contains(t, body, `<span class="state state-held">`)
	// The chain: its Slice (held), then the Slice's Site (error, marked red).
	chain := body[strings.Index(body, `<ul class="chain" id="dependencies">`):]
	chain = chain[:strings.Index(chain, "</ul>")]
	iSlice := strings.Index(chain, fmt.Sprintf(`data-ref="Slice/%d"`, f.Held.ID))
	iSite := strings.Index(chain, fmt.Sprintf(`data-ref="Site/%d"`, f.Failed.ID))
	require.True(t, iSlice >= 0 && iSite > iSlice, chain)
	require.Contains(t, chain[iSite:], `<span class="mark mark-error" title="error">●</span>`)
	require.Contains(t, chain, `style="margin-left: 20px"`)
	// Fields, a link among them; the workflow and its Web UI link.
	require.Contains(t, body, fmt.Sprintf(`<th>slice_id</th><td><a href="/objects/Slice/%d">Slice %d</a></td>`, f.Held.ID, f.Held.ID))
	require.Contains(t, body, fmt.Sprintf(`<code>demo/Instance/%d</code>`, f.HeldToo.ID))
	require.Contains(t, body, fmt.Sprintf(`href="http://127.0.0.1:8233/namespaces/default/workflows/demo%%2FInstance%%2F%d"`, f.HeldToo.ID))
	require.NotContains(t, body, "<script")

	// The failing Site: its field holding markup is text, and it holds two.
	body = get(t, srv.URL+fmt.Sprintf("/objects/site/%d", f.Failed.ID))
	require.Contains(t, body, `<th>name</th><td>failed &lt;b&gt;site&lt;/b&gt;</td>`)
	require.Contains(t, body, `<td id="status" class="status">`+escapedError+`</td>`)
	held := body[strings.Index(body, `<ul class="chain" id="dependents">`):]
	require.Contains(t, held, fmt.Sprintf(`data-ref="Slice/%d"`, f.Held.ID))
	require.Contains(t, held, fmt.Sprintf(`data-ref="Instance/%d"`, f.HeldToo.ID))

	// The dangling link.
	body = get(t, srv.URL+fmt.Sprintf("/objects/Instance/%d", f.Dangling.ID))
	require.Contains(t, body, "Image 999 <strong>does not exist</strong>")

	for path, code := range map[string]int{
		"/objects/Site/12345": http.StatusNotFound,
		"/objects/Nope/1":     http.StatusNotFound,
		"/objects/Site/x":     http.StatusBadRequest,
		"/objects/Site/-1":    http.StatusBadRequest,
		"/nope":               http.StatusNotFound,
	} {
		resp, _ := do(t, http.MethodGet, srv.URL+path, nil)
		require.Equal(t, code, resp.StatusCode, path)
	}
}

// The view is read-only: every method but GET and HEAD gets 405.
func TestReadOnly(t *testing.T) {
	srv, f := newServer(t, "")
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		for _, p := range []string{"/", "/objects", fmt.Sprintf("/objects/Site/%d", f.Failed.ID), "/nope"} {
			resp, _ := do(t, m, srv.URL+p, nil)
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", m, p)
			require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		}
	}
	resp, body := do(t, http.MethodHead, srv.URL+"/objects", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, body)
	resp, _ = do(t, http.MethodGet, srv.URL+"/", nil)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
}

func TestToken(t *testing.T) {
	const token = "s3cret-token"
	srv, _ := newServer(t, token)
	for _, h := range []http.Header{
		nil,
		{"Authorization": {"Bearer wrong"}},
		{"Authorization": {"Basic " + token}},
		{"Authorization": {token}},
		{"Cookie": {"tsync_ui_token=wrong"}},
	} {
		resp, body := do(t, http.MethodGet, srv.URL+"/objects", h)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%v", h)
		require.Equal(t, `Bearer realm="tsync object view"`, resp.Header.Get("WWW-Authenticate"))
		require.NotContains(t, body, "<table")
	}
	// 401 comes before 405: nothing tells an anonymous client more.
	resp, _ := do(t, http.MethodPost, srv.URL+"/", nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	bearer := http.Header{"Authorization": {"Bearer " + token}}
	resp, body := do(t, http.MethodGet, srv.URL+"/objects", bearer)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `<table class="objects"`)
	resp, _ = do(t, http.MethodPost, srv.URL+"/objects", bearer)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// A browser: ?token= sets the cookie and redirects to the URL without it.
	resp, _ = do(t, http.MethodGet, srv.URL+"/objects?state=error&token=wrong", nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = do(t, http.MethodGet, srv.URL+"/objects?state=error&token="+url.QueryEscape(token), nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/objects?state=error", resp.Header.Get("Location"))
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	require.Equal(t, "tsync_ui_token", cookies[0].Name)
	require.True(t, cookies[0].HttpOnly)
	resp, body = do(t, http.MethodGet, srv.URL+"/objects?state=error", http.Header{"Cookie": {cookies[0].String()}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `<tr class="row-error"`)
}
