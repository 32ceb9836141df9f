// Package ansibletest helps test Ansible steps against the real tools: it
// starts a private sshd on 127.0.0.1 that accepts a key made for the test,
// and finds the processes a playbook left behind.
package ansibletest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequirePlaybook skips the test when ansible-playbook is not installed,
// saying how to install it. (CI installs it: make tools.)
func RequirePlaybook(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("skipped: ansible-playbook is not installed; run scripts/ensure-tools.sh (make tools)")
	}
}

// SSHD is a private sshd serving 127.0.0.1 for one test.
type SSHD struct {
	// Port is the port it listens on (127.0.0.1).
	Port int
	// User is the user the key logs in as: the current user.
	User string
	// Key is the private key file it accepts.
	Key string
	// Log is sshd's log (LogLevel DEBUG1), for asserting what it served.
	Log string
	// SSHArgs are the ssh options that trust it without a known_hosts entry.
	SSHArgs []string
}

// StartSSHD starts an sshd with a fresh host key and an authorized key for
// the current user, stopped when the test ends. The test is skipped (with
// the reason) only when sshd cannot run here.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("skipped: the sshd helper runs on Linux only")
	}
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		if sshd, err = exec.LookPath("sshd"); err != nil {
			t.Skip("skipped: sshd is not installed (openssh-server); run scripts/ensure-tools.sh (make tools)")
		}
	}
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed (openssh-client); run scripts/ensure-tools.sh (make tools)", tool)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Skipf("skipped: no current user: %v", err)
	}
	// sshd wants its privilege separation directory; as root we can make it.
	if _, err := os.Stat("/run/sshd"); err != nil && os.Getuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	dir := shortTempDir(t)
	keygen := func(name string) {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tsync-test", "-f", filepath.Join(dir, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	keygen("host_key")
	keygen("client_key")
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
LogLevel DEBUG1
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"))
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sshd, "-t", "-f", confPath).CombinedOutput(); err != nil {
		t.Skipf("skipped: sshd cannot run here (sshd -t: %v: %s)", err, bytes.TrimSpace(out))
	}
	logPath := filepath.Join(dir, "sshd.log")
	cmd := exec.Command(sshd, "-D", "-f", confPath, "-E", logPath)
	if err := cmd.Start(); err != nil {
		t.Skipf("skipped: sshd cannot run here: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Skipf("skipped: sshd cannot run here: it exited: %s", bytes.TrimSpace(log))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on 127.0.0.1:%d after 10s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &SSHD{
		Port: port,
		User: u.Username,
		Key:  filepath.Join(dir, "client_key"),
		Log:  logPath,
		SSHArgs: []string{
			"-i", filepath.Join(dir, "client_key"),
			"-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null",
			"-o", "LogLevel=ERROR",
		},
	}
}

// Logged returns sshd's log so far.
func (s *SSHD) Logged() string {
	data, _ := os.ReadFile(s.Log)
	return string(data)
}

// FreePort returns a TCP port of 127.0.0.1 that nothing listens on.
func FreePort(t testing.TB) int { return freePort(t) }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// shortTempDir is a temporary directory with a short path (sockets and ssh
// control paths have length limits), removed when the test ends.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tsync-ssh-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// ShortTempDir is a temporary directory with a short path, for a sys dir
// whose ssh control sockets must fit in a socket address.
func ShortTempDir(t testing.TB) string { return shortTempDir(t) }

// ProcessesWithEnv lists the processes (pid and command line) whose
// environment holds the exact entry env ("KEY=value"). A playbook's
// processes all inherit the runner's TSYNC_ANSIBLE_EVENTS, so this finds
// whatever a run left behind.
func ProcessesWithEnv(env string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(data, []byte{0}) {
			if string(kv) == env {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")))
				break
			}
		}
	}
	return out
}
