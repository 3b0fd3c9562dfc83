package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestServerHelpListsEveryFlag(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"server", "--help"}, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("exit code = %d, want 0", code)
	}
	for _, name := range []string{"-port", "-data", "-host", "-attempt-timeout", "-retry-schedule",
		"-retry-max-delay", "-max-body-bytes", "-shutdown-timeout", "-log-level", "-log-format", "HOOKLOG_DATA"} {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("help does not mention %s:\n%s", name, stderr.String())
		}
	}
}

func TestEnvironmentSetsFlags(t *testing.T) {
	t.Setenv("HOOKLOG_PORT", "4100")
	t.Setenv("HOOKLOG_ATTEMPT_TIMEOUT", "3s")
	t.Setenv("HOOKLOG_DATA", "/from/env")

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	port := fs.Int("port", 3000, "")
	timeout := fs.Duration("attempt-timeout", time.Second, "")
	data := fs.String("data", "default", "")
	if err := fs.Parse([]string{"--data", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnvironment(fs); err != nil {
		t.Fatalf("apply environment: %v", err)
	}

	if *port != 4100 || *timeout != 3*time.Second {
		t.Errorf("port, timeout = %d, %s; want 4100, 3s from the environment", *port, *timeout)
	}
	if *data != "/from/flag" {
		t.Errorf("data = %q, want the command line's /from/flag", *data)
	}
}

func TestInvalidSettingsAreRejected(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		message string
	}{
		{"bad environment", nil, map[string]string{"HOOKLOG_PORT": "many"}, `HOOKLOG_PORT "many"`},
		{"bad port", []string{"--port", "70000"}, nil, "--port 70000"},
		{"bad schedule", []string{"--retry-schedule", "3s,soon"}, nil, `--retry-schedule "3s,soon"`},
		{"bad level", []string{"--log-level", "loud"}, nil, `--log-level "loud"`},
		{"bad format", []string{"--log-format", "xml"}, nil, `--log-format "xml"`},
		{"zero timeout", []string{"--attempt-timeout", "0s"}, nil, "--attempt-timeout 0s"},
		{"argument", []string{"extra"}, nil, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			args := append([]string{"server", "--data", t.TempDir()}, tt.args...)
			if code := run(args, &bytes.Buffer{}, &stderr); code != 2 {
				t.Errorf("exit code = %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.message) {
				t.Errorf("stderr = %q, want it to mention %s", stderr.String(), tt.message)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"serve"}, &bytes.Buffer{}, &stderr); code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown command "serve"`) {
		t.Errorf("stderr = %q", stderr.String())
	}
}
