package models_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

// Diamond: D depends on B and C, both depend on A. Chain: Z -> Y -> X.
type (
	DiaA struct {
		models.Base
		Name string
	}
	DiaB struct {
		models.Base
		AID int64 `db:"a_id"`
	}
	DiaC struct {
		models.Base
		AID  int64 `db:"a_id"`
		Note string
	}
	DiaD struct {
		models.Base
		BID int64  `db:"b_id"`
		CID *int64 `db:"c_id"`
	}
	ChainX struct {
		models.Base
		Name string
	}
	ChainY struct {
		models.Base
		XID int32 `db:"x_id"`
	}
	ChainZ struct {
		models.Base
		YID int64 `db:"y_id"`
		DID int64 `db:"d_id"`
	}
)

func diamondRegistry(t *testing.T) *models.Registry {
	t.Helper()
	reg := models.NewRegistry()
	// Registered in an order unrelated to the dependencies.
	require.NoError(t, models.Register[ChainZ](reg, "Z", models.Link{Dest: "Y", Via: "y_id"}, models.Link{Dest: "D", Via: "d_id"}))
	require.NoError(t, models.Register[DiaD](reg, "D", models.Link{Dest: "B", Via: "b_id"}, models.Link{Dest: "C", Via: "c_id", Into: "note"}))
	require.NoError(t, models.Register[DiaB](reg, "B", models.Link{Dest: "A", Via: "a_id", Into: "name"}))
	require.NoError(t, models.Register[DiaC](reg, "C", models.Link{Dest: "A", Via: "a_id"}))
	require.NoError(t, models.Register[ChainY](reg, "Y", models.Link{Dest: "X", Via: "x_id", Into: "updated"}))
	require.NoError(t, models.Register[DiaA](reg, "A"))
	require.NoError(t, models.Register[ChainX](reg, "X"))
	return reg
}

func TestGraphOrderChainAndDiamond(t *testing.T) {
	reg := diamondRegistry(t)
	g, err := reg.Graph()
	require.NoError(t, err)

	order := g.Order()
	require.ElementsMatch(t, []string{"A", "B", "C", "D", "X", "Y", "Z"}, order)
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	edges := [][2]string{{"Z", "Y"}, {"Z", "D"}, {"D", "B"}, {"D", "C"}, {"B", "A"}, {"C", "A"}, {"Y", "X"}}
	for _, e := range edges {
		require.Less(t, pos[e[1]], pos[e[0]], "%s must come after its dependency %s in %v", e[0], e[1], order)
	}
	// Deterministic.
	for range 5 {
		g2, err := reg.Graph()
		require.NoError(t, err)
		require.Equal(t, order, g2.Order())
	}

	dot := g.DOT()
	require.True(t, strings.HasPrefix(dot, "digraph "), dot)
	require.True(t, strings.HasSuffix(strings.TrimSpace(dot), "}"), dot)
	for _, e := range edges {
		require.Contains(t, dot, fmt.Sprintf("%q -> %q", e[0], e[1]))
	}
	for _, n := range order {
		require.Contains(t, dot, fmt.Sprintf("%q;", n))
	}
	require.Equal(t, len(edges), strings.Count(dot, "->"), dot)

	// Dependents and dependencies.
	var from []string
	for _, e := range g.Dependents("A") {
		from = append(from, e.From)
		require.Equal(t, "A", e.Link.Dest)
		require.Equal(t, "a_id", e.Link.Via)
	}
	slices.Sort(from)
	require.Equal(t, []string{"B", "C"}, from)
	require.Empty(t, g.Dependents("Z"))
	require.Equal(t, []models.Link{{Dest: "B", Via: "b_id"}, {Dest: "C", Via: "c_id", Into: "note"}}, g.Dependencies("D"))
	require.Nil(t, g.Dependencies("nope"))

	m, ok := g.Model("D")
	require.True(t, ok)
	require.Equal(t, "d", m.Table) // from the model name, not the Go type
	_, ok = g.Model("nope")
	require.False(t, ok)
	m2, err := g.ModelOf(&DiaD{})
	require.NoError(t, err)
	require.Same(t, m, m2)
	_, err = g.ModelOf(&Site{})
	require.ErrorContains(t, err, "not a registered model")
}

type (
	CycA struct {
		models.Base
		BID int64 `db:"b_id"`
	}
	CycB struct {
		models.Base
		CID int64 `db:"c_id"`
	}
	CycC struct {
		models.Base
		AID int64 `db:"a_id"`
	}
)

func TestGraphCycle(t *testing.T) {
	reg := models.NewRegistry()
	require.NoError(t, models.Register[CycC](reg, "C", models.Link{Dest: "A", Via: "a_id"}))
	require.NoError(t, models.Register[CycA](reg, "A", models.Link{Dest: "B", Via: "b_id"}))
	require.NoError(t, models.Register[CycB](reg, "B", models.Link{Dest: "C", Via: "c_id"}))
	require.NoError(t, models.Register[Site](reg, "Site"))
	g, err := reg.Graph()
	require.Nil(t, g)
	require.EqualError(t, err, "dependency cycle: A -> B -> C -> A")

	// A self-link is allowed; a cycle through a model with one is not.
	reg = models.NewRegistry()
	require.NoError(t, models.Register[TreeNode](reg, "Node", models.Link{Dest: "Node", Via: "parent_id"}, models.Link{Dest: "A", Via: "site_id"}))
	require.NoError(t, models.Register[CycA](reg, "A", models.Link{Dest: "Node", Via: "b_id"}))
	_, err = reg.Graph()
	require.EqualError(t, err, "dependency cycle: A -> Node -> A")
}

// TreeNode links to itself (its parent) and to a Site.
type TreeNode struct {
	models.Base
	Name     string
	ParentID int64 `db:"parent_id"`
	SiteID   int64 `db:"site_id"`
	PeerID   *int64
}

func TestGraphSelfLink(t *testing.T) {
	reg := models.NewRegistry()
	require.NoError(t, models.Register[TreeNode](reg, "Network",
		models.Link{Dest: "Network", Via: "parent_id"}, models.Link{Dest: "Site", Via: "site_id"}, models.Link{Dest: "Network", Via: "peer_id"}))
	require.NoError(t, models.Register[Site](reg, "Site"))
	g, err := reg.Graph()
	require.NoError(t, err)
	require.Equal(t, []string{"Site", "Network"}, g.Order())
	require.Equal(t, []models.Link{{Dest: "Network", Via: "parent_id"}, {Dest: "Network", Via: "peer_id"}}, g.SelfLinks("Network"))
	require.Empty(t, g.SelfLinks("Site"))
	require.Nil(t, g.SelfLinks("nope"))
	var from []string
	for _, e := range g.Dependents("Network") {
		from = append(from, e.From+"."+e.Link.Via)
	}
	require.Equal(t, []string{"Network.parent_id", "Network.peer_id"}, from)

	require.JSONEq(t, `{"Network": ["Network", "Site"], "Site": []}`, string(g.DepsFile()))
	require.NoError(t, g.CheckDepsFile(g.DepsFile()))
	require.EqualError(t, g.CheckDepsFile([]byte(`{"Network": ["Site"], "Site": []}`)),
		"model-deps file disagrees with the code: model Network: the file says [Site], the code says [Network Site]")
	require.Contains(t, g.DOT(), `"Network" -> "Network" [label="parent_id"];`)
	require.Contains(t, g.DOT(), `"Network" -> "Site" [label="site_id"];`)
}

type (
	LinkSrc struct {
		models.Base
		Name     string
		DestID   int64
		Ratio    float64
		OptDest  *int64
		OptName  *string
		SmallID  int32
		PlainID  int
		Settings map[string]any
	}
	LinkDest struct {
		models.Base
		Name string
	}
)

func TestGraphBadLinks(t *testing.T) {
	cases := []struct {
		link models.Link
		want string
	}{
		{models.Link{Dest: "Nowhere", Via: "dest_id"}, `model Src: link to unknown model "Nowhere"`},
		{models.Link{Dest: "Dest", Via: "nope_id"}, `model Src: link to Dest: unknown field "nope_id"`},
		{models.Link{Dest: "Dest", Via: "name"}, `model Src: link to Dest: field "name" must be an integer id`},
		{models.Link{Dest: "Dest", Via: "ratio"}, `model Src: link to Dest: field "ratio" must be an integer id`},
		{models.Link{Dest: "Dest", Via: "opt_name"}, `model Src: link to Dest: field "opt_name" must be an integer id`},
		{models.Link{Dest: "Dest", Via: "settings"}, `model Src: link to Dest: field "settings" must be an integer id`},
		{models.Link{Dest: "Dest", Via: "dest_id", Into: "colour"}, `model Src: link to Dest: unknown field "colour" of Dest`},
	}
	for _, c := range cases {
		t.Run(c.link.Via+"/"+c.link.Into, func(t *testing.T) {
			reg := models.NewRegistry()
			require.NoError(t, models.Register[LinkDest](reg, "Dest"))
			require.NoError(t, models.Register[LinkSrc](reg, "Src", c.link))
			_, err := reg.Graph()
			require.Error(t, err)
			require.ErrorContains(t, err, c.want)
			// One error, on one line.
			require.NotContains(t, err.Error(), "\n")
		})
	}

	// Every integer kind (and a nullable one) is a valid Via; Into may name a
	// content column or a sync-state column.
	reg := models.NewRegistry()
	require.NoError(t, models.Register[LinkDest](reg, "Dest"))
	require.NoError(t, models.Register[LinkSrc](reg, "Src",
		models.Link{Dest: "Dest", Via: "dest_id", Into: "name"},
		models.Link{Dest: "Dest", Via: "opt_dest", Into: "backend_status"},
		models.Link{Dest: "Dest", Via: "small_id"},
		models.Link{Dest: "Dest", Via: "plain_id"}))
	g, err := reg.Graph()
	require.NoError(t, err)
	require.Equal(t, []string{"Dest", "Src"}, g.Order())
}

func TestLinkTargetNullable(t *testing.T) {
	reg := models.NewRegistry()
	require.NoError(t, models.Register[LinkDest](reg, "Dest"))
	require.NoError(t, models.Register[LinkSrc](reg, "Src",
		models.Link{Dest: "Dest", Via: "dest_id"},
		models.Link{Dest: "Dest", Via: "opt_dest"},
		models.Link{Dest: "Dest", Via: "small_id"},
		models.Link{Dest: "Dest", Via: "plain_id"}))
	g, err := reg.Graph()
	require.NoError(t, err)
	m, ok := g.Model("Src")
	require.True(t, ok)
	direct, opt, small, plain := m.Links[0], m.Links[1], m.Links[2], m.Links[3]

	obj := &LinkSrc{}
	for _, l := range m.Links {
		id, ok := m.LinkTarget(obj, l)
		require.False(t, ok, l.Via)
		require.Zero(t, id, l.Via)
	}

	seven := int64(7)
	obj = &LinkSrc{DestID: 3, OptDest: &seven, SmallID: 4, PlainID: 5}
	id, ok := m.LinkTarget(obj, direct)
	require.True(t, ok)
	require.Equal(t, int64(3), id)
	id, ok = m.LinkTarget(obj, opt)
	require.True(t, ok)
	require.Equal(t, int64(7), id)
	id, ok = m.LinkTarget(obj, small)
	require.True(t, ok)
	require.Equal(t, int64(4), id)
	id, ok = m.LinkTarget(obj, plain)
	require.True(t, ok)
	require.Equal(t, int64(5), id)

	// A nil pointer names nothing; so does a pointer to 0.
	zero := int64(0)
	obj.OptDest = &zero
	_, ok = m.LinkTarget(obj, opt)
	require.False(t, ok)
	obj.OptDest = nil
	_, ok = m.LinkTarget(obj, opt)
	require.False(t, ok)

	// An unknown Via names nothing (and does not panic).
	_, ok = m.LinkTarget(obj, models.Link{Dest: "Dest", Via: "nope"})
	require.False(t, ok)
}

type (
	NoBase struct {
		Name string
	}
	BaseNotFirst struct {
		Name string
		models.Base
	}
	BasePointer struct {
		*models.Base
		Name string
	}
	BaseNamed struct {
		B    models.Base
		Name string
	}
	ReservedDeleted struct {
		models.Base
		Gone bool `db:"deleted"`
	}
	ReservedUpdated struct {
		models.Base
		Updated2 string `db:"updated"`
	}
	ReservedByName struct {
		models.Base
		BackendStatus2 string `db:"backend_status"`
	}
	DupColumn struct {
		models.Base
		SiteID int64
		Site   int64 `db:"site_id"`
	}
	ChanField struct {
		models.Base
		Events chan int
	}
	UintField struct {
		models.Base
		Count uint64
	}
	Float32Field struct {
		models.Base
		Ratio float32
	}
	MapIntKey struct {
		models.Base
		M map[int]string
	}
	BadTag struct {
		models.Base
		Name string `db:"Bad Name"`
	}
	InjectTag struct {
		models.Base
		Name string `db:"x\"; drop table y; --"`
	}
	UpperTag struct {
		models.Base
		Name string `db:"Name"`
	}
	NetworkSlice struct {
		models.Base
		SiteID         int64
		HTTPServerName string
		Name           string
		VLANTag        int32
	}
	Other struct {
		models.Base
		Name string
	}
)

func TestRegisterErrors(t *testing.T) {
	cases := []struct {
		name     string
		register func(*models.Registry) error
		want     string
	}{
		{"no base", func(r *models.Registry) error { return models.Register[NoBase](r, "NoBase") }, "must embed models.Base as its first field"},
		{"base not first", func(r *models.Registry) error { return models.Register[BaseNotFirst](r, "X") }, "must embed models.Base as its first field"},
		{"base pointer", func(r *models.Registry) error { return models.Register[BasePointer](r, "X") }, "must embed models.Base as its first field"},
		{"base named", func(r *models.Registry) error { return models.Register[BaseNamed](r, "X") }, "must embed models.Base as its first field"},
		{"not a struct", func(r *models.Registry) error { return models.Register[int](r, "X") }, "is not a struct"},
		{"pointer type", func(r *models.Registry) error { return models.Register[*Site](r, "X") }, "is not a struct"},
		{"space in name", func(r *models.Registry) error { return models.Register[Site](r, "bad name") }, `model "bad name": name must match`},
		{"digit first", func(r *models.Registry) error { return models.Register[Site](r, "1x") }, `model "1x": name must match`},
		{"semicolon", func(r *models.Registry) error { return models.Register[Site](r, "x;drop") }, `model "x;drop": name must match`},
		{"empty name", func(r *models.Registry) error { return models.Register[Site](r, "") }, `model "": name must match`},
		{"quote", func(r *models.Registry) error { return models.Register[Site](r, `a"b`) }, `name must match`},
		{"too long", func(r *models.Registry) error { return models.Register[Site](r, "A"+strings.Repeat("b", 63)) }, `name must match`},
		{"reserved deleted", func(r *models.Registry) error { return models.Register[ReservedDeleted](r, "X") }, `model X field Gone: column "deleted" is reserved for sync state`},
		{"reserved updated", func(r *models.Registry) error { return models.Register[ReservedUpdated](r, "X") }, `model X field Updated2: column "updated" is reserved for sync state`},
		{"reserved backend_status", func(r *models.Registry) error { return models.Register[ReservedByName](r, "X") }, `column "backend_status" is reserved`},
		{"duplicate column", func(r *models.Registry) error { return models.Register[DupColumn](r, "X") }, `model X field Site: duplicate column "site_id"`},
		{"chan", func(r *models.Registry) error { return models.Register[ChanField](r, "X") }, "model X field Events: unsupported type chan int"},
		{"uint64", func(r *models.Registry) error { return models.Register[UintField](r, "X") }, "model X field Count: unsupported type uint64"},
		{"float32", func(r *models.Registry) error { return models.Register[Float32Field](r, "X") }, "model X field Ratio: unsupported type float32"},
		{"map int key", func(r *models.Registry) error { return models.Register[MapIntKey](r, "X") }, "model X field M: unsupported type map[int]string"},
		{"bad tag", func(r *models.Registry) error { return models.Register[BadTag](r, "X") }, `model X field Name: column "Bad Name" must be lower case`},
		{"injection tag", func(r *models.Registry) error { return models.Register[InjectTag](r, "X") }, `model X field Name: column`},
		{"upper tag", func(r *models.Registry) error { return models.Register[UpperTag](r, "X") }, `model X field Name: column "Name" must be lower case`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := models.NewRegistry()
			err := c.register(reg)
			require.Error(t, err)
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "\n")
			// Nothing was registered.
			g, gerr := reg.Graph()
			require.NoError(t, gerr)
			require.Empty(t, g.Order())
		})
	}

	require.Panics(t, func() { models.MustRegister[NoBase](models.NewRegistry(), "X") })
}

func TestRegisterDuplicates(t *testing.T) {
	reg := models.NewRegistry()
	require.NoError(t, models.Register[Site](reg, "Site"))

	err := models.Register[Other](reg, "Site")
	require.EqualError(t, err, "model Site: registered twice")

	err = models.Register[Site](reg, "Place")
	require.ErrorContains(t, err, "model Place: type storetest.Site is already registered as model Site")

	// Two names mapping to one table.
	err = models.Register[Other](reg, "site")
	require.ErrorContains(t, err, `model site: table "site" is already used by model Site`)

	// Failed registrations left the registry as it was.
	g, err := reg.Graph()
	require.NoError(t, err)
	require.Equal(t, []string{"Site"}, g.Order())
	require.NotPanics(t, func() { models.MustRegister[Other](reg, "Other") })
}

func TestSnakeCaseNaming(t *testing.T) {
	reg := models.NewRegistry()
	require.NoError(t, models.Register[NetworkSlice](reg, "NetworkSlice"))
	require.NoError(t, models.Register[Everything](reg, "Everything"))
	require.NoError(t, models.Register[Site](reg, "HTTPProxy"))
	g, err := reg.Graph()
	require.NoError(t, err)

	m, _ := g.Model("NetworkSlice")
	require.Equal(t, "network_slice", m.Table)
	var cols []string
	for _, f := range m.Fields {
		cols = append(cols, f.Column)
	}
	require.Equal(t, []string{"site_id", "http_server_name", "name", "vlan_tag"}, cols)
	f, ok := m.Field("site_id")
	require.True(t, ok)
	require.Equal(t, "SiteID", f.GoName)
	require.True(t, f.Integer)
	require.Equal(t, "bigint NOT NULL DEFAULT 0", f.SQLType)
	f, _ = m.Field("vlan_tag")
	require.Equal(t, "integer NOT NULL DEFAULT 0", f.SQLType)

	m, _ = g.Model("HTTPProxy")
	require.Equal(t, "http_proxy", m.Table)

	m, _ = g.Model("Everything")
	require.Equal(t, "everything", m.Table)
	types := map[string]string{}
	for _, f := range m.Fields {
		types[f.Column] = f.SQLType
	}
	require.Equal(t, map[string]string{
		"text":     "text NOT NULL DEFAULT ''",
		"opt_text": "text",
		"big":      "bigint NOT NULL DEFAULT 0",
		"small":    "integer NOT NULL DEFAULT 0",
		"plain":    "bigint NOT NULL DEFAULT 0",
		"flag":     "boolean NOT NULL DEFAULT false",
		"ratio":    "double precision NOT NULL DEFAULT 0",
		"when":     "timestamptz",
		"opt_when": "timestamptz",
		"blob":     "bytea",
		"tags":     "text[]",
		"attrs":    "jsonb",
		"raw":      "jsonb",
		"order":    "text NOT NULL DEFAULT ''",
		"user":     "text NOT NULL DEFAULT ''",
	}, types)
	_, ok = m.Field("skipped")
	require.False(t, ok)
	_, ok = m.Field("ignored")
	require.False(t, ok)

	obj := m.New()
	_, isEverything := obj.(*Everything)
	require.True(t, isEverything)
	require.Equal(t, "Everything", m.Type().Name())
}

func TestRefString(t *testing.T) {
	require.Equal(t, "model Site id 3", models.Ref{Model: "Site", ID: 3}.String())
}
