package objectview_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/internal/inspect/inspecttest"
	"github.com/tsync/tsync/internal/storetest"
	"github.com/tsync/tsync/models"
)

// snapshot returns every row of the fixture's tables, as JSON, in order:
// what the view must never change.
func snapshot(t *testing.T, f *inspecttest.Fixture) []string {
	t.Helper()
	var rows []string
	for _, name := range f.Store.Graph().Order() {
		m, _ := f.Store.Graph().Model(name)
		r, err := f.Store.Pool().Query(storetest.Ctx(t), `SELECT to_jsonb(t)::text FROM `+f.Store.Table(m)+` t ORDER BY id`)
		require.NoError(t, err)
		got, err := pgx.CollectRows(r, pgx.RowTo[string])
		require.NoError(t, err)
		rows = append(rows, got...)
	}
	outbox, err := f.Store.Pool().Query(storetest.Ctx(t), `SELECT to_jsonb(o)::text FROM `+pgx.Identifier{f.Store.Schema(), models.OutboxTable}.Sanitize()+` o ORDER BY id`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(outbox, pgx.RowTo[string])
	require.NoError(t, err)
	return append(rows, got...)
}

// Every path, with every method, asks for the token when one is set; with
// it, only GET and HEAD are served; and nothing the view is asked changes
// a row.
func TestEveryRequestNeedsTheTokenAndNothingWrites(t *testing.T) {
	const token = "every-request-token"
	srv, f := newServer(t, token)
	before := snapshot(t, f)
	paths := []string{
		"/", "/objects", "/objects?state=error", "/objects?model=Site&state=held",
		fmt.Sprintf("/objects/Site/%d", f.Failed.ID), fmt.Sprintf("/objects/Instance/%d", f.Broken.ID),
		"/objects/Site/999999", "/objects/Nope/1", "/graph", "/favicon.ico", "/no/such/page",
		"/objects/Site/1?resync=1", "/objects/Site/1/resync", "/static/../../etc/passwd",
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	for _, p := range paths {
		for _, method := range methods {
			resp, body := do(t, method, srv.URL+p, nil)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %s without the token", method, p)
			require.NotContains(t, body, "<table", "%s %s", method, p)
			require.NotContains(t, body, f.Failed.Name, "%s %s", method, p)

			resp, _ = do(t, method, srv.URL+p, bearer)
			switch method {
			case http.MethodGet, http.MethodHead:
				require.Contains(t, []int{http.StatusOK, http.StatusNotFound, http.StatusTemporaryRedirect}, resp.StatusCode, "%s %s", method, p)
			default:
				// (A path that is not clean is redirected to the clean one.)
				require.Contains(t, []int{http.StatusMethodNotAllowed, http.StatusNotFound, http.StatusTemporaryRedirect}, resp.StatusCode, "%s %s: the view takes no writes", method, p)
			}
		}
	}
	require.Equal(t, before, snapshot(t, f), "the view changed a row")
}
