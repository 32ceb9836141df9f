// Package testmodels holds the models that tsync's tests of the whole
// synchronizer (integration, internal/watchers) and its two measuring
// programs (bench, soak) run on, the registry of a set of them, and a
// recording step. (The model store's own tests use internal/storetest.)
//
// Every model is registered under its Go type's name, with one table of
// that name in lower case:
//
//	Site <- Slice <- Instance -> Network -> Site   (the chain, and its networks)
//	A -> B, A -> C, B -> D, C -> D                  (the diamond)
//	Item, Blob                                      (independent)
//
// A set of models is a list of one new object of each (ChainDiamond,
// ChainNetwork, or a list of one's own): Registry registers it, and a step
// that syncs every model of the set returns it from Synchronizes.
package testmodels

import (
	"fmt"
	"slices"

	"github.com/tsync/tsync/models"
)

type (
	// Site is the root of the chain.
	Site struct {
		models.Base
		Name string `db:"name"`
	}
	// Slice depends on its Site.
	Slice struct {
		models.Base
		Name   string `db:"name"`
		SiteID int64  `db:"site_id"`
	}
	// Instance depends on its Slice and, in a set with Networks, on its
	// Network (into its cidr: only a change of the cidr concerns it).
	// Without Networks, NetworkID is a plain column.
	Instance struct {
		models.Base
		Name      string `db:"name"`
		SliceID   int64  `db:"slice_id"`
		NetworkID int64  `db:"network_id"`
	}
	// Network is a network of a Site, that Instances attach to.
	Network struct {
		models.Base
		Name   string `db:"name"`
		CIDR   string `db:"cidr"`
		SiteID int64  `db:"site_id"`
	}
	// D is the bottom of the diamond.
	D struct {
		models.Base
		Name string `db:"name"`
	}
	// B depends on D.
	B struct {
		models.Base
		Name string `db:"name"`
		DID  int64  `db:"d_id"`
	}
	// C depends on D.
	C struct {
		models.Base
		Name string `db:"name"`
		DID  int64  `db:"d_id"`
	}
	// A is the top of the diamond: it depends on B and C.
	A struct {
		models.Base
		Name string `db:"name"`
		BID  int64  `db:"b_id"`
		CID  int64  `db:"c_id"`
	}
	// Item depends on nothing.
	Item struct {
		models.Base
		Name string `db:"name"`
	}
	// Blob holds binary data and JSON, for the tests of huge and non-UTF-8
	// values.
	Blob struct {
		models.Base
		Name string         `db:"name"`
		Data []byte         `db:"data"`
		Meta map[string]any `db:"meta"`
	}
)

// ChainDiamond is the integration tests' set: the chain Site <- Slice <-
// Instance, the diamond A -> B, C -> D, and independent Items and Blobs.
func ChainDiamond() []models.Object {
	return []models.Object{new(Site), new(Slice), new(Instance), new(D), new(B), new(C), new(A), new(Item), new(Blob)}
}

// ChainNetwork is the watchers tests' set: the chain Site <- Slice <-
// Instance, and the Networks of each Site that Instances attach to.
func ChainNetwork() []models.Object {
	return []models.Object{new(Site), new(Slice), new(Network), new(Instance)}
}

// Registry returns a registry of the models of objs, in their order, each
// under its type's name (ModelName), with its links to the others (see the
// package comment). It panics on an object that is not a test model, and
// its Graph fails when a link's destination is not in objs.
func Registry(objs ...models.Object) *models.Registry {
	reg := models.NewRegistry()
	networks := slices.ContainsFunc(objs, func(o models.Object) bool { _, ok := o.(*Network); return ok })
	for _, obj := range objs {
		switch obj.(type) {
		case *Site:
			models.MustRegister[Site](reg, "Site")
		case *Slice:
			models.MustRegister[Slice](reg, "Slice", models.LinkTo[Site]("site_id"))
		case *Instance:
			links := []models.Link{models.LinkTo[Slice]("slice_id")}
			if networks {
				links = append(links, models.LinkInto[Network]("network_id", "cidr"))
			}
			models.MustRegister[Instance](reg, "Instance", links...)
		case *Network:
			models.MustRegister[Network](reg, "Network", models.LinkTo[Site]("site_id"))
		case *D:
			models.MustRegister[D](reg, "D")
		case *B:
			models.MustRegister[B](reg, "B", models.LinkTo[D]("d_id"))
		case *C:
			models.MustRegister[C](reg, "C", models.LinkTo[D]("d_id"))
		case *A:
			models.MustRegister[A](reg, "A", models.LinkTo[B]("b_id"), models.LinkTo[C]("c_id"))
		case *Item:
			models.MustRegister[Item](reg, "Item")
		case *Blob:
			models.MustRegister[Blob](reg, "Blob")
		default:
			panic(fmt.Sprintf("testmodels: %T is not a test model", obj))
		}
	}
	return reg
}

// ModelName returns the model name of a test model's object (its type's
// name), or its Go type for any other object.
func ModelName(obj models.Object) string {
	switch obj.(type) {
	case *Site:
		return "Site"
	case *Slice:
		return "Slice"
	case *Instance:
		return "Instance"
	case *Network:
		return "Network"
	case *A:
		return "A"
	case *B:
		return "B"
	case *C:
		return "C"
	case *D:
		return "D"
	case *Item:
		return "Item"
	case *Blob:
		return "Blob"
	}
	return fmt.Sprintf("%T", obj)
}

// RefOf returns the reference of a test model's object.
func RefOf(obj models.Object) models.Ref {
	return models.Ref{Model: ModelName(obj), ID: obj.SyncState().ID}
}
