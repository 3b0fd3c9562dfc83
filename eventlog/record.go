package eventlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Source is who appended a record.
type Source uint8

const (
	// SourcePublished marks an event published by a producer through the API.
	SourcePublished Source = 0
	// SourceInternal marks an event that hooklog appended itself, such as a
	// change to one of its webhooks. Only these records drive projections.
	SourceInternal Source = 1
)

// String returns the name used for the source in the API.
func (s Source) String() string {
	if s == SourceInternal {
		return "internal"
	}
	return "published"
}

// Entry is one event to append.
type Entry struct {
	Event  string
	Data   []byte // a JSON value, stored byte for byte
	Source Source
}

// Record is one event in the log.
type Record struct {
	Seq       uint64
	ID        uuid.UUID
	Event     string
	Timestamp time.Time // UTC, set at append, never decreasing along the log
	Source    Source
	Data      []byte // the JSON value as appended
}

// TimestampText formats the record's timestamp as RFC 3339 in UTC with
// nanosecond precision, trailing zeros removed.
func (r Record) TimestampText() string {
	return r.Timestamp.UTC().Format(time.RFC3339Nano)
}

// AppendJSON appends the record as a JSON object to buf. The data value is
// copied byte for byte; encoding/json would compact it and escape HTML.
func (r Record) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendUint(buf, r.Seq, 10)
	buf = append(buf, `,"id":"`...)
	buf = append(buf, r.ID.String()...)
	buf = append(buf, `","event":`...)
	buf = AppendJSONString(buf, r.Event)
	buf = append(buf, `,"timestamp":"`...)
	buf = append(buf, r.TimestampText()...)
	buf = append(buf, `","source":"`...)
	buf = append(buf, r.Source.String()...)
	buf = append(buf, `","data":`...)
	buf = append(buf, r.Data...)
	return append(buf, '}')
}

// AppendJSONString appends s to buf as a JSON string.
func AppendJSONString(buf []byte, s string) []byte {
	quoted, err := json.Marshal(s)
	if err != nil {
		// Marshal fails only for values that are not strings.
		panic(err)
	}
	return append(buf, quoted...)
}

// The stored value of a record:
//
//	version (1) | source (1) | id (16) | unix nanoseconds (8, big endian) |
//	event name length (1) | event name | data
//
// The sequence number is the key, so it is not repeated in the value.
const (
	formatVersion = 1
	headerSize    = 1 + 1 + 16 + 8 + 1
)

var errCorrupt = errors.New("eventlog: corrupt record")

func encodeRecord(r Record) []byte {
	buf := make([]byte, 0, headerSize+len(r.Event)+len(r.Data))
	buf = append(buf, formatVersion, byte(r.Source))
	buf = append(buf, r.ID[:]...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Timestamp.UnixNano()))
	buf = append(buf, byte(len(r.Event)))
	buf = append(buf, r.Event...)
	return append(buf, r.Data...)
}

// decodeRecord decodes a stored value. The record's Data aliases value, so
// value must not be reused by the caller afterwards.
func decodeRecord(seq uint64, value []byte) (Record, error) {
	if len(value) < headerSize || value[0] != formatVersion {
		return Record{}, fmt.Errorf("%w: seq %d", errCorrupt, seq)
	}

	nameLen := int(value[headerSize-1])
	if len(value) < headerSize+nameLen {
		return Record{}, fmt.Errorf("%w: seq %d", errCorrupt, seq)
	}

	r := Record{
		Seq:    seq,
		Source: Source(value[1]),
	}
	copy(r.ID[:], value[2:18])
	r.Timestamp = time.Unix(0, int64(binary.BigEndian.Uint64(value[18:26]))).UTC()
	r.Event = string(value[headerSize : headerSize+nameLen])
	r.Data = value[headerSize+nameLen:]
	return r, nil
}
