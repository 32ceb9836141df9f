package models_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tsync/tsync/models"
)

func TestBasePendingUnit(t *testing.T) {
	now := time.Now()
	before, after := now.Add(-time.Microsecond), now.Add(time.Microsecond)
	cases := []struct {
		name string
		b    models.Base
		want bool
	}{
		{"never enacted", models.Base{Updated: now}, true},
		{"enacted before", models.Base{Updated: now, Enacted: &before}, true},
		{"enacted equal", models.Base{Updated: now, Enacted: &now}, false},
		{"enacted after", models.Base{Updated: now, Enacted: &after}, false},
		{"deleted", models.Base{Updated: now, Deleted: true}, false},
		{"no_sync", models.Base{Updated: now, NoSync: true}, false},
		{"lazy_blocked", models.Base{Updated: now, LazyBlocked: true}, false},
		{"write_protect", models.Base{Updated: now, WriteProtect: true}, true},
		{"error code", models.Base{Updated: now, Enacted: &before, BackendCode: models.CodeError}, true},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.b.Pending(), c.name)
	}
}
