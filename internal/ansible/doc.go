// Package ansible runs the playbooks of tsync's Ansible steps (see
// tsync.AnsibleStep): it renders, for one object and one operation, a wrapper
// playbook around the step's role, writes it to observer_sys_dir with its
// variables, inventory and config, runs the real ansible-playbook on it, and
// turns the outcome into an error a step would return.
//
// # The sys dir
//
// Each run writes, in 0700 directories, 0600 files (run.sh 0700):
//
//	<observer_sys_dir>/<Model>/<id>/<sync|delete>/
//	    playbook.yml    the wrapper: hosts, connection, user, become, gather_facts off, the role
//	    inventory.yml   the hosts and their connection variables (port, key, ssh args, jump host)
//	    vars.yml        the step's ExtraAttributes plus state and tsync, every string !unsafe
//	    ansible.cfg     roles_path and the settings the run used
//	    run.sh          re-runs it by hand, as tsync ran it: ./run.sh [ansible-playbook flags]
//	    run.log         the output of the last run (or a note that it was not run: pretend)
//	    events.jsonl    the last run's task failures and recap, which tsync reads
//	<observer_sys_dir>/_ansible/
//	    roles/              the roles shipped in tsync's playbooks/ (written by each runner)
//	    callback_plugins/   tsync_events, which writes events.jsonl
//
// The files of the last run stay, so an operator can read what ran and run it
// again with one command: var/sys/Service/1/sync/run.sh.
//
// # Variables are data
//
// Variables reach ansible-playbook as a file (-e @vars.yml); no shell is ever
// involved, and every string is written with the !unsafe tag. That tag
// matters: Ansible templates variable values when they are used, so a field
// holding "{{ lookup('pipe', 'rm -rf ~') }}" in a plain JSON or YAML vars file
// would run that command on the worker. Marked !unsafe, it is text. The
// playbook and inventory hold no object data but validated host, user and
// role names and numbers, all written by a YAML library.
//
// # Outcomes
//
//   - exit code 0: success (nil error).
//   - a failed task: a *TaskError naming the task, the host and Ansible's
//     message (msg, with the command's stderr when there is one), not the
//     log. The step fails: code 2, dependents held, retried with backoff.
//   - an unreachable host: an *UnreachableError, also a plain failure. The
//     design lists no such deferral, and treating it as one would hide a dead
//     host behind code 0 and retry it every loop interval forever; as an error
//     operators see it (code 2, "host ... unreachable: ..."), dependents are
//     held, and retries back off. A step that prefers to defer can wrap the
//     error: errors.As(err, new(*ansible.UnreachableError)) then tsync.Defer.
//   - any other non-zero exit (a syntax error, a missing role): a *RunError
//     with the exit code and Ansible's ERROR! line.
//   - observer_pretend: everything is written, nothing is executed, and the
//     Result says Pretend; the activity records the sync as emulated.
//
// # Processes
//
// ansible-playbook runs in a process group of its own. When the context is
// done (the activity was cancelled or timed out), the whole group gets
// SIGTERM, then SIGKILL after Options.KillGrace, so no ansible-playbook, fork
// or module process is left behind. (Processes that leave the group on their
// own, such as ssh ControlPersist masters, end by themselves after their idle
// time.) The activity heartbeats while the playbook runs.
//
// # Jump host
//
// With observer_proxy_ssh "[user@]host[:port]", every ssh connection goes
// through that host: the inventory sets ansible_ssh_common_args to a
// ProxyCommand running `ssh -W [%h]:%p` on it. Options.SSHArgs apply to both
// hops; the rest (host keys, agent, per-host options) comes from the worker
// user's ssh configuration, and host key checking stays on.
package ansible
