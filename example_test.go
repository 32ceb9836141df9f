package tsync_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
	"github.com/tsync/tsync/tsynctest"
)

// Site and Slice are two models: a Slice belongs to a Site.
type Site struct {
	models.Base
	Name string `db:"name"`
}

type Slice struct {
	models.Base
	Name   string `db:"name"`
	SiteID int64  `db:"site_id"`
}

// registry declares the models once; the link names its destination by
// its Go type.
func registry() *models.Registry {
	reg := models.NewRegistry()
	models.MustRegister[Site](reg, "Site")
	models.MustRegister[Slice](reg, "Slice", models.LinkTo[Site]("site_id"))
	return reg
}

var errQuotaBusy = errors.New("quota service busy")

// A typed step: tsync loads the Slice fresh and calls Sync with it. The
// step's model comes from its Go type, so it cannot name the wrong one.
func ExampleStepOf() {
	step := tsync.StepOf[Slice](tsync.StepFuncs[Slice]{
		Sync: func(ctx context.Context, s *Slice) error {
			fmt.Printf("create slice %s on site %d\n", s.Name, s.SiteID)
			return nil
		},
	})
	slice := &Slice{Name: "blue", SiteID: 3}
	if err := step.SyncRecord(context.Background(), slice); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("synchronizes %T\n", step.Synchronizes()[0])
	// Output:
	// create slice blue on site 3
	// synchronizes *tsync_test.Slice
}

// Defer marks a temporary condition: the object is recorded as
// "deferred: ..." with code 0 and tried again after the loop interval.
// Deferral wins over an InnocuousError in the same chain.
func ExampleDefer() {
	err := fmt.Errorf("slice blue: %w", tsync.Defer(errQuotaBusy))
	fmt.Println(err)
	fmt.Println(tsync.IsDeferred(err), errors.Is(err, errQuotaBusy))
	fmt.Println(errors.Is(err, &tsync.DeferredError{}))
	fmt.Println(tsync.Defer(nil))

	both := tsync.Innocuous(tsync.Deferf("waiting for %s", "site 3"))
	fmt.Println(tsync.IsDeferred(both), tsync.IsInnocuous(both))
	// Output:
	// slice blue: quota service busy
	// true true
	// true
	// deferred
	// true true
}

// The registry validates links and builds the dependency graph, which
// `tsync deps` writes as Graphviz DOT.
func ExampleRegistry() {
	g, err := registry().Graph()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.Order())
	fmt.Print(g.DOT())
	// Output:
	// [Site Slice]
	// digraph tsync {
	//   rankdir=BT;
	//   "Site";
	//   "Slice";
	//   "Slice" -> "Site" [label="site_id"];
	// }
}

// A synchronizer is checked when it is opened; tsynctest.Check does it in
// a unit test, without any service.
func ExampleSynchronizer() {
	type Unregistered struct{ models.Base }
	ok := tsync.Synchronizer{
		Models: registry(),
		Steps: []tsync.Step{
			tsync.StepOf[Site](tsync.StepFuncs[Site]{}),
			tsync.StepOf[Slice](tsync.StepFuncs[Slice]{}),
		},
	}
	fmt.Println(tsynctest.Check(ok))

	bad := tsync.Synchronizer{
		Models: registry(),
		Steps:  []tsync.Step{tsync.StepOf[Unregistered](tsync.StepFuncs[Unregistered]{})},
	}
	fmt.Println(tsynctest.Check(bad))
	// Output:
	// <nil>
	// synchronizer: step 0: type tsync_test.Unregistered is not a registered model
}
