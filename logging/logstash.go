package logging

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueue is how many lines a Logstash keeps while its far end is away.
const DefaultQueue = 10000

// Logstash is an io.Writer that streams each Write (one JSON record from a
// slog handler) as a line over TCP. Writes never block on the network: lines
// are queued, and while the far end is unreachable the writer reconnects
// with backoff and keeps the newest lines (the oldest are dropped and
// counted once the queue is full).
type Logstash struct {
	addr  string
	queue chan []byte
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	dropped atomic.Int64
	sent    atomic.Int64
}

// NewLogstash starts streaming to addr ("host:port"), queueing up to queue
// lines (0: DefaultQueue).
func NewLogstash(addr string, queue int) *Logstash {
	if queue <= 0 {
		queue = DefaultQueue
	}
	l := &Logstash{addr: addr, queue: make(chan []byte, queue), done: make(chan struct{})}
	l.wg.Add(1)
	go l.run()
	return l
}

// Write queues p as one line.
func (l *Logstash) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	line = append(append(make([]byte, 0, len(line)+1), line...), '\n')
	for {
		select {
		case l.queue <- line:
			return len(p), nil
		default:
		}
		// Full: drop the oldest line and try again.
		select {
		case <-l.queue:
			l.dropped.Add(1)
		default:
		}
	}
}

// Dropped returns how many lines were dropped because the queue was full.
func (l *Logstash) Dropped() int64 { return l.dropped.Load() }

// Sent returns how many lines were written to the far end.
func (l *Logstash) Sent() int64 { return l.sent.Load() }

// Close sends what is queued (waiting at most a second for the far end),
// then stops.
func (l *Logstash) Close() error {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
	return nil
}

func (l *Logstash) run() {
	defer l.wg.Done()
	var conn net.Conn
	backoff := 100 * time.Millisecond
	var pending []byte // a line that failed to send, sent first next time
	closing := false
	deadline := time.Time{}
	for {
		if pending == nil {
			select {
			case pending = <-l.queue:
			case <-l.done:
				if !closing {
					closing, deadline = true, time.Now().Add(time.Second)
				}
				select {
				case pending = <-l.queue:
				default:
					if conn != nil {
						conn.Close()
					}
					return
				}
			}
		}
		if closing && time.Now().After(deadline) {
			if conn != nil {
				conn.Close()
			}
			return
		}
		if conn == nil {
			c, err := net.DialTimeout("tcp", l.addr, time.Second)
			if err != nil {
				select {
				case <-time.After(backoff):
				case <-l.done:
					if !closing {
						closing, deadline = true, time.Now().Add(time.Second)
					}
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			conn, backoff = c, 100*time.Millisecond
		}
		if closed(conn) {
			conn.Close()
			conn = nil
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(pending); err != nil {
			conn.Close()
			conn = nil
			continue
		}
		l.sent.Add(1)
		pending = nil
	}
}

// closed reports whether the far end closed conn. Logstash never writes, so
// a read that does not time out at once means EOF or an error: without this
// check the first line written after the far end went away would be lost
// in the kernel's buffer.
func closed(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now())
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}
