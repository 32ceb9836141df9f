#!/usr/bin/env bash
# ensure-tools.sh: make sure the system tools tsync's Ansible dispatch and its
# tests use are installed: ansible-playbook (Debian's ansible-core), and
# ssh, ssh-keygen and sshd (openssh-client, openssh-server; the tests start a
# private sshd on 127.0.0.1 to test the ssh connection and the jump host),
# dot (Debian's graphviz) for `tsync deps --format svg|png`, and
# redis-server (the watchers' tests start private ones, to kill and restart
# them), and, with --test, chromium (the object view's browser test drives
# it headless; the demo does not need it).
#
# What is missing is installed with apt-get when this is a Debian-style
# machine and we are root; otherwise the script says what to install and
# fails. Run by `make tools` (so by `make test` and `make demo`).
set -euo pipefail

# command -> Debian package
declare -A want=(
	[ansible-playbook]=ansible-core
	[ssh]=openssh-client
	[ssh-keygen]=openssh-client
	[sshd]=openssh-server
	[dot]=graphviz
	[redis-server]=redis-server
)
if [[ ${1-} == --test ]]; then
	want[chromium]=chromium
fi

have() {
	case "$1" in
	sshd) [[ -x /usr/sbin/sshd ]] || command -v sshd >/dev/null ;;
	*) command -v "$1" >/dev/null ;;
	esac
}

missing=()
for cmd in "${!want[@]}"; do
	if ! have "$cmd"; then
		pkg=${want[$cmd]}
		[[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
	fi
done

if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "Tools: installing ${missing[*]} with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		# The package lists may be missing or stale on a fresh machine.
		if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/tsync-apt.log 2>&1; then
			apt-get update -q >/tmp/tsync-apt.log 2>&1 || { cat /tmp/tsync-apt.log >&2; exit 1; }
			apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/tsync-apt.log 2>&1 || { cat /tmp/tsync-apt.log >&2; exit 1; }
		fi
		# Debian starts no sshd in a container and needs no system one: the
		# tests run their own on a free port.
	else
		cat >&2 <<MSG
Tools: missing ${missing[*]}. Install them, e.g. (Debian, as root):
    apt-get install -y --no-install-recommends ${missing[*]}
ansible-playbook runs the Ansible steps; the tests also use ssh, ssh-keygen, sshd, redis-server and chromium.
MSG
		exit 1
	fi
fi

# sed reads to the end: head would close the pipe early, and ansible-playbook
# then prints a Python "Broken pipe" traceback about one run in four.
echo "Tools: $(ansible-playbook --version | sed -n 1p), $(ssh -V 2>&1), $(redis-server --version | cut -d' ' -f1-3)"
