package cluster

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// ports are the ports of a cluster's processes.
type ports struct {
	// grpc and membership are each service's gRPC and membership port.
	grpc, membership map[string]int
	// ui is the Web UI's port, -1 without one.
	ui int
}

// membershipOffset puts the membership ports after the gRPC ones.
const membershipOffset = 100

// pickPorts returns the ports for a frontend port (0: free ports for
// everything) and a UI port (0: a free one; -1: none), and fails when one
// of them is in use, naming command in its hint.
func pickPorts(host string, port, uiPort int, command string) (ports, error) {
	if command == "" {
		command = "tsync"
	}
	p := ports{grpc: map[string]int{}, membership: map[string]int{}, ui: uiPort}
	taken := map[int]bool{}
	pick := func(fixed int, what string) (int, error) {
		if fixed == 0 {
			return freePort(host, taken)
		}
		if !free(host, fixed) {
			return 0, fmt.Errorf("cluster: port %d (%s) is in use on %s: stop what listens there (a cluster started before: `%s dev cluster stop`) or choose other ports", fixed, what, host, command)
		}
		taken[fixed] = true
		return fixed, nil
	}
	// The frontend first: a fixed port's neighbours follow it.
	order := []string{"frontend", "history", "matching", "worker"}
	for i, name := range order {
		var err error
		fixed := 0
		if port != 0 {
			fixed = port + i
		}
		if p.grpc[name], err = pick(fixed, name+" gRPC"); err != nil {
			return ports{}, err
		}
		if port != 0 {
			fixed = port + membershipOffset + i
		}
		if p.membership[name], err = pick(fixed, name+" membership"); err != nil {
			return ports{}, err
		}
	}
	if uiPort >= 0 {
		var err error
		if p.ui, err = pick(uiPort, "Web UI"); err != nil {
			return ports{}, err
		}
	}
	return p, nil
}

// free reports whether host:port can be listened on.
func free(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// freePort returns a port of host that was free a moment ago and is not in
// taken (and adds it there): below the range the system hands out as
// ephemeral ports when it can, so that no outgoing connection takes it
// while a killed service is down.
func freePort(host string, taken map[int]bool) (int, error) {
	if low := ephemeralLow(); low > 11000 {
		for range 200 {
			port := 10000 + mrand.IntN(low-10000)
			if !taken[port] && free(host, port) {
				taken[port] = true
				return port, nil
			}
		}
	}
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("cluster: find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !taken[port] {
			taken[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("cluster: found no free port on %s", host)
}

// ephemeralLow returns the lowest ephemeral port of Linux
// (net.ipv4.ip_local_port_range), or 0 when it is not known.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0
	}
	return low
}
