package projections

import (
	"net/url"
	"testing"
)

// FuzzWebhookInput checks webhook validation on arbitrary event names, URLs
// and custom headers: no panic, and what passes is a catalog event, an
// absolute http or https URL with a host, and headers without line breaks.
// Seeds: testdata/fuzz/FuzzWebhookInput.
func FuzzWebhookInput(f *testing.F) {
	f.Add("task.created", "http://127.0.0.1:4000/hook", "Authorization", "Bearer x")
	f.Add("webhook.deleted", "https://[::1]:8443/a?b=c", "X-Tenant", "t")

	f.Fuzz(func(t *testing.T, event, rawURL, name, value string) {
		headers := map[string]string{name: value}
		in := WebhookInput{Event: event, URL: rawURL, Headers: &headers}
		if err := in.Validate(DefaultLimits); err != nil {
			return
		}

		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted URL %q", rawURL)
		}
		for _, c := range name + value {
			if c == '\r' || c == '\n' || c == 0 {
				t.Fatalf("accepted header %q: %q with a control character", name, value)
			}
		}
		if name == "" {
			t.Fatal("accepted an empty header name")
		}
	})
}
