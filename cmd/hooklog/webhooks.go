package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const webhooksUsage = `Usage: hooklog webhooks COMMAND [flags] [ID]

Commands, run against a running server's API:
  list                       list the webhooks
  status [ID]                delivery status of one webhook, or of all
  replay ID --seq N          deliver again every event from seq N, in order
  replay ID --time T         deliver again every event from time T (RFC 3339)
  redeliver ID --seq N       send the event at seq N once more; the cursor stays
  pause ID                   stop delivering; the cursor is kept
  resume ID                  deliver again, catching up from the cursor
  parked ID                  list the parked events
  parked ID --replay [--seq N]   replay all parked events, or the one at seq N
  parked ID --drop [--seq N]     delete all parked events, or the one at seq N

Flags:
  --server URL   the server (default http://127.0.0.1:3000, or HOOKLOG_SERVER)
  --token TOKEN  the API token, when the server requires one (or HOOKLOG_API_TOKEN)
  --json         print the API's JSON instead of text
`

// webhooksCommand is one run of "hooklog webhooks".
type webhooksCommand struct {
	server string
	token  string
	json   bool
	seq    uint64
	time   string
	replay bool
	drop   bool
	args   []string // positional arguments after the command name
	stdout io.Writer
	client *http.Client
}

func runWebhooks(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(stderr, webhooksUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}

	c := &webhooksCommand{stdout: stdout, client: &http.Client{Timeout: 60 * time.Second}}
	fs := flag.NewFlagSet("hooklog webhooks", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := os.Getenv("HOOKLOG_SERVER")
	if server == "" {
		server = "http://127.0.0.1:3000"
	}
	fs.StringVar(&c.server, "server", server, "")
	fs.StringVar(&c.token, "token", strings.Split(os.Getenv("HOOKLOG_API_TOKEN"), ",")[0], "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.Uint64Var(&c.seq, "seq", 0, "")
	fs.StringVar(&c.time, "time", "", "")
	fs.BoolVar(&c.replay, "replay", false, "")
	fs.BoolVar(&c.drop, "drop", false, "")

	// Flags may come before, between or after the positional arguments.
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			fmt.Fprintf(stderr, "%v\n\n%s", err, webhooksUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		c.args = append(c.args, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	c.server = strings.TrimRight(c.server, "/")
	if len(c.args) == 0 {
		fmt.Fprint(stderr, webhooksUsage)
		return 2
	}
	name := c.args[0]
	c.args = c.args[1:]

	var err error
	switch name {
	case "list":
		err = c.list()
	case "status":
		err = c.status()
	case "replay":
		err = c.replayCursor()
	case "redeliver":
		err = c.redeliver()
	case "pause", "resume":
		err = c.setState(name)
	case "parked":
		err = c.parked()
	default:
		fmt.Fprintf(stderr, "unknown webhooks command %q\n\n%s", name, webhooksUsage)
		return 2
	}

	var usageErr usageError
	if errors.As(err, &usageErr) {
		fmt.Fprintf(stderr, "%v\n\n%s", err, webhooksUsage)
		return 2
	}
	if errors.Is(err, errAttemptFailed) {
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// usageError is a mistake in the command line.
type usageError string

func (e usageError) Error() string { return string(e) }

// id returns the one webhook id the command takes.
func (c *webhooksCommand) id() (string, error) {
	if len(c.args) != 1 {
		return "", usageError(fmt.Sprintf("expected one webhook id, got %d arguments", len(c.args)))
	}
	return c.args[0], nil
}

// call sends a request to the API and decodes a 2xx response into out. Any
// other response becomes an error with the API's message.
func (c *webhooksCommand) call(method, path string, body any, out any) ([]byte, error) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(data)
	}

	req, err := http.NewRequest(method, c.server+path, reader)
	if err != nil {
		return nil, fmt.Errorf("invalid --server %q: %w", c.server, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("request to %s failed: %w (is the server running? set it with --server)", c.server, err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the response of %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var apiErr struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &apiErr) == nil && apiErr.Message != "" {
			return nil, fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, apiErr.Message)
		}
		return nil, fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("decode the response of %s %s: %w", method, path, err)
		}
	}
	return data, nil
}

// do calls the API and prints its response: the JSON as it came with --json,
// otherwise the line that text makes of out.
func (c *webhooksCommand) do(method, path string, body, out any, text func() string) error {
	data, err := c.call(method, path, body, out)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(data)
	}
	_, err = fmt.Fprintln(c.stdout, text())
	return err
}

// allPages fetches every page of a paged list. With --json it prints them
// as one JSON array and returns no items.
func (c *webhooksCommand) allPages(path string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	for page := 0; ; page++ {
		var batch []json.RawMessage
		if _, err := c.call(http.MethodGet, fmt.Sprintf("%s?page=%d&perPage=100", path, page), nil, &batch); err != nil {
			return nil, err
		}
		items = append(items, batch...)
		if len(batch) < 100 {
			break
		}
	}
	if !c.json {
		return items, nil
	}

	data, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	return nil, c.printJSON(data)
}

// printJSON prints the API's response as it came, indented.
func (c *webhooksCommand) printJSON(data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

type webhookView struct {
	UUID      string    `json:"uuid"`
	Event     string    `json:"event"`
	URL       string    `json:"url"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"createdAt"`
}

func (c *webhooksCommand) list() error {
	if len(c.args) != 0 {
		return usageError("list takes no arguments")
	}

	raw, err := c.allPages("/api/v1/webhooks")
	if err != nil || c.json {
		return err
	}

	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT\tSTATE\tCREATED\tURL")
	for _, item := range raw {
		var h webhookView
		if err := json.Unmarshal(item, &h); err != nil {
			return fmt.Errorf("decode a webhook: %w", err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.UUID, h.Event, h.State, h.CreatedAt.Format(time.RFC3339), h.URL)
	}
	return tw.Flush()
}

type statusView struct {
	WebhookID   string     `json:"webhookId"`
	Event       string     `json:"event"`
	State       string     `json:"state"`
	Cursor      uint64     `json:"cursor"`
	Head        uint64     `json:"head"`
	Lag         uint64     `json:"lag"`
	OldestAge   float64    `json:"oldestUndeliveredAgeSeconds"`
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"nextAttemptAt"`
	LastError   string     `json:"lastError"`
	Parked      int        `json:"parked"`
}

func (c *webhooksCommand) status() error {
	var list []statusView
	var data []byte
	var err error
	switch len(c.args) {
	case 0:
		data, err = c.call(http.MethodGet, "/api/v1/webhooks/status", nil, &list)
	case 1:
		var one statusView
		data, err = c.call(http.MethodGet, "/api/v1/webhooks/"+c.args[0]+"/status", nil, &one)
		list = []statusView{one}
	default:
		return usageError("status takes at most one webhook id")
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(data)
	}

	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT\tSTATE\tCURSOR\tHEAD\tLAG\tOLDEST\tATTEMPTS\tNEXT ATTEMPT\tPARKED\tLAST ERROR")
	for _, st := range list {
		next := "-"
		if st.NextAttempt != nil {
			next = st.NextAttempt.Local().Format(time.RFC3339)
		}
		oldest := "-"
		if st.Lag > 0 {
			oldest = (time.Duration(st.OldestAge) * time.Second).String()
		}
		lastError := st.LastError
		if lastError == "" {
			lastError = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%d\t%s\n",
			st.WebhookID, st.Event, st.State, st.Cursor, st.Head, st.Lag, oldest, st.Attempts, next, st.Parked, lastError)
	}
	return tw.Flush()
}

func (c *webhooksCommand) replayCursor() error {
	id, err := c.id()
	if err != nil {
		return err
	}

	body := map[string]any{}
	switch {
	case c.seq != 0 && c.time == "":
		body["seq"] = c.seq
	case c.seq == 0 && c.time != "":
		body["time"] = c.time
	default:
		return usageError("replay takes exactly one of --seq N (a seq from 1) and --time T")
	}

	var out struct {
		FromSeq uint64 `json:"fromSeq"`
	}
	return c.do(http.MethodPost, "/api/v1/webhooks/"+id+"/replay", body, &out, func() string {
		return fmt.Sprintf("webhook %s replays its events from seq %d, in order, then goes on live", id, out.FromSeq)
	})
}

type attemptView struct {
	Seq        uint64  `json:"seq"`
	Attempt    int     `json:"attempt"`
	Trigger    string  `json:"trigger"`
	Delivered  bool    `json:"delivered"`
	Error      string  `json:"error"`
	DurationMs float64 `json:"durationMs"`
	Response   *struct {
		Status int `json:"status"`
	} `json:"response"`
}

func (a attemptView) describe() string {
	if a.Delivered {
		return fmt.Sprintf("delivered seq %d (status %d, %.1f ms)", a.Seq, a.Response.Status, a.DurationMs)
	}
	return fmt.Sprintf("seq %d failed: %s", a.Seq, a.Error)
}

// failure returns an error when the attempt was not delivered, so that the
// command exits with 1; the attempt itself is already printed.
func (a attemptView) failure() error {
	if a.Delivered {
		return nil
	}
	return errAttemptFailed
}

// errAttemptFailed ends a command whose one attempt failed; the attempt has
// been printed, so the error prints nothing more.
var errAttemptFailed = errors.New("")

func (c *webhooksCommand) redeliver() error {
	id, err := c.id()
	if err != nil {
		return err
	}
	if c.seq == 0 {
		return usageError("redeliver needs --seq N")
	}

	var out attemptView
	if err := c.do(http.MethodPost, "/api/v1/webhooks/"+id+"/redeliver", map[string]uint64{"seq": c.seq}, &out, func() string { return out.describe() }); err != nil {
		return err
	}
	return out.failure()
}

func (c *webhooksCommand) setState(action string) error {
	id, err := c.id()
	if err != nil {
		return err
	}

	var out webhookView
	return c.do(http.MethodPost, "/api/v1/webhooks/"+id+"/"+action, nil, &out, func() string {
		return fmt.Sprintf("webhook %s is %s", id, out.State)
	})
}

type parkedView struct {
	Seq        uint64    `json:"seq"`
	Event      string    `json:"event"`
	Reason     string    `json:"reason"`
	Attempts   int       `json:"attempts"`
	LastStatus int       `json:"lastStatus"`
	LastError  string    `json:"lastError"`
	ParkedAt   time.Time `json:"parkedAt"`
}

func (c *webhooksCommand) parked() error {
	id, err := c.id()
	if err != nil {
		return err
	}
	if c.replay && c.drop {
		return usageError("parked takes --replay or --drop, not both")
	}

	path := "/api/v1/webhooks/" + id + "/parked"
	if c.seq != 0 {
		path += "/" + strconv.FormatUint(c.seq, 10)
	}

	switch {
	case c.replay:
		return c.replayParked(path)
	case c.drop:
		return c.dropParked(path)
	case c.seq != 0:
		return usageError("--seq goes with --replay or --drop")
	}

	raw, err := c.allPages(path)
	if err != nil || c.json {
		return err
	}

	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tEVENT\tATTEMPTS\tLAST STATUS\tPARKED AT\tREASON\tLAST ERROR")
	for _, item := range raw {
		var p parkedView
		if err := json.Unmarshal(item, &p); err != nil {
			return fmt.Errorf("decode a parked event: %w", err)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%s\n", p.Seq, p.Event, p.Attempts, p.LastStatus, p.ParkedAt.Format(time.RFC3339), p.Reason, p.LastError)
	}
	return tw.Flush()
}

func (c *webhooksCommand) replayParked(path string) error {
	if c.seq != 0 {
		var out attemptView
		if err := c.do(http.MethodPost, path+"/replay", nil, &out, func() string { return out.describe() }); err != nil {
			return err
		}
		return out.failure()
	}

	var out struct {
		Replaying int `json:"replaying"`
	}
	return c.do(http.MethodPost, path+"/replay", nil, &out, func() string {
		return fmt.Sprintf("replaying %d parked events in the background; 'hooklog webhooks status' shows the parked count", out.Replaying)
	})
}

func (c *webhooksCommand) dropParked(path string) error {
	var out struct {
		Dropped int `json:"dropped"`
	}
	data, err := c.call(http.MethodDelete, path, nil, &out)
	if err != nil {
		return err
	}
	if c.json && len(data) > 0 {
		return c.printJSON(data)
	}
	if c.seq != 0 {
		out.Dropped = 1
	}
	fmt.Fprintf(c.stdout, "dropped %d parked events\n", out.Dropped)
	return nil
}
