package tsync

import (
	"context"

	"github.com/tsync/tsync/models"
)

// AnsibleStep is a step whose work is an Ansible playbook rather than Go code
// (the XOS TemplateName and get_extra_attributes); a Synchronizer lists them
// in AnsibleSteps. Build one with AnsibleStepOf, or implement the interface.
// As for Step, Synchronizes returns one object of each model it synchronizes
// (new(Service)), and the step may implement PendingFetcher.
//
// For each sync or delete of an object, tsync renders a wrapper playbook that
// runs the role named by TemplateName on the object's hosts (see
// AnsibleTargeter), writes it with its variables and inventory under
// observer_sys_dir as <Model>/<id>/<sync|delete>/, and runs ansible-playbook
// on it (package ansible). The role is looked up in observer_steps_dir, then
// in the roles shipped in playbooks/roles.
//
// Sync and delete run the same role; the variable state tells them apart:
//
//	state: present   # sync: make the backend match the object
//	state: absent    # delete: remove it
//
// as Ansible modules do, so a role is usually one list of tasks with
// `state: "{{ state }}"` or `when: state == 'absent'`. The variable tsync
// holds the object's reference: {model, id, operation ("sync" or "delete"),
// synchronizer}. Both names are reserved: ExtraAttributes must not return
// them.
//
// ExtraAttributes returns the playbook's variables for obj, loaded fresh
// from the database. They reach ansible-playbook as a file (-e @vars.yml),
// never through a shell, and every string in them is marked !unsafe, so
// Ansible does not template it: an object field holding "{{ lookup('pipe',
// ...) }}", quotes, newlines or shell metacharacters is data, never code.
// Names must be valid Ansible variable names (and had better not be names
// Ansible reserves for play keywords, such as name or port, which it warns
// about); values may be strings, numbers, booleans, nil, and maps and slices
// of them (other values are turned into those as encoding/json would).
//
// What a run means for the object, as for any step: success is code 1 and
// "OK"; a failed task is an error (code 2, dependents held, retried with
// backoff) whose text names the task, the host and Ansible's message; an
// unreachable host is an error too (see package ansible for why). An
// ExtraAttributes error is returned as is, so it may be a DeferredError.
// Under observer_pretend nothing is executed: the files are written and the
// sync is recorded as an InnocuousError saying so (code 1).
type AnsibleStep interface {
	// Synchronizes returns one object of each model the step synchronizes.
	Synchronizes() []models.Object
	// TemplateName names the role that does the work.
	TemplateName() string
	// ExtraAttributes returns the playbook's variables for obj.
	ExtraAttributes(ctx context.Context, obj models.Object) (map[string]any, error)
}

// AnsibleTargeter is implemented by Ansible steps that say where their
// playbook runs for an object (the XOS hostname, username and ansible_tag).
// Without it, a playbook runs on this machine (LocalTarget).
type AnsibleTargeter interface {
	AnsibleTarget(ctx context.Context, obj models.Object) (AnsibleTarget, error)
}

// AnsibleTarget says where and how a playbook runs: the hosts: line,
// connection, remote_user and become of the wrapper playbook, and the
// inventory.
type AnsibleTarget struct {
	// Hosts are the names or addresses of the hosts to run on (letters,
	// digits and ".-_:" only). Empty means "localhost".
	Hosts []string
	// Connection is "ssh" (the default when empty) or "local" (run on this
	// machine without ssh, whatever the host's name).
	Connection string
	// User is the remote user; empty leaves it to ssh (the current user or
	// the ssh config).
	User string
	// Port is the ssh port; 0 leaves it to ssh (22 or the ssh config).
	Port int
	// PrivateKeyFile is the ssh identity file; empty leaves it to ssh.
	PrivateKeyFile string
	// Become runs the tasks with privilege escalation (sudo).
	Become bool
}

// LocalTarget runs a playbook on this machine, without ssh.
var LocalTarget = AnsibleTarget{Hosts: []string{"localhost"}, Connection: "local"}

// AnsibleStepFuncs is an Ansible step of model struct T, made of functions.
// Make it an AnsibleStep with AnsibleStepOf.
type AnsibleStepFuncs[T any] struct {
	// Template names the role (TemplateName).
	Template string
	// Attributes returns the variables of the playbook for obj
	// (ExtraAttributes); nil means none.
	Attributes func(ctx context.Context, obj *T) (map[string]any, error)
	// Target says where the playbook runs for obj; nil means LocalTarget.
	Target func(ctx context.Context, obj *T) (AnsibleTarget, error)
}

// AnsibleStepOf returns the AnsibleStep of the model registered as T that
// runs f's role for every sync and delete. It implements AnsibleTargeter.
func AnsibleStepOf[T any, PT models.ObjectPtr[T]](f AnsibleStepFuncs[T]) AnsibleStep {
	return &ansibleStep[T, PT]{f: f}
}

type ansibleStep[T any, PT models.ObjectPtr[T]] struct {
	typedModel[T, PT]
	f AnsibleStepFuncs[T]
}

func (s *ansibleStep[T, PT]) TemplateName() string { return s.f.Template }

func (s *ansibleStep[T, PT]) ExtraAttributes(ctx context.Context, obj models.Object) (map[string]any, error) {
	o, err := s.cast("ansible step", obj)
	if err != nil {
		return nil, err
	}
	if s.f.Attributes == nil {
		return nil, nil
	}
	return s.f.Attributes(ctx, o)
}

func (s *ansibleStep[T, PT]) AnsibleTarget(ctx context.Context, obj models.Object) (AnsibleTarget, error) {
	o, err := s.cast("ansible step", obj)
	if err != nil {
		return AnsibleTarget{}, err
	}
	if s.f.Target == nil {
		return LocalTarget, nil
	}
	return s.f.Target(ctx, o)
}
