package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/hooklog/hooklog/catalog"
	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

// Limits of GET /api/v1/events. A page ends early once its records' data
// reaches maxEventsPageBytes, so large events cannot make huge responses; the
// first record is always there.
const (
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
	maxEventsPageBytes = 8 << 20
)

// publishInput is the body FFmate sends to its webhooks: {"event","data"},
// with an optional timestamp.
type publishInput struct {
	Event     *string         `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *string         `json:"timestamp"`
}

// publish appends one event, or a JSON array of events atomically, and
// responds with 201 once they are durable.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}

	entries, isArray, err := parsePublish(body, s.maxJSONDepth)
	if err != nil {
		return err
	}

	var records []eventlog.Record
	if values, ok := r.Header["Idempotency-Key"]; ok {
		key := strings.TrimSpace(values[0])
		if !validIdempotencyKey(key) {
			return badRequest("invalid Idempotency-Key %q; expected 1 to 255 visible ASCII characters", key)
		}
		var replayed bool
		records, replayed, err = s.log.AppendIdempotent(r.Context(), entries, eventlog.Idempotency{
			Key: key, Hash: sha256.Sum256(body), TTL: s.idempotencyWindow,
		})
		if errors.Is(err, eventlog.ErrIdempotencyConflict) {
			return conflict("Idempotency-Key %q was used within the last %s for a different body; use a new key for a new request", key, s.idempotencyWindow)
		}
		if replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
	} else {
		records, err = s.log.Append(r.Context(), entries)
	}
	if err != nil {
		return err
	}

	var buf []byte
	if isArray {
		buf = append(buf, '[')
	}
	for i, rec := range records {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendPublished(buf, rec)
	}
	if isArray {
		buf = append(buf, ']')
	}
	writeRawJSON(w, http.StatusCreated, buf)
	return nil
}

// appendPublished appends the response object of one published record,
// {"seq","id","event","timestamp"}. Ids and timestamps have no characters
// that JSON escapes.
func appendPublished(buf []byte, rec eventlog.Record) []byte {
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendUint(buf, rec.Seq, 10)
	buf = append(buf, `,"id":"`...)
	buf = append(buf, rec.ID.String()...)
	buf = append(buf, `","event":`...)
	buf = eventlog.AppendJSONString(buf, rec.Event)
	buf = append(buf, `,"timestamp":"`...)
	buf = append(buf, rec.TimestampText()...)
	return append(buf, `"}`...)
}

// parsePublish checks that a publish body is UTF-8 and nests JSON at most
// maxDepth levels deep, and decodes it: the usual body in one pass with
// scanPublish, any other with decodePublish.
func parsePublish(body []byte, maxDepth int) ([]eventlog.Entry, bool, error) {
	if !utf8.Valid(body) {
		return nil, false, badRequest("request body is not valid UTF-8, which JSON requires")
	}
	if inputs, isArray, ok := scanPublish(body, maxDepth); ok {
		return publishEntries(inputs, isArray)
	}
	if depth := jsonDepth(body); depth > maxDepth {
		return nil, false, badRequest("request body nests JSON %d levels deep; at most %d are accepted", depth, maxDepth)
	}
	return decodePublish(body)
}

// decodePublish parses a publish body: one event object or a non-empty array
// of them. It reports whether the body was an array.
func decodePublish(body []byte) ([]eventlog.Entry, bool, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, invalidBody(`request body is empty; expected {"event":"…","data":…} or an array of such objects`)
	}

	inputs, isArray, err := decodeInputs(body)
	if err != nil {
		return nil, isArray, err
	}
	return publishEntries(inputs, isArray)
}

// decodeInputs decodes a non-empty publish body with encoding/json: one
// event object or a non-empty array of them.
func decodeInputs(body []byte) ([]publishInput, bool, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	isArray := len(trimmed) > 0 && trimmed[0] == '['
	if isArray {
		var inputs []publishInput
		if err := decodeStrict(body, &inputs); err != nil {
			return nil, true, err
		}
		if len(inputs) == 0 {
			return nil, true, badRequest("the array of events is empty; send at least one event")
		}
		return inputs, true, nil
	}

	var in publishInput
	if err := decodeStrict(body, &in); err != nil {
		return nil, false, err
	}
	return []publishInput{in}, false, nil
}

// publishEntries checks decoded publish inputs and returns their entries.
func publishEntries(inputs []publishInput, isArray bool) ([]eventlog.Entry, bool, error) {
	entries := make([]eventlog.Entry, len(inputs))
	for i, in := range inputs {
		where := ""
		if isArray {
			where = "event at index " + strconv.Itoa(i) + ": "
		}

		if in.Event == nil {
			return nil, isArray, badRequest(`%smissing field "event"; allowed events are %s`, where, catalog.List())
		}
		if !catalog.Valid(*in.Event) {
			return nil, isArray, badRequest(`%sinvalid event %q; allowed events are %s`, where, *in.Event, catalog.List())
		}
		if in.Data == nil {
			return nil, isArray, badRequest(`%smissing field "data"; it takes any JSON value`, where)
		}
		if in.Timestamp != nil {
			if _, err := time.Parse(time.RFC3339Nano, *in.Timestamp); err != nil {
				return nil, isArray, badRequest(`%sinvalid timestamp %q; expected RFC 3339, such as 2025-02-13T14:05:32Z`, where, *in.Timestamp)
			}
		}

		entries[i] = eventlog.Entry{Event: *in.Event, Data: in.Data, Source: eventlog.SourcePublished}
	}
	return entries, isArray, nil
}

func validIdempotencyKey(key string) bool {
	if key == "" || len(key) > 255 {
		return false
	}
	for _, c := range []byte(key) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// jsonDepth returns the deepest nesting of arrays and objects in data, which
// need not be valid JSON. Brackets inside strings do not count.
func jsonDepth(data []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// readBody reads the request body, which ServeHTTP has limited in size,
// without a leading UTF-8 byte order mark. A body that declares its length
// is read into one buffer of that size.
func readBody(r *http.Request) ([]byte, error) {
	var body []byte
	var err error
	if r.ContentLength <= 0 || r.ContentLength > maxPresizedBody {
		body, err = io.ReadAll(r.Body)
	} else {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, badRequest("request body ended after fewer bytes than its Content-Length of %d", r.ContentLength)
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimPrefix(body, utf8BOM), nil
}

// maxPresizedBody is the largest declared length that readBody allocates
// at once. Longer bodies grow their buffer as they arrive, so a client that
// declares a long body and sends nothing reserves at most this much.
const maxPresizedBody = 64 << 10

// utf8BOM is the byte order mark that some Windows tools write before
// UTF-8 text, such as Windows PowerShell 5.1's Out-File -Encoding UTF8.
// RFC 8259 (section 8.1) forbids senders to add it but lets parsers ignore
// it, and hooklog ignores it at the start of a request body.
var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// decodeStrict decodes exactly one JSON value from body into v.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var validation *projections.ValidationError
		if errors.As(err, &validation) {
			return validation
		}
		return invalidBody("request body is not valid JSON of the expected shape: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidBody("request body has data after its JSON value")
	}
	return nil
}

func jsonErrorText(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field != "" {
			return "field \"" + typeErr.Field + "\" must be a " + typeErr.Type.String() + ", not a JSON " + typeErr.Value
		}
		return "expected a JSON object, or an array of objects where one is allowed, not a JSON " + typeErr.Value
	}
	return err.Error()
}

// listEvents returns records in seq order: ?after=SEQ (exclusive, default
// 0), &limit=N (1 to 1000, default 100) and &event=NAME.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), "after", 0)
	if err != nil {
		return err
	}
	limit, err := intParam(q.Get("limit"), "limit", defaultEventsLimit, 1, maxEventsLimit)
	if err != nil {
		return err
	}

	query := eventlog.Query{After: after, Limit: limit, MaxBytes: maxEventsPageBytes}
	if name := q.Get("event"); name != "" {
		if !catalog.Valid(name) {
			return invalidQuery("invalid event %q; allowed events are %s", name, catalog.List())
		}
		query.Events = []string{name}
	}

	records, err := s.log.Read(query)
	if err != nil {
		return err
	}

	buf := []byte{'['}
	for i, rec := range records {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = rec.AppendJSON(buf)
	}
	writeRawJSON(w, http.StatusOK, append(buf, ']'))
	return nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	raw := mux.Vars(r)["seq"]
	seq, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || seq == 0 {
		return badRequest("invalid seq %q; a seq is a whole number from 1", raw)
	}

	rec, err := s.log.Get(seq)
	if err != nil {
		if errors.Is(err, eventlog.ErrNotFound) {
			return notFound("event with seq %d not found; the log ends at seq %d", seq, s.log.Head())
		}
		return err
	}
	writeRawJSON(w, http.StatusOK, rec.AppendJSON(nil))
	return nil
}

// uintParam parses an optional non-negative query parameter.
func uintParam(raw, name string, def uint64) (uint64, error) {
	if raw == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return 0, invalidQuery("invalid %s %q; expected a whole number from 0", name, raw)
	}
	return v, nil
}

// intParam parses an optional query parameter in [lo, hi].
func intParam(raw, name string, def, lo, hi int) (int, error) {
	if raw == "" {
		return def, nil
	}
	v, err := strconv.Atoi(raw)
	if err != nil || v < lo || v > hi {
		return 0, invalidQuery("invalid %s %q; expected a whole number from %d to %d", name, raw, lo, hi)
	}
	return v, nil
}
