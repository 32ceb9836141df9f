// Package playbooks is the Ansible side of tsync's Ansible dispatch: the
// roles shipped with tsync (roles/, the payloads of Ansible steps, looked up
// by their TemplateName) and the callback plugin through which tsync learns
// which task failed (callback_plugins/). Both are built into the tsync binary
// and written out under observer_sys_dir/_ansible/ when a runner starts, so a
// worker needs nothing beside its binary but ansible-playbook. See README.md
// for the layout and the wrapper playbook tsync renders around a role.
package playbooks

import "embed"

// FS holds roles/ and callback_plugins/.
//
//go:embed roles callback_plugins
var FS embed.FS
