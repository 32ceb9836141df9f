package activities

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/internal/ansible"
	"github.com/tsync/tsync/internal/engine"
	"github.com/tsync/tsync/models"
)

// defaultRunner runs the playbooks of Activities without a Runner of their
// own: zero ansible.Options (sys dir var/sys, executing).
var defaultRunner = sync.OnceValue(func() *ansible.Runner { return ansible.NewRunner(ansible.Options{}) })

func (a *Activities) ansibleRunner() *ansible.Runner {
	if a.Ansible != nil {
		return a.Ansible
	}
	return defaultRunner()
}

// syncRecord runs step's SyncRecord, or its playbook for an Ansible step.
func (a *Activities) syncRecord(ctx context.Context, step *engine.Step, ref models.Ref, obj models.Object) error {
	if step.Ansible != nil {
		return a.runPlaybook(ctx, step.Ansible, ref, obj, engine.OpSync)
	}
	return step.Go.SyncRecord(ctx, obj)
}

// deleteRecord runs step's DeleteRecord, or its playbook with state absent
// for an Ansible step.
func (a *Activities) deleteRecord(ctx context.Context, step *engine.Step, ref models.Ref, obj models.Object) error {
	if step.Ansible != nil {
		return a.runPlaybook(ctx, step.Ansible, ref, obj, engine.OpDelete)
	}
	return step.Go.DeleteRecord(ctx, obj)
}

// runPlaybook runs an Ansible step for obj. Errors of ExtraAttributes and
// AnsibleTarget are returned as they are (so they may defer); under
// observer_pretend, the run that did not happen is an InnocuousError, so the
// object is recorded with code 1 and a status saying it was emulated.
func (a *Activities) runPlaybook(ctx context.Context, step tsync.AnsibleStep, ref models.Ref, obj models.Object, op engine.Op) error {
	vars, err := step.ExtraAttributes(ctx, obj)
	if err != nil {
		return err
	}
	target := tsync.LocalTarget
	if t, ok := step.(tsync.AnsibleTargeter); ok {
		if target, err = t.AnsibleTarget(ctx, obj); err != nil {
			return err
		}
	}
	res, err := a.ansibleRunner().Run(ctx, ansible.Job{
		Model: ref.Model, ID: ref.ID, Operation: op, Role: step.TemplateName(), Vars: vars, Target: target,
	})
	if err != nil {
		return err
	}
	if res.Pretend {
		return tsync.Innocuous(fmt.Errorf("pretend (observer_pretend): %s not run, rendered in %s", op, filepath.Join(res.Dir, "playbook.yml")))
	}
	return nil
}
