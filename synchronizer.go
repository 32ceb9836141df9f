package tsync

import "github.com/tsync/tsync/models"

// Synchronizer is what an application registers: its models and the modules
// that synchronize them. Its name, task queue and the rest come from config.
// It is checked when it is opened (app.Open, or tsynctest in a test): every
// step, watcher and policy must be of a registered model, no model may be
// synchronized by two steps, links must be valid and acyclic, and watcher
// names unique. Opening it never changes Models.
type Synchronizer struct {
	// Models holds every model the steps synchronize or depend on.
	Models *models.Registry
	// Steps are the work-based modules written in Go.
	Steps []Step
	// AnsibleSteps are the work-based modules whose work is an Ansible
	// playbook.
	AnsibleSteps []AnsibleStep
	// Watchers are the event-based modules (see Watcher); they run only with
	// observer_enable_watchers.
	Watchers []Watcher
	// Policies are the model policies, run before an object is synced.
	Policies []Policy
}
