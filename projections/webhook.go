package projections

import (
	"errors"
	"fmt"
	"net/url"
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

	// State is StateActive or StateDisabled. A disabled webhook delivers
	// nothing until it is updated.
	State string `json:"state"`
	// DisabledReason says why hooklog disabled the webhook.
	DisabledReason string `json:"disabledReason,omitempty"`

	// CreatedSeq is the seq of the webhook.created event that added the
	// webhook. It is known only once that event is in the log, so it is
	// kept by the projection and is not part of the event data.
	CreatedSeq uint64 `json:"-"`
}

// States of a webhook.
const (
	StateActive   = "active"
	StateDisabled = "disabled"
)

// WebhookInput is the body of a create or update request.
type WebhookInput struct {
	Event string `json:"event"`
	URL   string `json:"url"`
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
