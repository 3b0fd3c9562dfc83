package app

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

type executionJSON struct {
	UUID    string `json:"uuid"`
	Event   string `json:"event"`
	URL     string `json:"url"`
	Request struct {
		Headers map[string][]string `json:"headers"`
		Body    string              `json:"body"`
	} `json:"request"`
	Response *struct {
		Status  int                 `json:"status"`
		Headers map[string][]string `json:"headers"`
		Body    string              `json:"body"`
	} `json:"response"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	WebhookID string    `json:"webhookId"`
	Seq       uint64    `json:"seq"`
	Attempt   int       `json:"attempt"`
	Trigger   string    `json:"trigger"`
	Delivered bool      `json:"delivered"`
}

func (s *server) executions(path string) ([]executionJSON, string) {
	s.t.Helper()
	resp, body := s.do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var list []executionJSON
	if err := json.Unmarshal(body, &list); err != nil {
		s.t.Fatalf("decode %s: %v", body, err)
	}
	return list, resp.Header.Get("X-Total")
}

// The attempt log is served as FFmate's executions: newest first, paged,
// with X-Total, for all webhooks or one.
func TestExecutionsAPI(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	other := newReceiver(t, nil)
	hook := s.createWebhook("task.created", recv.URL+"/hook")
	s.createWebhook("task.updated", other.URL)
	rec := s.publish(eventBody("task.created", map[string]int{"n": 1}))
	s.publish(eventBody("task.updated", map[string]int{"n": 2}))
	recv.waitFor(t, 2, 10*time.Second)
	other.waitFor(t, 1, 10*time.Second)
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == rec.Seq })

	all, total := s.executions("/api/v1/webhooks/executions")
	if total != "3" || len(all) != 3 {
		t.Fatalf("all executions = %d, X-Total %q; want 3", len(all), total)
	}
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.After(all[i-1].CreatedAt) {
			t.Errorf("executions not newest first: %s before %s", all[i-1].CreatedAt, all[i].CreatedAt)
		}
	}

	mine, total := s.executions("/api/v1/webhooks/" + hook.UUID + "/executions")
	if total != "2" || len(mine) != 2 {
		t.Fatalf("webhook executions = %d, X-Total %q; want 2", len(mine), total)
	}
	latest, first := mine[0], mine[1]
	if first.Attempt != 1 || first.Delivered || first.Response == nil || first.Response.Status != 500 {
		t.Errorf("first attempt = %+v, want a failed attempt 1 with status 500", first)
	}
	if latest.Attempt != 2 || !latest.Delivered || latest.Trigger != "scheduled" || latest.Seq != rec.Seq ||
		latest.Event != "task.created" || latest.URL != recv.URL+"/hook" || latest.WebhookID != hook.UUID || latest.UUID == "" {
		t.Errorf("latest attempt = %+v", latest)
	}
	if !strings.Contains(latest.Request.Body, `"event":"task.created"`) || len(latest.Request.Headers["Webhook-Id"]) != 1 {
		t.Errorf("stored request = %+v, want the body and headers sent", latest.Request)
	}

	page, total := s.executions("/api/v1/webhooks/executions?page=1&perPage=2")
	if total != "3" || len(page) != 1 || page[0].UUID != all[2].UUID {
		t.Errorf("page 1 of 2 = %+v, X-Total %q; want the oldest execution", page, total)
	}

	resp, body := s.do(http.MethodGet, "/api/v1/webhooks/no-such-id/executions", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no-such-id") {
		t.Errorf("executions of an unknown webhook = %d %s, want 404", resp.StatusCode, body)
	}
	resp, body = s.do(http.MethodGet, "/api/v1/webhooks/executions?perPage=500", nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "perPage") {
		t.Errorf("perPage=500 = %d %s, want 400", resp.StatusCode, body)
	}
}

// Parked events are listed per webhook, in seq order, with X-Total.
func TestParkedAPI(t *testing.T) {
	s := startWith(t, t.TempDir(), func(cfg *Config) {
		cfg.Delivery.Policy.MaxAttempts = 2
	})
	recv := newReceiver(t, func(int) int { return http.StatusNotFound })
	hook := s.createWebhook("task.created", recv.URL)
	first := s.publish(eventBody("task.created", map[string]int{"n": 1}))
	second := s.publish(eventBody("task.created", map[string]int{"n": 2}))
	recv.waitFor(t, 4, 10*time.Second)
	waitState(t, s, hook.UUID, func(st stateView) bool { return st.Cursor == second.Seq })

	resp, body := s.do(http.MethodGet, "/api/v1/webhooks/"+hook.UUID+"/parked?perPage=1", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Total") != "2" {
		t.Fatalf("parked = %d, X-Total %q: %s", resp.StatusCode, resp.Header.Get("X-Total"), body)
	}
	var parked []struct {
		Seq        uint64 `json:"seq"`
		Event      string `json:"event"`
		Reason     string `json:"reason"`
		Attempts   int    `json:"attempts"`
		LastStatus int    `json:"lastStatus"`
		LastError  string `json:"lastError"`
	}
	if err := json.Unmarshal(body, &parked); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if len(parked) != 1 || parked[0].Seq != first.Seq || parked[0].Attempts != 2 || parked[0].LastStatus != 404 ||
		!strings.HasPrefix(parked[0].Reason, "max_attempts") || parked[0].LastError == "" {
		t.Errorf("first page of parked = %+v, want seq %d parked after 2 attempts with 404", parked, first.Seq)
	}

	resp, _ = s.do(http.MethodGet, "/api/v1/webhooks/no-such-id/parked", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("parked of an unknown webhook = %d, want 404", resp.StatusCode)
	}
}

// A 410 disables the webhook: its JSON says so and the change is in the log
// as webhook.updated.
func TestGoneShowsInWebhook(t *testing.T) {
	s := start(t, t.TempDir())
	recv := newReceiver(t, func(int) int { return http.StatusGone })
	hook := s.createWebhook("task.created", recv.URL)
	s.publish(eventBody("task.created", map[string]int{"n": 1}))
	recv.waitFor(t, 1, 10*time.Second)

	deadline := time.Now().Add(10 * time.Second)
	var got map[string]any
	for {
		_, body := s.do(http.MethodGet, "/api/v1/webhooks/"+hook.UUID, nil)
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		if got["state"] == "disabled" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got["state"] != "disabled" || !strings.Contains(got["disabledReason"].(string), "410") {
		t.Fatalf("webhook = %v, want state disabled with the reason", got)
	}

	_, body := s.do(http.MethodGet, "/api/v1/events?event=webhook.updated", nil)
	if !strings.Contains(string(body), `"state":"disabled"`) || !strings.Contains(string(body), `"source":"internal"`) {
		t.Errorf("log has no internal webhook.updated with the disabled state: %s", body)
	}
}
