package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooklog/hooklog/app"
)

// startServer runs a hooklog server in the test and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	a, err := app.Open(app.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return "http://" + a.Addr()
}

// cli runs hooklog with args and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func post(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, data)
	}
	var out map[string]any
	json.Unmarshal(data, &out)
	return out
}

func TestWebhooksCommands(t *testing.T) {
	server := startServer(t)
	var received atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
	}))
	t.Cleanup(recv.Close)

	hook := post(t, server+"/api/v1/webhooks", `{"event":"task.created","url":"`+recv.URL+`"}`)
	id := hook["uuid"].(string)
	event := post(t, server+"/api/v1/events", `{"event":"task.created","data":{"n":1}}`)
	seq := int(event["seq"].(float64))
	waitUntil(t, func() bool { return received.Load() == 1 })

	code, out, errOut := cli(t, "webhooks", "list", "--server", server)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "task.created") || !strings.Contains(out, "active") {
		t.Errorf("list = %d %q %q", code, out, errOut)
	}

	code, out, _ = cli(t, "webhooks", "status", id, "--server", server, "--json")
	var st struct {
		Cursor int `json:"cursor"`
		Lag    int `json:"lag"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Cursor != seq || st.Lag != 0 {
		t.Errorf("status --json = %d %q, want cursor %d and no lag", code, out, seq)
	}
	code, out, _ = cli(t, "webhooks", "--server", server, "status")
	if code != 0 || !strings.Contains(out, "LAG") || !strings.Contains(out, id) {
		t.Errorf("status of all = %d %q", code, out)
	}

	code, out, _ = cli(t, "webhooks", "pause", id, "--server", server)
	if code != 0 || !strings.Contains(out, "paused") {
		t.Errorf("pause = %d %q", code, out)
	}
	code, out, _ = cli(t, "webhooks", "resume", id, "--server", server)
	if code != 0 || !strings.Contains(out, "active") {
		t.Errorf("resume = %d %q", code, out)
	}

	code, out, _ = cli(t, "webhooks", "redeliver", id, "--seq", "2", "--server", server)
	if code != 0 || !strings.Contains(out, "delivered seq 2") {
		t.Errorf("redeliver = %d %q", code, out)
	}
	code, out, _ = cli(t, "webhooks", "replay", id, "--seq", "2", "--server", server)
	if code != 0 || !strings.Contains(out, "from seq 2") {
		t.Errorf("replay = %d %q", code, out)
	}
	waitUntil(t, func() bool { return received.Load() == 3 })

	code, out, _ = cli(t, "webhooks", "parked", id, "--server", server)
	if code != 0 || !strings.Contains(out, "SEQ") {
		t.Errorf("parked = %d %q", code, out)
	}

	tests := []struct {
		name    string
		args    []string
		code    int
		message string
	}{
		{"unknown webhook", []string{"status", "no-such-id"}, 1, "not found"},
		{"replay without position", []string{"replay", id}, 2, "and --time T"},
		{"redeliver without seq", []string{"redeliver", id}, 2, "--seq N"},
		{"seq outside the log", []string{"replay", id, "--seq", "999"}, 1, "seqs 1 to"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown webhooks command "frobnicate"`},
		{"missing id", []string{"pause"}, 2, "one webhook id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := cli(t, append(append([]string{"webhooks"}, tt.args...), "--server", server)...)
			if code != tt.code || !strings.Contains(errOut, tt.message) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tt.code, tt.message)
			}
		})
	}

	// A redelivery that fails prints the attempt and exits 1.
	down := post(t, server+"/api/v1/webhooks", `{"event":"preset.created","url":"http://127.0.0.1:1/down"}`)
	preset := post(t, server+"/api/v1/events", `{"event":"preset.created","data":{}}`)
	code, out, _ = cli(t, "webhooks", "redeliver", down["uuid"].(string), "--seq", fmt.Sprint(int(preset["seq"].(float64))), "--server", server)
	if code != 1 || !strings.Contains(out, "failed") {
		t.Errorf("failed redelivery = exit %d, %q; want exit 1 and the failed attempt", code, out)
	}

	code, _, errOut = cli(t, "webhooks", "list", "--server", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "is the server running") {
		t.Errorf("list against no server = %d %q", code, errOut)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
