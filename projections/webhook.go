package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hooklog/hooklog/catalog"
)

// MaxURLLength caps a webhook URL, in bytes.
const MaxURLLength = 2048

// Webhook is one subscription: the events named Event are sent to URL.
//
// Its JSON form is FFmate's webhook object (uuid, event, url, createdAt,
// updatedAt) plus id, which repeats uuid. It is both the API's answer and the
// data of the webhook.* events hooklog appends.
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
	// DisabledReason says why hooklog disabled the webhook.
	DisabledReason string `json:"disabledReason,omitempty"`
	// StartSeq is the first seq the webhook was created to receive; 0 means
	// the events after its creation, starting with its own webhook.created.
	StartSeq uint64 `json:"startSeq,omitempty"`

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
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Allowed)
}

// ErrWebhookNotFound is returned for an unknown webhook id.
var ErrWebhookNotFound = errors.New("webhook not found")

// Validate checks that the event is in the catalog and that the URL is an
// absolute http or https URL with a host.
func (in WebhookInput) Validate() error {
	if !catalog.Valid(in.Event) {
		return &ValidationError{Field: "event", Value: in.Event, Allowed: "allowed events are " + catalog.List()}
	}
	return ValidateURL(in.URL)
}

// ValidateURL checks that raw is an absolute http or https URL with a host,
// without user information, of at most MaxURLLength bytes.
func ValidateURL(raw string) error {
	invalid := func(reason string) error {
		return &ValidationError{Field: "url", Value: raw, Allowed: reason}
	}

	if len(raw) > MaxURLLength {
		return invalid(fmt.Sprintf("a URL has at most %d bytes", MaxURLLength))
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
		return invalid("credentials in the URL are not accepted, because the URL is shown in listings and logs")
	}
	return nil
}
