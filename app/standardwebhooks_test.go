package app

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifierDir holds the Node.js check that verifies signatures with the
// standardwebhooks npm package; "npm ci --prefix test/standardwebhooks"
// installs it, as make test and CI do.
const verifierDir = "../test/standardwebhooks"

// Real deliveries, before and during a secret rotation, verify with the
// standardwebhooks npm package: code that hooklog did not write.
func TestStandardWebhooksPackageVerifies(t *testing.T) {
	if _, err := os.Stat(filepath.Join(verifierDir, "node_modules", "standardwebhooks")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the standardwebhooks package is not installed in %s; CI must run npm ci there first", verifierDir)
		}
		t.Skipf("the standardwebhooks package is not installed; run: npm ci --prefix test/standardwebhooks")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: %v", err)
	}

	s := start(t, t.TempDir())
	recv := newReceiver(t, nil)
	hook, oldSecret := s.createWithSecret(map[string]any{"event": "task.updated", "url": recv.URL})

	fixture, err := os.ReadFile("../testdata/ffmate/task.updated.DONE_ERROR.json")
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	s.publish(string(fixture))
	s.publish(eventBody("task.updated", map[string]string{"text": "<ünïcode & \"quotes\">"}))
	before := recv.waitFor(t, 2, 10*time.Second)

	answer := s.post("/api/v1/webhooks/"+hook.UUID+"/secret/rotate", nil, 200)
	var rotated struct {
		Secret string `json:"secret"`
	}
	json.Unmarshal(answer, &rotated)
	s.publish(eventBody("task.updated", map[string]int{"n": 3}))
	during := recv.waitFor(t, 3, 10*time.Second)[2:]

	type check struct {
		Headers  map[string]string `json:"headers"`
		Body     string            `json:"body"`
		Secrets  []string          `json:"secrets"`
		Tampered bool              `json:"tampered"`
	}
	var lines []string
	add := func(d request, secrets []string, tampered bool) {
		body := string(d.Body)
		if tampered {
			body = strings.Replace(body, "task.updated", "task.deleted", 1)
		}
		line, _ := json.Marshal(check{
			Headers: map[string]string{
				"webhook-id":        d.Header.Get("webhook-id"),
				"webhook-timestamp": d.Header.Get("webhook-timestamp"),
				"webhook-signature": d.Header.Get("webhook-signature"),
			},
			Body: body, Secrets: secrets, Tampered: tampered,
		})
		lines = append(lines, string(line))
	}
	for _, d := range before {
		add(d, []string{oldSecret}, false)
		add(d, []string{oldSecret}, true)
	}
	for _, d := range during {
		add(d, []string{oldSecret, rotated.Secret}, false)
		add(d, []string{rotated.Secret}, true)
	}

	input := filepath.Join(t.TempDir(), "deliveries.jsonl")
	if err := os.WriteFile(input, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatalf("write deliveries: %v", err)
	}
	out, err := exec.Command(node, filepath.Join(verifierDir, "verify.mjs"), input).CombinedOutput()
	if err != nil {
		t.Fatalf("standardwebhooks rejected a delivery: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "7 checks passed") {
		t.Errorf("verifier output = %q, want 7 checks passed", out)
	}
}
