package logging

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// receive accepts connections on ln and sends every line read to lines.
func receive(ln net.Listener, lines chan<- string) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			sc := bufio.NewScanner(conn)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
	}
}

func collect(t *testing.T, lines <-chan string, n int) []map[string]any {
	t.Helper()
	var out []map[string]any
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case l := <-lines:
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &rec), "line %q", l)
			out = append(out, rec)
		case <-timeout:
			t.Fatalf("got %d of %d lines", len(out), n)
		}
	}
	return out
}

// Logstash receives JSON lines, and keeps receiving them after its end goes
// away and comes back on the same address.
func TestLogstashSurvivesRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	lines := make(chan string, 100)
	go receive(ln, lines)

	log, closer, err := New(Options{Logstash: addr, Stderr: new(strings.Builder)})
	require.NoError(t, err)
	defer closer.Close()
	log.Info("first", "object", "Site 1")
	recs := collect(t, lines, 1)
	require.Equal(t, "first", recs[0]["msg"])
	require.Equal(t, "Site 1", recs[0]["object"])
	require.Equal(t, "INFO", recs[0]["level"])

	// The far end goes away, with the connection.
	require.NoError(t, ln.Close())
	time.Sleep(100 * time.Millisecond)
	for i := range 5 {
		log.Warn(fmt.Sprintf("while away %d", i))
	}
	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	defer ln2.Close()
	go receive(ln2, lines)
	recs = collect(t, lines, 5)
	for i, r := range recs {
		require.Equal(t, fmt.Sprintf("while away %d", i), r["msg"])
	}
	log.Info("after")
	require.Equal(t, "after", collect(t, lines, 1)[0]["msg"])
}

// A full queue drops the oldest lines and counts them; writes never block.
func TestLogstashQueueBounded(t *testing.T) {
	l := NewLogstash("127.0.0.1:1", 3) // nothing listens on port 1
	defer l.Close()
	start := time.Now()
	for i := range 10 {
		_, err := fmt.Fprintf(l, "{\"n\":%d}\n", i)
		require.NoError(t, err)
	}
	require.Less(t, time.Since(start), time.Second)
	require.GreaterOrEqual(t, l.Dropped(), int64(6))
}

func TestFileAndFormats(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "tsync.log")
	var stderr strings.Builder
	log, closer, err := New(Options{File: file, Format: "json", Stderr: &stderr})
	require.NoError(t, err)
	log.Info("to file", "k", 1)
	log.Debug("not logged")
	require.NoError(t, closer.Close())
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(data), `"msg":"to file"`)
	require.NotContains(t, string(data), "not logged")
	require.Empty(t, stderr.String())

	_, _, err = New(Options{Format: "xml"})
	require.EqualError(t, err, `log format "xml" is not one of text, json`)
	_, err = ParseLevel("loud")
	require.Error(t, err)
}
