package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tsync/tsync/internal/testmodels"
)

// load makes a change every `every` until end: creates, updates,
// deletes. A change that fails (a fault cut its PostgreSQL session) is
// counted and the load goes on.
func (s *soak) load(ctx context.Context, end time.Time, every time.Duration) {
	for time.Now().Before(end) && ctx.Err() == nil {
		changed, err := s.change(ctx)
		if err != nil {
			if s.loadErrs++; s.loadErrs <= 3 {
				fmt.Printf("load   %s  a change failed: %v\n", stamp(s.start), err)
			}
			time.Sleep(every)
			continue
		}
		if !changed {
			continue
		}
		time.Sleep(every)
	}
}

// change makes one change at random: it creates a Site (5%), a Slice (15%)
// or an Item (40%), updates an Item (25%), deletes an Item (10%) or a Slice
// (5%). It reports false when there was no object to update or delete.
func (s *soak) change(ctx context.Context) (bool, error) {
	store := s.app.Store
	n := rand.IntN(100)
	switch {
	case n < 5 || len(s.sites) == 0:
		site := &testmodels.Site{Name: fmt.Sprintf("site-%d", s.created)}
		if err := store.Insert(ctx, site); err != nil {
			return false, err
		}
		s.sites, s.created = append(s.sites, site.ID), s.created+1
	case n < 20:
		site, _ := pick(&s.sites)
		slice := &testmodels.Slice{Name: fmt.Sprintf("slice-%d", s.created), SiteID: site}
		if err := store.Insert(ctx, slice); err != nil {
			return false, err
		}
		s.slices, s.created = append(s.slices, slice.ID), s.created+1
	case n < 60:
		it := &testmodels.Item{Name: fmt.Sprintf("item-%d", s.created)}
		if err := store.Insert(ctx, it); err != nil {
			return false, err
		}
		s.items, s.created = append(s.items, it.ID), s.created+1
	case n < 85:
		id, ok := pick(&s.items)
		if !ok {
			return false, nil
		}
		obj, err := store.Get(ctx, "Item", id)
		if err != nil {
			return false, err
		}
		obj.(*testmodels.Item).Name += "+"
		if err := store.Save(ctx, obj); err != nil {
			return false, err
		}
		s.updates++
	case n < 95:
		id, ok := pick(&s.items)
		if !ok {
			return false, nil
		}
		if err := store.Delete(ctx, "Item", id); err != nil {
			return false, err
		}
		remove(&s.items, id)
		s.deleted++
	default:
		id, ok := pick(&s.slices)
		if !ok {
			return false, nil
		}
		if err := store.Delete(ctx, "Slice", id); err != nil {
			return false, err
		}
		remove(&s.slices, id)
		s.deleted++
	}
	return true, nil
}

// pick returns one of ids at random, if there is one.
func pick(ids *[]int64) (int64, bool) {
	if len(*ids) == 0 {
		return 0, false
	}
	return (*ids)[rand.IntN(len(*ids))], true
}

// remove removes id from ids.
func remove(ids *[]int64, id int64) {
	for i, x := range *ids {
		if x == id {
			*ids = append((*ids)[:i], (*ids)[i+1:]...)
			return
		}
	}
}
