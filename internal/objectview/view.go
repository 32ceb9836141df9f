// Package objectview is the object view: a read-only web page of a
// synchronizer's objects, built on package inspect. It shows the counts by
// state per model and the model dependency graph (GET /), the objects
// filtered by model and state (GET /objects?model=M&state=S), one object
// (GET /objects/{model}/{id}) and the graph alone (GET /graph). Pages
// refresh themselves, use no external asset nor script, and answer GET
// and HEAD only (405 otherwise). With a token, every request needs
// "Authorization: Bearer <token>", or the cookie a first ?token=<token>
// sets (401 otherwise).
package objectview

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tsync/tsync/internal/inspect"
	"github.com/tsync/tsync/models"
)

// DefaultAddress is where `tsync ui` serves when ui_address is "".
const DefaultAddress = "127.0.0.1:8480"

// cookieName is the cookie holding the token a browser gave as ?token=.
const cookieName = "tsync_ui_token"

// maxList is the most objects a list page shows.
const maxList = 500

//go:embed templates/*.html templates/style.css
var files embed.FS

// Options are the view's settings.
type Options struct {
	// Token, when set, is the bearer token every request needs.
	Token string
	// Refresh is how often pages reload themselves (0: 5s).
	Refresh time.Duration
	// Title names the synchronizer in the pages.
	Title string
	// Retries describes the retry schedule of failing steps (from the
	// config: workflows.RetryParams.Describe), shown with an object's
	// attempts; "" shows none.
	Retries string
	// Log logs failed requests (nil: not logged).
	Log *slog.Logger
}

// View serves the object view of an Inspector.
type View struct {
	in    *inspect.Inspector
	opts  Options
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New returns the view of in's objects.
func New(in *inspect.Inspector, opts Options) (*View, error) {
	if opts.Refresh <= 0 {
		opts.Refresh = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	css, err := files.ReadFile("templates/style.css")
	if err != nil {
		return nil, fmt.Errorf("object view: %w", err)
	}
	funcs := template.FuncMap{
		"css":       func() template.CSS { return template.CSS(css) },
		"when":      when,
		"whenp":     whenp,
		"stateName": stateName,
		"mark":      mark,
		"count":     func(c inspect.Count, s inspect.State) int { return c.ByState[s] },
		"states":    func() []inspect.State { return inspect.States },
		"objectURL": objectURL,
		"listURL":   listURL,
		"indent":    func(depth int) int { return (depth - 1) * 20 },
	}
	v := &View{in: in, opts: opts, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	for _, page := range []string{"overview", "list", "object", "graph"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("object view: template %s: %w", page, err)
		}
		v.pages[page] = t
	}
	v.mux.HandleFunc("GET /{$}", v.overview)
	v.mux.HandleFunc("GET /objects", v.list)
	v.mux.HandleFunc("GET /objects/{model}/{id}", v.object)
	v.mux.HandleFunc("GET /graph", v.graph)
	return v, nil
}

// ServeHTTP answers a request: 401 without the token (when one is set),
// 405 for a method other than GET and HEAD, else the page.
func (v *View) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if v.opts.Token != "" && !v.authorized(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: the object view is read-only", http.StatusMethodNotAllowed)
		return
	}
	v.mux.ServeHTTP(w, r)
}

// authorized checks the token (header, cookie, or ?token=, which sets the
// cookie and redirects to the URL without it); it answers 401 when absent
// or wrong.
func (v *View) authorized(w http.ResponseWriter, r *http.Request) bool {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && v.match(tok) {
			return true
		}
	} else if q := r.URL.Query(); q.Has("token") {
		if v.match(q.Get("token")) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: q.Get("token"), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return false
		}
	} else if c, err := r.Cookie(cookieName); err == nil && v.match(c.Value) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tsync object view"`)
	http.Error(w, "401 unauthorized: send Authorization: Bearer <token> (ui_token_file), or open the page once with ?token=<token>", http.StatusUnauthorized)
	return false
}

func (v *View) match(tok string) bool {
	return subtle.ConstantTimeCompare([]byte(tok), []byte(v.opts.Token)) == 1
}

// page is what every template gets.
type page struct {
	Title   string
	Refresh int
	Now     time.Time
	Nav     string
	// Retries is Options.Retries.
	Retries string
	Data    any
}

// render writes template name with data, or a 500.
func (v *View) render(w http.ResponseWriter, r *http.Request, name, nav string, data any) {
	var buf bytes.Buffer
	p := page{Title: v.opts.Title, Refresh: int(v.opts.Refresh / time.Second), Now: time.Now(), Nav: nav, Retries: v.opts.Retries, Data: data}
	if p.Refresh < 1 {
		p.Refresh = 1
	}
	if err := v.pages[name].Execute(&buf, p); err != nil {
		v.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// fail answers 500 and logs err.
func (v *View) fail(w http.ResponseWriter, r *http.Request, err error) {
	v.opts.Log.Warn("object view: request failed", "path", r.URL.Path, "error", err)
	http.Error(w, "500 internal error: "+err.Error(), http.StatusInternalServerError)
}

type overviewData struct {
	Counts []inspect.Count
	Total  inspect.Count
	Graph  graphSVG
}

func (v *View) overview(w http.ResponseWriter, r *http.Request) {
	counts, err := v.in.Counts(r.Context())
	if err != nil {
		v.fail(w, r, err)
		return
	}
	total := inspect.Count{Model: "all", ByState: map[inspect.State]int{}}
	for _, c := range counts {
		total.Total += c.Total
		for s, n := range c.ByState {
			total.ByState[s] += n
		}
	}
	v.render(w, r, "overview", "overview", overviewData{Counts: counts, Total: total, Graph: layout(v.in.Graph(), counts)})
}

func (v *View) graph(w http.ResponseWriter, r *http.Request) {
	counts, err := v.in.Counts(r.Context())
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.render(w, r, "graph", "graph", layout(v.in.Graph(), counts))
}

type listData struct {
	Models []string
	Model  string
	State  inspect.State
	Rows   []inspect.Row
	More   bool
}

func (v *View) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := listData{Models: v.in.Models()}
	if m := q.Get("model"); m != "" {
		name, err := v.in.ResolveModel(m)
		if err != nil {
			http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		d.Model = name
	}
	if s := q.Get("state"); s != "" {
		st, err := inspect.ParseState(s)
		if err != nil {
			http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		d.State = st
	}
	rows, err := v.in.List(r.Context(), inspect.Filter{Model: d.Model, State: d.State, Limit: maxList + 1})
	if err != nil {
		v.fail(w, r, err)
		return
	}
	if len(rows) > maxList {
		rows, d.More = rows[:maxList], true
	}
	d.Rows = rows
	v.render(w, r, "list", "list", d)
}

func (v *View) object(w http.ResponseWriter, r *http.Request) {
	model, err := v.in.ResolveModel(r.PathValue("model"))
	if err != nil {
		http.Error(w, "404 not found: "+err.Error(), http.StatusNotFound)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, fmt.Sprintf("400 bad request: invalid id %q", r.PathValue("id")), http.StatusBadRequest)
		return
	}
	obj, err := v.in.Object(r.Context(), model, id)
	if errors.Is(err, models.ErrNotFound) {
		http.Error(w, fmt.Sprintf("404 not found: %s %d does not exist", model, id), http.StatusNotFound)
		return
	}
	if err != nil {
		v.fail(w, r, err)
		return
	}
	v.render(w, r, "object", "list", obj)
}

// when formats t in UTC with its age.
func when(t time.Time) string {
	age := time.Since(t).Round(time.Second)
	switch {
	case age >= 0:
		return fmt.Sprintf("%s (%s ago)", t.UTC().Format("2006-01-02 15:04:05 MST"), age)
	default:
		return fmt.Sprintf("%s (in %s)", t.UTC().Format("2006-01-02 15:04:05 MST"), -age)
	}
}

// whenp formats t, or "never" when nil.
func whenp(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return when(*t)
}

// stateName is a state's label.
func stateName(s inspect.State) string {
	if s == inspect.StateInSync {
		return "in sync"
	}
	return string(s)
}

// mark is the symbol shown before a state: a red dot for an error.
func mark(s inspect.State) string {
	switch s {
	case inspect.StateError:
		return "●"
	case inspect.StateInSync:
		return "✓"
	case inspect.StateHeld:
		return "◆"
	case inspect.StateDeferred:
		return "◷"
	}
	return "○"
}

// objectURL is the page of one object.
func objectURL(model string, id any) string {
	return "/objects/" + url.PathEscape(model) + "/" + url.PathEscape(fmt.Sprint(id))
}

// listURL is the list of model's objects in state (either may be "").
func listURL(model string, state inspect.State) string {
	q := url.Values{}
	if model != "" {
		q.Set("model", model)
	}
	if state != "" {
		q.Set("state", string(state))
	}
	if len(q) == 0 {
		return "/objects"
	}
	return "/objects?" + q.Encode()
}

// Serve serves h on addr until ctx is done, then shuts down (letting
// requests finish for up to 5s). It returns once the listener is closed;
// the error of a failed listen at once.
func Serve(ctx context.Context, addr string, h http.Handler, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("object view: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("object view: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("object view: shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("object view: %w", err)
	}
	return nil
}
