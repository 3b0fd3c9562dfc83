package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// runReceive runs a receiver that prints every delivery and answers 200, for
// trying hooklog out without a service of one's own.
func runReceive(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hooklog receive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "interface to listen on")
	port := fs.Int("port", 4000, "TCP port to listen on")
	status := fs.Int("status", http.StatusOK, "HTTP status to answer every delivery with, to try out retries")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hooklog receive [flags]\n\nPrints each delivery's seq, webhook-id and webhook-timestamp headers and its body, and responds with --status.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *status < 100 || *status > 599 {
		fmt.Fprintf(stderr, "invalid --status %d: expected 100 to 599\n", *status)
		return 2
	}

	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(stdout, "%s %s %s seq=%s webhook-id=%s webhook-timestamp=%s\n%s\n\n",
			time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.Path,
			r.Header.Get("X-Hooklog-Sequence"), r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body)
		w.WriteHeader(*status)
	})

	fmt.Fprintf(stderr, "receiving on http://%s, responding with %d\n", addr, *status)
	srv := &http.Server{Addr: addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
