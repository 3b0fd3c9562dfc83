package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hooklog/hooklog/catalog"
	"github.com/hooklog/hooklog/signature"
)

// Limits bound what a webhook may hold. The zero value means DefaultLimits.
type Limits struct {
	// MaxURLLength caps the URL, in bytes.
	MaxURLLength int
	// MaxHeaders caps the number of custom request headers.
	MaxHeaders int
	// MaxHeaderBytes caps the custom headers' names and values together.
	MaxHeaderBytes int
}

// DefaultLimits are the limits used where none are set.
var DefaultLimits = Limits{MaxURLLength: 2048, MaxHeaders: 20, MaxHeaderBytes: 8 << 10}

func (l Limits) orDefault() Limits {
	if l.MaxURLLength <= 0 {
		l.MaxURLLength = DefaultLimits.MaxURLLength
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultLimits.MaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultLimits.MaxHeaderBytes
	}
	return l
}

// Redacted replaces a custom header's value wherever a webhook is shown.
const Redacted = "[redacted]"

// Webhook is one subscription: the events named Event are sent to URL.
//
// Its JSON form is FFmate's webhook object (uuid, event, url, createdAt,
// updatedAt) plus id, which repeats uuid. It is both the API's response
// body and the data of the webhook.* events hooklog appends.
type Webhook struct {
	UUID      string    `json:"uuid"`
	ID        string    `json:"id"`
	Event     string    `json:"event"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`

	// State is StateActive, StatePaused or StateDisabled. A paused webhook
	// delivers nothing until it is resumed, a disabled one until it is
	// updated.
	State string `json:"state"`
	// DisabledReason is why hooklog disabled the webhook.
	DisabledReason string `json:"disabledReason,omitempty"`
	// StartSeq is the first seq the webhook was created to receive; 0 means
	// the events after its creation, starting with its own webhook.created.
	StartSeq uint64 `json:"startSeq,omitempty"`
	// Headers names the custom request headers sent with each delivery.
	// Every value is Redacted: the values are kept with the secrets.
	Headers map[string]string `json:"headers,omitempty"`

	// CreatedSeq is the seq of the webhook.created event that added the
	// webhook. It is known only once that event is in the log, so it is
	// kept by the projection and is not part of the event data.
	CreatedSeq uint64 `json:"-"`
}

// States of a webhook.
const (
	StateActive   = "active"
	StatePaused   = "paused"
	StateDisabled = "disabled"
)

// Delivers reports whether the webhook's state lets it deliver.
func (h Webhook) Delivers() bool {
	return h.State != StatePaused && h.State != StateDisabled
}

// WebhookInput is the body of a create or update request.
type WebhookInput struct {
	Event string `json:"event"`
	URL   string `json:"url"`
	// Start is where a new webhook starts in the log: "new" (the default),
	// "all", a seq, or an RFC 3339 time. Updates ignore it.
	Start StartPosition `json:"start"`
	// Secret signs the deliveries; empty at creation means a new random
	// one. Updates ignore it: a secret changes by rotation.
	Secret string `json:"secret"`
	// Headers are custom request headers, such as the receiver's own
	// Authorization. Nil in an update keeps the current ones.
	Headers *map[string]string `json:"headers"`
}

// StartPosition is where a new webhook starts in the log. Its JSON form is
// "new", "all", a seq as a number or a string, or an RFC 3339 time.
type StartPosition struct {
	Kind string    // "new", "all", "seq" or "time"; empty means "new"
	Seq  uint64    // with Kind "seq"
	Time time.Time // with Kind "time"
}

// UnmarshalJSON reads a start position; an invalid one is a
// ValidationError naming the value.
func (p *StartPosition) UnmarshalJSON(data []byte) error {
	invalid := &ValidationError{Field: "start", Value: string(data),
		Allowed: `expected "new", "all", a seq from 1, or an RFC 3339 time such as "2026-01-02T15:04:05Z"`}

	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return invalid
	}
	switch v := raw.(type) {
	case nil:
		*p = StartPosition{}
		return nil
	case float64:
		seq, err := strconv.ParseUint(string(data), 10, 64)
		if err != nil || seq == 0 {
			return invalid
		}
		*p = StartPosition{Kind: "seq", Seq: seq}
		return nil
	case string:
		invalid.Value = v
		switch {
		case v == "new" || v == "":
			*p = StartPosition{Kind: "new"}
		case v == "all":
			*p = StartPosition{Kind: "all"}
		default:
			if seq, err := strconv.ParseUint(v, 10, 64); err == nil && seq > 0 {
				*p = StartPosition{Kind: "seq", Seq: seq}
				return nil
			}
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return invalid
			}
			*p = StartPosition{Kind: "time", Time: t}
		}
		return nil
	default:
		return invalid
	}
}

// ValidationError reports an invalid field of a request.
type ValidationError struct {
	Field   string
	Value   string
	Allowed string // what the field accepts
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s %q; %s", e.Field, e.Value, e.Allowed)
}

// ErrWebhookNotFound is returned for an unknown webhook id.
var ErrWebhookNotFound = errors.New("webhook not found")

// Validate checks that the event is in the catalog, that the URL is an
// absolute http or https URL with a host, and that the secret and the
// headers are well formed and within limits.
func (in WebhookInput) Validate(limits Limits) error {
	limits = limits.orDefault()
	if !catalog.Valid(in.Event) {
		return &ValidationError{Field: "event", Value: in.Event, Allowed: "allowed events are " + catalog.List()}
	}
	if err := ValidateURL(in.URL, limits.MaxURLLength); err != nil {
		return err
	}
	if in.Secret != "" {
		if _, err := signature.ParseSecret(in.Secret); err != nil {
			// The message names the problem but never echoes the secret.
			return &ValidationError{Field: "secret", Value: "(not shown)", Allowed: err.Error()}
		}
	}
	if in.Headers != nil {
		return ValidateHeaders(*in.Headers, limits)
	}
	return nil
}

// reservedHeaders are set by hooklog or by HTTP itself on every delivery, so
// a webhook cannot set them. Names are in canonical form.
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Content-Encoding": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Upgrade": true, "Te": true, "Trailer": true, "Host": true,
	"User-Agent": true, "Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true,
	"X-Hooklog-Sequence": true, "Proxy-Authorization": true, "Proxy-Connection": true, "Expect": true,
}

// ValidateHeaders checks custom request headers: valid names that hooklog
// does not set itself, values without control characters, and the limits.
// Error messages name a header but never show its value.
func ValidateHeaders(headers map[string]string, limits Limits) error {
	limits = limits.orDefault()
	if len(headers) > limits.MaxHeaders {
		return &ValidationError{Field: "headers", Value: fmt.Sprintf("%d headers", len(headers)),
			Allowed: fmt.Sprintf("a webhook has at most %d custom headers", limits.MaxHeaders)}
	}

	total := 0
	for name, value := range headers {
		if !isToken(name) {
			return &ValidationError{Field: "headers", Value: name, Allowed: "a header name is a non-empty HTTP token: letters, digits and !#$%&'*+-.^_`|~"}
		}
		if reservedHeaders[http.CanonicalHeaderKey(name)] {
			return &ValidationError{Field: "headers", Value: name, Allowed: "hooklog sets this header itself; choose another name"}
		}
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return &ValidationError{Field: "headers", Value: name, Allowed: "a header value must not contain control characters such as line breaks"}
			}
		}
		total += len(name) + len(value)
	}
	if total > limits.MaxHeaderBytes {
		return &ValidationError{Field: "headers", Value: fmt.Sprintf("%d bytes", total),
			Allowed: fmt.Sprintf("custom header names and values have at most %d bytes together", limits.MaxHeaderBytes)}
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// ValidateURL checks that raw is an absolute http or https URL with a host,
// without user information, of at most maxLength bytes.
func ValidateURL(raw string, maxLength int) error {
	invalid := func(reason string) error {
		return &ValidationError{Field: "url", Value: raw, Allowed: reason}
	}

	if len(raw) > maxLength {
		return &ValidationError{Field: "url", Value: raw[:min(len(raw), 64)] + "…", Allowed: fmt.Sprintf("a URL has at most %d bytes, this one has %d", maxLength, len(raw))}
	}
	if strings.TrimSpace(raw) != raw || raw == "" {
		return invalid("a URL must be absolute, as http://host/path or https://host/path, without surrounding spaces")
	}

	u, err := url.Parse(raw)
	if err != nil {
		return invalid("the URL does not parse: " + err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("the scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return invalid("the URL must name a host")
	}
	if u.User != nil {
		return invalid("credentials in the URL are not accepted, because the URL is shown in listings; use a custom Authorization header")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return invalid("the port must be from 1 to 65535")
		}
	}
	if !validHost(u.Hostname()) {
		return invalid("the host must be an IP address or a DNS name of labels of letters, digits, hyphens and underscores, 1 to 63 bytes each, 253 in all")
	}
	return nil
}

func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}
