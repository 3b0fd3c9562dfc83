package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
	"github.com/hooklog/hooklog/signature"
)

// maxResponseBody caps how much of a response body is read and stored. The
// status decides the outcome; the rest of the body is not read.
const maxResponseBody = 64 << 10

// Error classes of a failed attempt.
const (
	ClassStatus         = "status"             // the receiver responded with a status other than 2xx
	ClassTimeout        = "timeout"            // the attempt's deadline passed
	ClassRefused        = "connection_refused" // nothing listens at the address
	ClassDNS            = "dns"                // the host name did not resolve
	ClassTLS            = "tls"                // the TLS handshake or certificate failed
	ClassConnection     = "connection"         // any other transport error
	ClassRefusedAddress = "refused_address"    // the address policy refused the target
)

// Attempt is the outcome of one delivery attempt.
type Attempt struct {
	Start          time.Time
	Duration       time.Duration
	RequestHeader  http.Header
	Status         int         // the response status, 0 when there was no response
	ResponseHeader http.Header // nil when there was no response
	ResponseBody   []byte      // at most maxResponseBody bytes
	ResponseCut    bool        // the body was longer than ResponseBody
	RetryAfter     time.Duration
	Class          string // empty on success
	Err            error  // nil on success
}

// OK reports whether the receiver acknowledged the event with a 2xx status.
func (a Attempt) OK() bool {
	return a.Err == nil && a.Status >= 200 && a.Status < 300
}

// Describe returns the status or error of the attempt for logs and state.
func (a Attempt) Describe() string {
	if a.Err != nil {
		return a.Err.Error()
	}
	return "status " + strconv.Itoa(a.Status)
}

// sender sends one request per attempt through a shared client.
type sender struct {
	client    *http.Client
	userAgent string
	timeout   time.Duration
	clock     Clock
	inFlight  prometheus.Gauge
}

// newHTTPClient returns the client shared by all workers. It keeps
// connections alive, follows no redirect, uses no proxy (a proxy would dial
// the target on its own, past the address policy) and checks every address
// it connects to against policy. Each attempt carries its own deadline, so
// the client has no timeout.
func newHTTPClient(policy AddressPolicy) *http.Client {
	dialer := &net.Dialer{KeepAlive: 30 * time.Second, Control: policy.control}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1000,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// deliveryBody returns the body sent for a record: exactly the event name,
// the time the event entered the log and its data, byte for byte.
func deliveryBody(r eventlog.Record) []byte {
	buf := make([]byte, 0, 64+len(r.Event)+len(r.Data))
	buf = append(buf, `{"event":`...)
	buf = eventlog.AppendJSONString(buf, r.Event)
	buf = append(buf, `,"timestamp":"`...)
	buf = append(buf, r.TimestampText()...)
	buf = append(buf, `","data":`...)
	buf = append(buf, r.Data...)
	return append(buf, '}')
}

// target is where and how an attempt is sent: the URL, the signing keys
// (current first) and the custom headers.
type target struct {
	url     string
	keys    [][]byte
	headers map[string]string
}

// send makes one attempt to deliver r with the given body to t. The
// deadline covers connecting, sending, the response headers and reading the
// capped body.
func (s *sender) send(ctx context.Context, t target, r eventlog.Record, body []byte) Attempt {
	a := Attempt{Start: s.clock.Now()}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		a.Class, a.Err = ClassConnection, fmt.Errorf("build request: %w", err)
		return a
	}

	// Custom headers first, so that hooklog's own headers win.
	for name, value := range t.headers {
		req.Header.Set(name, value)
	}
	id, timestamp := r.ID.String(), a.Start.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(timestamp, 10))
	if len(t.keys) > 0 {
		req.Header.Set("webhook-signature", signature.Header(t.keys, id, timestamp, body))
	}
	req.Header.Set("X-Hooklog-Sequence", strconv.FormatUint(r.Seq, 10))

	// The stored copy hides the custom headers' values, which may be the
	// receiver's credentials.
	a.RequestHeader = req.Header.Clone()
	for name := range t.headers {
		a.RequestHeader.Set(name, projections.Redacted)
	}

	s.inFlight.Inc()
	defer s.inFlight.Dec()
	resp, err := s.client.Do(req)
	if err != nil {
		a.Duration = time.Since(began)
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			// The error names the URL; its query may hold a token.
			urlErr.URL = redactURL(urlErr.URL)
		}
		a.Class, a.Err = classify(err), err
		return a
	}

	// The status decides the outcome, so an error while reading the capped
	// body changes nothing. Closing the body without reading the rest gives
	// up the connection, which is cheaper than draining a huge body.
	a.ResponseBody, _ = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	resp.Body.Close()
	if len(a.ResponseBody) > maxResponseBody {
		a.ResponseBody, a.ResponseCut = a.ResponseBody[:maxResponseBody], true
	}
	a.Duration = time.Since(began)
	a.Status = resp.StatusCode
	a.ResponseHeader = resp.Header

	if a.Status >= 200 && a.Status < 300 {
		return a
	}

	a.Class, a.Err = ClassStatus, fmt.Errorf("receiver responded with status %d", a.Status)
	if loc := resp.Header.Get("Location"); loc != "" && a.Status >= 300 && a.Status < 400 {
		a.Err = fmt.Errorf("receiver responded with status %d and Location %q; redirects are not followed", a.Status, redactURL(loc))
	}
	if a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable {
		a.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), a.Start)
	}
	return a
}

// maxLoggedURL caps a URL in an error message, in bytes.
const maxLoggedURL = 256

// redactURL returns raw for an error message: without user information, a
// query or a fragment, which may hold credentials, and at most maxLoggedURL
// bytes.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "redacted", false
	}
	u.Fragment, u.RawFragment = "", ""
	out := u.String()
	if len(out) > maxLoggedURL {
		out = out[:maxLoggedURL] + "…"
	}
	return out
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date. It
// returns 0 when the value is missing or invalid.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		return time.Duration(min(seconds, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(value); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// classify names the kind of transport error.
func classify(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var alertErr tls.AlertError
	switch {
	case errors.Is(err, ErrRefusedAddress):
		return ClassRefusedAddress
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return ClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case errors.As(err, &dnsErr):
		return ClassDNS
	case errors.As(err, &certErr) || errors.As(err, &recordErr) || errors.As(err, &alertErr):
		return ClassTLS
	default:
		return ClassConnection
	}
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
