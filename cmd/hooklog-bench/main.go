// Command hooklog-bench measures a hooklog server against baselines taken
// on the same machine in the same run: a null HTTP handler, the data
// directory's fsync, and Badger's own batch appends. Every result is
// printed next to its baseline as a ratio.
//
// It builds hooklog (or takes --hooklog), runs it as a separate process on
// loopback with a fresh data directory, and runs the null receivers itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// sizes are the amounts of work of one run.
type sizes struct {
	duration       time.Duration // of each throughput and latency run
	deliveryEvents int           // events for the ordered delivery run
	fanoutEvents   int           // events for the fan-out run, each to 100 webhooks
	backlogEvents  int           // events appended while the receiver is down
	dataBytes      int           // bytes of each event's data
	rounds         int           // alternating runs of the null handler and hooklog per publish concurrency
}

var (
	fullSizes  = sizes{duration: 5 * time.Second, deliveryEvents: 50000, fanoutEvents: 2000, backlogEvents: 1000000, dataBytes: 1024, rounds: 3}
	shortSizes = sizes{duration: 2 * time.Second, deliveryEvents: 5000, fanoutEvents: 200, backlogEvents: 20000, dataBytes: 1024, rounds: 1}
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "null" {
		os.Exit(runNull(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hooklog-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hooklogPath := fs.String("hooklog", "", "hooklog binary to measure; empty builds ./cmd/hooklog")
	short := fs.Bool("short", false, "small sizes, for a run of under two minutes")
	only := fs.String("scenarios", "baseline,publish,latency,delivery,fanout,catchup,restart", "comma-separated scenarios to run")
	backlog := fs.Int("backlog", 0, "events of the catch-up's backlog and of the restart's log of small events; 0 keeps the size of the run (1,000,000, or 20,000 with --short)")
	dataDir := fs.String("data", "", "parent of the data directories; empty means a temporary directory, removed at the end")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hooklog-bench [flags]\n\nMeasures hooklog against same-run baselines and prints a Markdown table.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	sz := fullSizes
	if *short {
		sz = shortSizes
	}
	if *backlog > 0 {
		sz.backlogEvents = *backlog
	}

	root := *dataDir
	if root == "" {
		dir, err := os.MkdirTemp("", "hooklog-bench-")
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root = dir
	}

	binary := *hooklogPath
	if binary == "" {
		binary = filepath.Join(root, "hooklog")
		fmt.Fprintln(stderr, "building hooklog…")
		build := exec.Command("go", "build", "-o", binary, "./cmd/hooklog")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(stderr, "build hooklog (run hooklog-bench from the repository root, or pass --hooklog): %v\n", err)
			return 1
		}
	}

	b := &bench{binary: binary, root: root, sizes: sz, log: stderr, baselines: map[string]float64{}}
	wanted := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		wanted[strings.TrimSpace(s)] = true
	}

	ctx := context.Background()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"baseline", b.measureBaselines},
		{"publish", b.publishThroughput},
		{"latency", b.endToEndLatency},
		{"delivery", b.orderedDelivery},
		{"fanout", b.fanOut},
		{"catchup", b.catchUp},
		{"restart", b.restart},
	}
	for _, step := range steps {
		if !wanted[step.name] {
			continue
		}
		fmt.Fprintf(stderr, "running %s…\n", step.name)
		if err := step.run(ctx); err != nil {
			fmt.Fprintf(stderr, "%s failed: %v\n", step.name, err)
			b.printTable(stdout)
			return 1
		}
	}

	b.printTable(stdout)
	return 0
}
