package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

type testAPI struct {
	t   *testing.T
	url string
	log *eventlog.Log
}

func newTestAPI(t *testing.T, maxBody int64) *testAPI {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		t.Fatalf("open badger: %v", err)
	}
	l, err := eventlog.Open(db, eventlog.Options{})
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	hw, err := projections.OpenWebhooks(l, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open webhooks: %v", err)
	}

	srv := httptest.NewServer(New(Config{Log: l, Webhooks: hw, MaxBodyBytes: maxBody, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(func() {
		srv.Close()
		l.Close()
		db.Close()
	})
	return &testAPI{t: t, url: srv.URL, log: l}
}

func (a *testAPI) do(method, path, body string) (*http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatalf("build request: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("read answer: %v", err)
	}
	return resp, string(data)
}

// checkError checks an FFmate-shaped error answer.
func checkError(t *testing.T, resp *http.Response, body string, status int, errName string, mentions ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	var e struct {
		Code    string `json:"code"`
		Err     string `json:"err"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %s is not JSON: %v", body, err)
	}
	if e.Code == "" || e.Err != errName || e.Message == "" {
		t.Errorf("error = %+v, want code, err %q and a message", e, errName)
	}
	for _, m := range mentions {
		if !strings.Contains(e.Message, m) {
			t.Errorf("message %q does not mention %q", e.Message, m)
		}
	}
}

func TestPublishOne(t *testing.T) {
	a := newTestAPI(t, 0)

	resp, body := a.do(http.MethodPost, "/api/v1/events", `{"event":"task.created","data":{"uuid":"x"}}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d, want 201: %s", resp.StatusCode, body)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if rec["seq"] != 1.0 || rec["event"] != "task.created" || rec["id"] == "" || rec["timestamp"] == "" {
		t.Errorf("answer = %v, want seq 1, id, event and timestamp", rec)
	}
}

func TestByteOrderMarkIgnored(t *testing.T) {
	a := newTestAPI(t, 0)
	const bom = "\ufeff"

	for _, body := range []string{
		bom + `{"event":"task.created","data":{"n":1}}`,
		bom + `[{"event":"task.created","data":{"n":2}}]`,
	} {
		if resp, answer := a.do(http.MethodPost, "/api/v1/events", body); resp.StatusCode != http.StatusCreated {
			t.Errorf("publish %q: status %d, want 201: %s", body, resp.StatusCode, answer)
		}
	}
	if h := a.log.Head(); h != 2 {
		t.Errorf("head = %d, want 2", h)
	}

	resp, answer := a.do(http.MethodPost, "/api/v1/webhooks", bom+`{"event":"task.created","url":"http://127.0.0.1:4000/hook"}`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("create webhook: status %d, want 200: %s", resp.StatusCode, answer)
	}

	// Only one mark at the very start is ignored.
	for _, body := range []string{
		" " + bom + `{"event":"task.created","data":{}}`,
		bom + bom + `{"event":"task.created","data":{}}`,
		bom + bom + `[{"event":"task.created","data":{}}]`,
	} {
		resp, answer = a.do(http.MethodPost, "/api/v1/events", body)
		checkError(t, resp, answer, http.StatusBadRequest, "invalid.request.body")
	}
	resp, answer = a.do(http.MethodPost, "/api/v1/webhooks", bom+bom+`{"event":"task.created","url":"http://127.0.0.1:4000/hook"}`)
	checkError(t, resp, answer, http.StatusBadRequest, "invalid.request.body")
	if h := a.log.Head(); h != 3 {
		t.Errorf("head = %d, want 3: the rejected bodies append nothing", h)
	}
}

func TestPublishArrayIsAtomic(t *testing.T) {
	a := newTestAPI(t, 0)

	resp, body := a.do(http.MethodPost, "/api/v1/events",
		`[{"event":"batch.created","data":[{"uuid":"a"}]},{"event":"task.created","data":null},{"event":"task.updated","data":"s"}]`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d, want 201: %s", resp.StatusCode, body)
	}
	var recs []struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(body), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("answer %s: want an array of 3 (%v)", body, err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Errorf("recs[%d].Seq = %d, want %d", i, r.Seq, i+1)
		}
	}

	// One bad event rejects the whole array.
	resp, body = a.do(http.MethodPost, "/api/v1/events",
		`[{"event":"task.created","data":1},{"event":"task.finished","data":2}]`)
	checkError(t, resp, body, http.StatusBadRequest, "bad.request", "index 1", `"task.finished"`, "task.created, task.updated")
	if h := a.log.Head(); h != 3 {
		t.Errorf("head = %d, want 3: a rejected array appends nothing", h)
	}
}

func TestPublishRejectsBadInput(t *testing.T) {
	a := newTestAPI(t, 200)

	tests := []struct {
		name     string
		body     string
		status   int
		err      string
		mentions []string
	}{
		{"unknown event", `{"event":"task.finished","data":{}}`, 400, "bad.request", []string{`"task.finished"`, "batch.created", "webhook.deleted"}},
		{"wrong case", `{"event":"Task.Created","data":{}}`, 400, "bad.request", []string{`"Task.Created"`}},
		{"missing event", `{"data":{}}`, 400, "bad.request", []string{`"event"`}},
		{"missing data", `{"event":"task.created"}`, 400, "bad.request", []string{`"data"`}},
		{"event not a string", `{"event":5,"data":{}}`, 400, "invalid.request.body", []string{`"event"`, "number"}},
		{"malformed", `{"event":"task.created","data":`, 400, "invalid.request.body", nil},
		{"trailing data", `{"event":"task.created","data":1} x`, 400, "invalid.request.body", []string{"after"}},
		{"empty body", ``, 400, "invalid.request.body", []string{"empty"}},
		{"empty array", `[]`, 400, "bad.request", []string{"empty"}},
		{"bad timestamp", `{"event":"task.created","data":1,"timestamp":"yesterday"}`, 400, "bad.request", []string{`"yesterday"`, "RFC 3339"}},
		{"too large", `{"event":"task.created","data":"` + strings.Repeat("x", 300) + `"}`, 413, "payload.too.large", []string{"200 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := a.do(http.MethodPost, "/api/v1/events", tt.body)
			checkError(t, resp, body, tt.status, tt.err, tt.mentions...)
		})
	}
	if h := a.log.Head(); h != 0 {
		t.Errorf("head = %d, want 0: rejected input appends nothing", h)
	}
}

func TestReadEvents(t *testing.T) {
	a := newTestAPI(t, 0)
	for _, b := range []string{
		`{"event":"task.created","data":{"n":1}}`,
		`{"event":"task.updated","data":{"n":2}}`,
		`{"event":"task.created","data":{ "n" : 3 }}`,
	} {
		if resp, body := a.do(http.MethodPost, "/api/v1/events", b); resp.StatusCode != http.StatusCreated {
			t.Fatalf("publish: %d %s", resp.StatusCode, body)
		}
	}

	type rec struct {
		Seq    uint64          `json:"seq"`
		Event  string          `json:"event"`
		Source string          `json:"source"`
		Data   json.RawMessage `json:"data"`
	}
	list := func(query string) []rec {
		t.Helper()
		resp, body := a.do(http.MethodGet, "/api/v1/events"+query, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET events%s: %d %s", query, resp.StatusCode, body)
		}
		var recs []rec
		if err := json.Unmarshal([]byte(body), &recs); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		return recs
	}

	if recs := list(""); len(recs) != 3 || recs[0].Seq != 1 || recs[2].Seq != 3 {
		t.Errorf("all = %+v, want seqs 1 to 3", recs)
	}
	if recs := list("?after=1&limit=1"); len(recs) != 1 || recs[0].Seq != 2 {
		t.Errorf("after=1&limit=1 = %+v, want seq 2", recs)
	}
	recs := list("?event=task.created&after=1")
	if len(recs) != 1 || recs[0].Seq != 3 || string(recs[0].Data) != `{ "n" : 3 }` || recs[0].Source != "published" {
		t.Errorf("event=task.created&after=1 = %+v, want seq 3 with its data unchanged", recs)
	}
	if recs := list("?after=3"); len(recs) != 0 {
		t.Errorf("after=3 = %+v, want an empty array", recs)
	}

	resp, body := a.do(http.MethodGet, "/api/v1/events/2", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"seq":2`) {
		t.Errorf("GET events/2 = %d %s", resp.StatusCode, body)
	}

	for _, tt := range []struct {
		path     string
		status   int
		err      string
		mentions []string
	}{
		{"/api/v1/events/9", 404, "not.found", []string{"9", "ends at seq 3"}},
		{"/api/v1/events/0", 400, "bad.request", []string{`"0"`}},
		{"/api/v1/events/x", 400, "bad.request", []string{`"x"`}},
		{"/api/v1/events?limit=0", 400, "invalid.query", []string{"1 to 1000"}},
		{"/api/v1/events?limit=1001", 400, "invalid.query", []string{"1 to 1000"}},
		{"/api/v1/events?after=-1", 400, "invalid.query", []string{`"-1"`}},
		{"/api/v1/events?event=task", 400, "invalid.query", []string{`"task"`, "task.created"}},
	} {
		resp, body := a.do(http.MethodGet, tt.path, "")
		checkError(t, resp, body, tt.status, tt.err, tt.mentions...)
	}
}

func TestWebhooksAPI(t *testing.T) {
	a := newTestAPI(t, 0)

	resp, body := a.do(http.MethodPost, "/api/v1/webhooks", `{"event":"task.created","url":"http://127.0.0.1:4000/hook"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var hook map[string]any
	if err := json.Unmarshal([]byte(body), &hook); err != nil {
		t.Fatalf("decode: %v", err)
	}
	id, _ := hook["uuid"].(string)
	if id == "" || hook["id"] != id || hook["createdAt"] == nil || hook["updatedAt"] == nil {
		t.Fatalf("created webhook = %v, want uuid, id, createdAt and updatedAt", hook)
	}

	a.do(http.MethodPost, "/api/v1/webhooks", `{"event":"task.updated","url":"http://127.0.0.1:4000/second"}`)

	resp, body = a.do(http.MethodGet, "/api/v1/webhooks?page=0&perPage=1", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Total") != "2" || !strings.Contains(body, "/second") || strings.Contains(body, id) {
		t.Errorf("page 0 of 1 = %d, X-Total %q, %s; want the newest webhook and X-Total 2", resp.StatusCode, resp.Header.Get("X-Total"), body)
	}
	resp, body = a.do(http.MethodGet, "/api/v1/webhooks?page=5", "")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("page past the end = %d %s, want an empty array", resp.StatusCode, body)
	}

	resp, body = a.do(http.MethodPut, "/api/v1/webhooks/"+id, `{"event":"task.deleted","url":"https://receiver.example/x"}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "task.deleted") {
		t.Errorf("update = %d %s", resp.StatusCode, body)
	}
	resp, body = a.do(http.MethodGet, "/api/v1/webhooks/"+id, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "https://receiver.example/x") {
		t.Errorf("get = %d %s", resp.StatusCode, body)
	}

	resp, _ = a.do(http.MethodDelete, "/api/v1/webhooks/"+id, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete = %d, want 204", resp.StatusCode)
	}

	head := a.log.Head()
	for _, tt := range []struct {
		method, path, body string
		status             int
		err                string
		mentions           []string
	}{
		{"GET", "/api/v1/webhooks/" + id, "", 404, "not.found", []string{id}},
		{"PUT", "/api/v1/webhooks/" + id, `{"event":"task.created","url":"http://h/"}`, 404, "not.found", []string{id}},
		{"DELETE", "/api/v1/webhooks/" + id, "", 404, "not.found", []string{id}},
		{"POST", "/api/v1/webhooks", `{"event":"task.finished","url":"http://h/"}`, 400, "bad.request", []string{`"task.finished"`, "task.created"}},
		{"POST", "/api/v1/webhooks", `{"event":"task.created","url":"ftp://h/"}`, 400, "bad.request", []string{`"ftp://h/"`, "http or https"}},
		{"POST", "/api/v1/webhooks", `{"event":"task.created","url":"/hook"}`, 400, "bad.request", []string{`"/hook"`}},
		{"POST", "/api/v1/webhooks", `{"event":"task.created","url":"http://h/"`, 400, "invalid.request.body", nil},
		{"GET", "/api/v1/webhooks?perPage=0", "", 400, "invalid.query", []string{"perPage", "1 to 100"}},
		{"GET", "/api/v1/webhooks?perPage=101", "", 400, "invalid.query", []string{"1 to 100"}},
		{"GET", "/api/v1/webhooks?page=-1", "", 400, "invalid.query", []string{"page"}},
		{"GET", "/api/v1/webhooks?page=x", "", 400, "invalid.query", []string{`"x"`}},
		{"PATCH", "/api/v1/webhooks", "", 405, "method.not.allowed", []string{"PATCH", "GET, POST"}},
		{"POST", "/api/v1/webhooks/" + id + "/status", "", 405, "method.not.allowed", []string{"POST", "allowed methods are GET"}},
		{"GET", "/api/v1/nothing", "", 404, "not.found", []string{"/api/v1/nothing"}},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := a.do(tt.method, tt.path, tt.body)
			checkError(t, resp, body, tt.status, tt.err, tt.mentions...)
		})
	}
	if h := a.log.Head(); h != head {
		t.Errorf("head = %d, want %d: rejected requests append nothing", h, head)
	}
}

func TestMethodNotAllowedListsAllowedMethods(t *testing.T) {
	a := newTestAPI(t, 0)
	for path, want := range map[string]string{
		"/api/v1/events":           "GET, POST",
		"/api/v1/webhooks/x":       "GET, PUT, DELETE",
		"/api/v1/webhooks/x/pause": "POST",
		"/health":                  "GET",
	} {
		resp, _ := a.do(http.MethodPatch, path, "")
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("PATCH %s: status %d, expected 405", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Allow"); got != want {
			t.Errorf("PATCH %s: Allow %q, expected %q", path, got, want)
		}
	}
}

func TestHealth(t *testing.T) {
	a := newTestAPI(t, 0)
	resp, body := a.do(http.MethodGet, "/health", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("health = %d %s", resp.StatusCode, body)
	}
}

// rawRequest writes a request over a new connection, closes the sending
// side and returns the response.
func (a *testAPI) rawRequest(request string) (*http.Response, string) {
	a.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.url, "http://"))
	if err != nil {
		a.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		a.t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		a.t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestBodyShorterThanContentLength(t *testing.T) {
	a := newTestAPI(t, 0)
	head := a.log.Head()
	for _, length := range []int{50, 100000} {
		body := `{"event":"task.created","data":{"a":1}}`
		resp, answer := a.rawRequest(fmt.Sprintf("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", length, body))
		checkError(t, resp, answer, http.StatusBadRequest, "bad.request", "Content-Length", strconv.Itoa(length))
	}
	if h := a.log.Head(); h != head {
		t.Errorf("head = %d, want %d: a cut body appends nothing", h, head)
	}
}

func TestContentLengthOverLimit(t *testing.T) {
	a := newTestAPI(t, 1000)
	// The body is not sent: the limit applies to what the request declares.
	resp, answer := a.rawRequest("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
	checkError(t, resp, answer, http.StatusRequestEntityTooLarge, "payload.too.large", "1000 bytes")
}

func TestEventTooLargeMessage(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := eventlog.Open(db, eventlog.Options{MaxEventBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	_, err = l.Append(t.Context(), []eventlog.Entry{{Event: "task.created", Data: []byte(`"` + strings.Repeat("x", 200) + `"`)}})
	got := toError(err)
	if got.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, expected 413", got.Status)
	}
	if want := `event "task.created" of 202 bytes (limit 100)`; got.Message != want {
		t.Errorf("message %q, expected %q", got.Message, want)
	}
}
