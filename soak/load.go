package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tsync/tsync/internal/testmodels"
)

// load makes a change every `every` for duration: creates, updates,
// deletes. At 1/3 of the time the in-process worker stops (gracefully) and
// a worker process takes over; at 2/3 that process is SIGKILLed and an
// in-process worker takes over (see handOver).
func (s *soak) load(ctx context.Context, duration, every time.Duration) error {
	end := time.Now().Add(duration)
	switchAt := []time.Time{time.Now().Add(duration / 3), time.Now().Add(2 * duration / 3)}
	for time.Now().Before(end) {
		if len(switchAt) > 0 && time.Now().After(switchAt[0]) {
			switchAt = switchAt[1:]
			if err := s.handOver(ctx); err != nil {
				return err
			}
		}
		changed, err := s.change(ctx)
		if err != nil {
			return err
		}
		if !changed {
			continue
		}
		time.Sleep(every)
	}
	return nil
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
