package outbox

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// StreamID is the id of a Redis stream entry, "<Ms>-<Seq>", in PostgreSQL's
// bigint range, as the outbox records the stream entry an entry was
// published as. The zero StreamID (0-0, which no stream entry has) means
// "not published".
type StreamID struct{ Ms, Seq int64 }

// MaxStreamID is the highest StreamID.
var MaxStreamID = StreamID{math.MaxInt64, math.MaxInt64}

// IsZero reports whether id is the zero StreamID.
func (id StreamID) IsZero() bool { return id == StreamID{} }

// Less reports whether id comes before o in a stream.
func (id StreamID) Less(o StreamID) bool {
	return id.Ms < o.Ms || (id.Ms == o.Ms && id.Seq < o.Seq)
}

// Next returns the id right after id (MaxStreamID for MaxStreamID).
func (id StreamID) Next() StreamID {
	switch {
	case id == MaxStreamID:
		return id
	case id.Seq == math.MaxInt64:
		return StreamID{id.Ms + 1, 0}
	}
	return StreamID{id.Ms, id.Seq + 1}
}

// String returns id as Redis writes it, "<Ms>-<Seq>".
func (id StreamID) String() string { return fmt.Sprintf("%d-%d", id.Ms, id.Seq) }

// ParseStreamID parses the id of a stream entry as XADD returns it; it
// reports false for anything else, and for 0-0.
func ParseStreamID(s string) (StreamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return StreamID{}, false
	}
	ms, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || ms < 0 || seq < 0 {
		return StreamID{}, false
	}
	id := StreamID{Ms: ms, Seq: seq}
	return id, !id.IsZero()
}

// StreamIDOf reads a stream position as Redis reports it (a group's last
// delivered id, the lowest pending id, a stream's first or last entry), and
// never fails: a part that does not parse reads as 0 ("" and "0-0" are the
// zero StreamID), and a part beyond the bigint range (which Redis never
// makes from its clock) reads as the highest.
func StreamIDOf(s string) StreamID {
	a, b, _ := strings.Cut(s, "-")
	ms, _ := strconv.ParseUint(a, 10, 64)
	seq, _ := strconv.ParseUint(b, 10, 64)
	if ms > math.MaxInt64 {
		return MaxStreamID
	}
	return StreamID{Ms: int64(ms), Seq: int64(min(seq, math.MaxInt64))}
}

// StreamBounds are the ends of a stream: every entry it holds has an id in
// [First, Last].
type StreamBounds struct {
	// First is the id of the stream's first entry; for an empty stream, the
	// id after Last; for a missing stream, zero.
	First StreamID
	// Last is the id of the stream's last entry; for an empty stream, the
	// last id it gave (last-generated-id); for a missing stream, zero.
	Last StreamID
}
