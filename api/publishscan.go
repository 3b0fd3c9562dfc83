package api

// scanPublish decodes the usual publish body in one pass over it. The usual
// body is one object, or a non-empty array of objects. Each object has the
// keys "event" and "data" and maybe "timestamp", spelled so and each once,
// and its "event" and "timestamp" are strings without escapes. The same
// pass checks that the whole body is JSON and nests at most maxDepth levels.
//
// For any other body scanPublish returns ok false, and the caller decodes
// the body with encoding/json, which finds the same events or gives the
// precise error. So scanPublish needs to be right only about the bodies it
// accepts: for those its result equals encoding/json's (FuzzScanPublish
// checks it). It expects a body that is valid UTF-8.
func scanPublish(body []byte, maxDepth int) (inputs []publishInput, isArray, ok bool) {
	s := jsonScanner{data: body, maxDepth: maxDepth}
	s.skipSpace()
	switch s.peek() {
	case '{':
		in, ok := s.publishObject()
		if !ok {
			return nil, false, false
		}
		inputs = []publishInput{in}
	case '[':
		isArray = true
		if !s.open() {
			return nil, false, false
		}
		for {
			s.skipSpace()
			if s.peek() != '{' {
				return nil, false, false // also an empty array, which is an error
			}
			in, ok := s.publishObject()
			if !ok {
				return nil, false, false
			}
			inputs = append(inputs, in)

			done, ok := s.next(']')
			if !ok {
				return nil, false, false
			}
			if done {
				break
			}
		}
	default:
		return nil, false, false
	}

	s.skipSpace()
	if s.pos != len(s.data) {
		return nil, false, false
	}
	return inputs, isArray, true
}

// jsonScanner validates JSON in one pass. It keeps a position in data and
// the current nesting with its limit.
type jsonScanner struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
}

// peek returns the byte at the position, or 0 at the end.
func (s *jsonScanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// open moves past the '{' or '[' at the position and counts one more level
// of nesting. It reports false when that is deeper than allowed.
func (s *jsonScanner) open() bool {
	s.pos++
	s.depth++
	return s.depth <= s.maxDepth
}

// publishObject scans an event object at the position, which is at '{'.
func (s *jsonScanner) publishObject() (publishInput, bool) {
	var in publishInput
	if !s.open() {
		return in, false
	}
	for {
		s.skipSpace()
		key, ok := s.plainString()
		if !ok {
			return in, false
		}
		s.skipSpace()
		if s.peek() != ':' {
			return in, false
		}
		s.pos++
		s.skipSpace()

		switch string(key) {
		case "event":
			value, ok := s.plainString()
			if !ok || in.Event != nil {
				return in, false
			}
			event := string(value)
			in.Event = &event
		case "timestamp":
			value, ok := s.plainString()
			if !ok || in.Timestamp != nil {
				return in, false
			}
			timestamp := string(value)
			in.Timestamp = &timestamp
		case "data":
			start := s.pos
			if in.Data != nil || !s.value() {
				return in, false
			}
			in.Data = s.data[start:s.pos]
		default:
			return in, false
		}

		done, ok := s.next('}')
		if !ok {
			return in, false
		}
		if done {
			return in, in.Event != nil && in.Data != nil
		}
	}
}

// plainString scans a string without escapes at the position and returns
// its content.
func (s *jsonScanner) plainString() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.pos + 1
	escaped, ok := s.str()
	if !ok || escaped {
		return nil, false
	}
	return s.data[start : s.pos-1], true
}

// value scans any JSON value at the position.
func (s *jsonScanner) value() bool {
	switch c := s.peek(); {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || isDigit(c):
		return s.number()
	}
	return false
}

func (s *jsonScanner) object() bool {
	if !s.open() {
		return false
	}
	if s.empty('}') {
		return true
	}
	for {
		s.skipSpace()
		if s.peek() != '"' {
			return false
		}
		if _, ok := s.str(); !ok {
			return false
		}
		s.skipSpace()
		if s.peek() != ':' {
			return false
		}
		s.pos++
		s.skipSpace()
		if !s.value() {
			return false
		}
		if done, ok := s.next('}'); done || !ok {
			return ok
		}
	}
}

func (s *jsonScanner) array() bool {
	if !s.open() {
		return false
	}
	if s.empty(']') {
		return true
	}
	for {
		s.skipSpace()
		if !s.value() {
			return false
		}
		if done, ok := s.next(']'); done || !ok {
			return ok
		}
	}
}

// empty reports whether closing follows at once, and moves past it if so.
func (s *jsonScanner) empty(closing byte) bool {
	s.skipSpace()
	if s.peek() != closing {
		return false
	}
	s.pos++
	s.depth--
	return true
}

// next scans past the ',' or the closing byte that follows a member of an
// object or an element of an array. It reports done at the closing byte.
func (s *jsonScanner) next(closing byte) (done, ok bool) {
	s.skipSpace()
	switch s.peek() {
	case ',':
		s.pos++
		return false, true
	case closing:
		s.pos++
		s.depth--
		return true, true
	}
	return false, false
}

// str scans a string at the position, which is at '"', and reports whether
// it has escapes.
func (s *jsonScanner) str() (escaped, ok bool) {
	s.pos++
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return escaped, true
		case c == '\\':
			escaped = true
			if !s.escape() {
				return escaped, false
			}
		case c < 0x20:
			return escaped, false
		default:
			s.pos++
		}
	}
	return escaped, false
}

// escape scans an escape sequence at the position, which is at '\'.
func (s *jsonScanner) escape() bool {
	s.pos++
	switch s.peek() {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos++
		return true
	case 'u':
		if s.pos+5 > len(s.data) {
			return false
		}
		for _, h := range s.data[s.pos+1 : s.pos+5] {
			if !isDigit(h) && (h < 'a' || h > 'f') && (h < 'A' || h > 'F') {
				return false
			}
		}
		s.pos += 5
		return true
	}
	return false
}

func (s *jsonScanner) literal(word string) bool {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return false
	}
	s.pos += len(word)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at the
// position.
func (s *jsonScanner) number() bool {
	if s.peek() == '-' {
		s.pos++
	}
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case isDigit(c):
		s.digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.pos++
		if !isDigit(s.peek()) {
			return false
		}
		s.digits()
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if !isDigit(s.peek()) {
			return false
		}
		s.digits()
	}
	return true
}

func (s *jsonScanner) digits() {
	for isDigit(s.peek()) {
		s.pos++
	}
}

func isDigit(c byte) bool {
	return '0' <= c && c <= '9'
}
