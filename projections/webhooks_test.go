package projections

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/hooklog/hooklog/eventlog"
)

type env struct {
	dir string
	db  *badger.DB
	log *eventlog.Log
	hw  *Webhooks
}

// open opens the log and the webhook projection in dir.
func open(t *testing.T, dir string) *env {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		t.Fatalf("open badger: %v", err)
	}
	l, err := eventlog.Open(db, eventlog.Options{})
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	hw, err := OpenWebhooks(l, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open webhooks: %v", err)
	}
	e := &env{dir: dir, db: db, log: l, hw: hw}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.db.IsClosed() {
		return
	}
	e.log.Close()
	e.db.Close()
}

func create(t *testing.T, hw *Webhooks, event, url string) Webhook {
	t.Helper()
	h, err := hw.Create(context.Background(), WebhookInput{Event: event, URL: url})
	if err != nil {
		t.Fatalf("create %s %s: %v", event, url, err)
	}
	return h
}

func TestWebhookLifecycle(t *testing.T) {
	e := open(t, t.TempDir())
	ctx := context.Background()

	a := create(t, e.hw, "task.created", "http://127.0.0.1:4000/a")
	if a.UUID == "" || a.ID != a.UUID {
		t.Fatalf("created webhook ids = %q, %q, want one non-empty uuid in both", a.UUID, a.ID)
	}
	if a.CreatedSeq != 1 {
		t.Errorf("CreatedSeq = %d, want 1", a.CreatedSeq)
	}
	b := create(t, e.hw, "batch.created", "https://receiver.example/b")

	list, total := e.hw.List(0, 100)
	if total != 2 || len(list) != 2 || list[0].UUID != b.UUID || list[1].UUID != a.UUID {
		t.Fatalf("list = %v (total %d), want b then a", list, total)
	}
	page, total := e.hw.List(1, 1)
	if total != 2 || len(page) != 1 || page[0].UUID != a.UUID {
		t.Errorf("page 1 of 1 = %v, want a", page)
	}

	updated, err := e.hw.Update(ctx, a.UUID, WebhookInput{Event: "task.updated", URL: "http://127.0.0.1:4000/a2"})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.Event != "task.updated" || updated.URL != "http://127.0.0.1:4000/a2" ||
		!updated.CreatedAt.Equal(a.CreatedAt) || updated.CreatedSeq != a.CreatedSeq {
		t.Errorf("updated = %+v, want new event and URL with the old creation", updated)
	}

	if err := e.hw.Delete(ctx, a.UUID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := e.hw.Get(a.UUID); !errors.Is(err, ErrWebhookNotFound) {
		t.Errorf("get deleted: err = %v, want ErrWebhookNotFound", err)
	}
	if err := e.hw.Delete(ctx, a.UUID); !errors.Is(err, ErrWebhookNotFound) {
		t.Errorf("delete twice: err = %v, want ErrWebhookNotFound", err)
	}
	if _, err := e.hw.Update(ctx, "no-such-id", WebhookInput{Event: "task.created", URL: "http://h/"}); !errors.Is(err, ErrWebhookNotFound) {
		t.Errorf("update unknown: err = %v, want ErrWebhookNotFound", err)
	}

	records, err := e.log.Read(eventlog.Query{Limit: 10})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var events []string
	for _, r := range records {
		events = append(events, r.Event)
		if r.Source != eventlog.SourceInternal {
			t.Errorf("seq %d source = %s, want internal", r.Seq, r.Source)
		}
	}
	want := []string{"webhook.created", "webhook.created", "webhook.updated", "webhook.deleted"}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("log = %v, want %v", events, want)
	}

	var data Webhook
	if err := json.Unmarshal(records[3].Data, &data); err != nil || data.UUID != a.UUID || data.URL != updated.URL {
		t.Errorf("webhook.deleted data = %s, want the webhook as it was", records[3].Data)
	}
}

func TestInvalidWebhookAppendsNothing(t *testing.T) {
	e := open(t, t.TempDir())

	tests := []struct {
		name  string
		in    WebhookInput
		field string
	}{
		{"unknown event", WebhookInput{Event: "task.finished", URL: "http://h/"}, "event"},
		{"event case", WebhookInput{Event: "Task.Created", URL: "http://h/"}, "event"},
		{"empty event", WebhookInput{URL: "http://h/"}, "event"},
		{"empty url", WebhookInput{Event: "task.created"}, "url"},
		{"relative url", WebhookInput{Event: "task.created", URL: "/hook"}, "url"},
		{"ftp scheme", WebhookInput{Event: "task.created", URL: "ftp://h/x"}, "url"},
		{"no host", WebhookInput{Event: "task.created", URL: "http:///x"}, "url"},
		{"only port", WebhookInput{Event: "task.created", URL: "http://:80/x"}, "url"},
		{"credentials", WebhookInput{Event: "task.created", URL: "http://u:p@h/x"}, "url"},
		{"spaces", WebhookInput{Event: "task.created", URL: " http://h/x"}, "url"},
		{"bad escape", WebhookInput{Event: "task.created", URL: "http://h/%zz"}, "url"},
		{"port too high", WebhookInput{Event: "task.created", URL: "http://127.0.0.1:99999/"}, "url"},
		{"port zero", WebhookInput{Event: "task.created", URL: "http://127.0.0.1:0/"}, "url"},
		{"hyphen label", WebhookInput{Event: "task.created", URL: "http://-.-/"}, "url"},
		{"long label", WebhookInput{Event: "task.created", URL: "http://" + strings.Repeat("a", 64) + ".example/"}, "url"},
		{"empty label", WebhookInput{Event: "task.created", URL: "http://a..b/"}, "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.hw.Create(context.Background(), tt.in)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			if verr.Field != tt.field {
				t.Errorf("field = %q, want %q", verr.Field, tt.field)
			}
		})
	}
	if h := e.log.Head(); h != 0 {
		t.Errorf("head = %d, want 0: invalid input must append nothing", h)
	}
}

// FFmate's own webhook events, published to hooklog, are events to deliver,
// not changes to hooklog's webhooks.
func TestPublishedWebhookEventsAreIgnored(t *testing.T) {
	e := open(t, t.TempDir())

	for _, name := range []string{"webhook.created", "webhook.updated", "webhook.deleted"} {
		data, err := os.ReadFile("../testdata/ffmate/" + name + ".json")
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		var body struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatalf("parse fixture: %v", err)
		}
		_, err = e.log.Append(context.Background(), []eventlog.Entry{{Event: name, Data: body.Data, Source: eventlog.SourcePublished}})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	}

	set, err := Rebuild(e.log)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if len(set.Webhooks) != 0 || set.Seq != 3 {
		t.Errorf("rebuilt set = %d webhooks at seq %d, want 0 at seq 3", len(set.Webhooks), set.Seq)
	}
}

// The set kept up to date, the set reopened from its snapshot plus the tail
// of the log, and the set rebuilt from the whole log must be equal.
func TestSnapshotTailAndRebuildAgree(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e := open(t, dir)

	a := create(t, e.hw, "task.created", "http://127.0.0.1:4000/a")
	b := create(t, e.hw, "task.updated", "http://127.0.0.1:4000/b")
	c := create(t, e.hw, "preset.created", "http://127.0.0.1:4000/c")
	if _, err := e.hw.Update(ctx, a.UUID, WebhookInput{Event: "task.deleted", URL: "http://127.0.0.1:4000/a2"}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := e.hw.Delete(ctx, b.UUID); err != nil {
		t.Fatalf("delete: %v", err)
	}

	// Changes that reach the log but not the snapshot, as when the process
	// dies between the append and the fold.
	d := Webhook{UUID: "d", ID: "d", Event: "task.created", URL: "http://127.0.0.1:4000/d", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	appendInternal(t, e.log, "webhook.created", d)
	appendInternal(t, e.log, "webhook.deleted", c)
	appendOneEvent(t, e.log, "task.created")

	live := e.hw.Snapshot()
	e.close()

	e = open(t, dir)
	reopened := e.hw.Snapshot()
	rebuilt, err := Rebuild(e.log)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}

	if rebuilt.Seq != 8 || len(rebuilt.Webhooks) != 2 {
		t.Fatalf("rebuilt = %d webhooks at seq %d, want 2 at seq 8", len(rebuilt.Webhooks), rebuilt.Seq)
	}
	if !equalSets(reopened, rebuilt) {
		t.Errorf("reopened set %+v differs from rebuilt set %+v", reopened, rebuilt)
	}

	// The live set had not folded the tail; folding it must give the same.
	if err := e.hw.refresh(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if equalSets(live, rebuilt) {
		t.Errorf("live set before the tail already equals the rebuilt set; the test lost its tail")
	}
	if !equalSets(e.hw.Snapshot(), rebuilt) {
		t.Errorf("refreshed set differs from rebuilt set")
	}
}

func appendInternal(t *testing.T, l *eventlog.Log, event string, hook Webhook) {
	t.Helper()
	data, _ := json.Marshal(hook)
	if _, err := l.Append(context.Background(), []eventlog.Entry{{Event: event, Data: data, Source: eventlog.SourceInternal}}); err != nil {
		t.Fatalf("append %s: %v", event, err)
	}
}

func appendOneEvent(t *testing.T, l *eventlog.Log, event string) {
	t.Helper()
	if _, err := l.Append(context.Background(), []eventlog.Entry{{Event: event, Data: []byte("{}")}}); err != nil {
		t.Fatalf("append %s: %v", event, err)
	}
}

func equalSets(a, b WebhookSet) bool {
	if a.Seq != b.Seq || len(a.Webhooks) != len(b.Webhooks) {
		return false
	}
	for id, ha := range a.Webhooks {
		hb, ok := b.Webhooks[id]
		if !ok || ha.URL != hb.URL || ha.Event != hb.Event || ha.CreatedSeq != hb.CreatedSeq ||
			!ha.CreatedAt.Equal(hb.CreatedAt) || !ha.UpdatedAt.Equal(hb.UpdatedAt) {
			return false
		}
	}
	return true
}

func TestRunFollowsTheLog(t *testing.T) {
	e := open(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.hw.Run(ctx) }()

	changed := e.hw.Changed()
	d := Webhook{UUID: "d", ID: "d", Event: "task.created", URL: "http://127.0.0.1:4000/d"}
	appendInternal(t, e.log, "webhook.created", d)

	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Changed was not closed after a webhook.created")
	}
	if _, err := e.hw.Get("d"); err != nil {
		t.Errorf("get: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
