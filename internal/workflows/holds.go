package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/tsync/tsync/models"
)

// maxNamed is how many blocking objects a held status names.
const maxNamed = 5

// holdStatus records that the object is held, with code 0 and status.
func (r *run) holdStatus(ctx workflow.Context, status string) error {
	r.setState(ctx, StateHeld, status)
	return r.recordStatus(ctx, models.CodePending, status)
}

// hold records that the object is held and sleeps for the loop interval.
func (r *run) hold(ctx workflow.Context, status string) error {
	if err := r.holdStatus(ctx, status); err != nil {
		return err
	}
	return r.pause(ctx)
}

// refNames lists refs for a status.
func refNames(refs []models.Ref) string {
	names := make([]string, len(refs))
	for i, ref := range refs {
		names[i] = ref.String()
	}
	return nameSome(names)
}

// nameSome lists names for a status: the first maxNamed, and how many more.
func nameSome(names []string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed)
}
