// Command hooklog records the events of an FFmpeg automation system in an
// append-only log and delivers them to webhooks. Run "hooklog server --help"
// for the server's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hooklog/hooklog/api"
	"github.com/hooklog/hooklog/app"
	"github.com/hooklog/hooklog/delivery"
	"github.com/hooklog/hooklog/metrics"
	"github.com/hooklog/hooklog/projections"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `hooklog records FFmate events in a durable log and delivers them to webhooks.

Usage:
  hooklog server [flags]    run the server (hooklog server --help lists the flags)
  hooklog webhooks COMMAND  list, inspect, replay, pause and resume webhooks of a running server
  hooklog receive [flags]   run a receiver that prints every delivery, for trying hooklog out
  hooklog version           print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}

	switch args[0] {
	case "server":
		return runServer(args[1:], stderr)
	case "webhooks":
		return runWebhooks(args[1:], stdout, stderr)
	case "receive":
		return runReceive(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "hooklog %s\n", version)
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// serverFlags are the settings of "hooklog server".
type serverFlags struct {
	host            string
	port            int
	data            string
	attemptTimeout  time.Duration
	retrySchedule   string
	retryMaxDelay   time.Duration
	retryMaxAttempt int
	retryMaxAge     time.Duration
	blockPrivate    bool
	attemptKeep     time.Duration
	maxBodyBytes    int64
	shutdownTimeout time.Duration
	logLevel        string
	logFormat       string
	perWebhook      bool

	apiTokens          string
	apiTokenFile       string
	protectObservation bool
	maxEventBytes      int
	maxJSONDepth       int
	maxURLLength       int
	maxHeaders         int
	maxHeaderBytes     int
	maxRequestHeader   int
	idempotencyWindow  time.Duration
	secretOverlap      time.Duration
	pprofAddr          string
	minFreeBytes       uint64
}

func runServer(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("hooklog server", flag.ContinueOnError)
	fs.SetOutput(stderr)

	var f serverFlags
	fs.StringVar(&f.host, "host", "", "interface to listen on; empty listens on all interfaces")
	fs.IntVar(&f.port, "port", 3000, "TCP port of the HTTP API")
	fs.StringVar(&f.data, "data", defaultDataDir(), "data directory of the embedded Badger database; created if missing")
	fs.DurationVar(&f.attemptTimeout, "attempt-timeout", 15*time.Second, "deadline of one delivery attempt, covering connect, request, response headers and body")
	fs.StringVar(&f.retrySchedule, "retry-schedule", "3s,5s,10s", "comma-separated waits after the first failed attempts; later waits double from the last one")
	fs.DurationVar(&f.retryMaxDelay, "retry-max-delay", time.Hour, "longest wait between two attempts, also for a receiver's Retry-After")
	fs.IntVar(&f.retryMaxAttempt, "retry-max-attempts", 100, "attempts after which an event is parked for the webhook; 0 means no limit")
	fs.DurationVar(&f.retryMaxAge, "retry-max-age", 72*time.Hour, "time after an event's first attempt after which it is parked if still not delivered; 0 means no limit")
	fs.BoolVar(&f.blockPrivate, "block-private-targets", false, "also refuse to deliver to loopback and private addresses (link-local, cloud metadata, unspecified and multicast addresses are always refused)")
	fs.DurationVar(&f.attemptKeep, "attempt-retention", 7*24*time.Hour, "how long the attempt log keeps each attempt")
	fs.Int64Var(&f.maxBodyBytes, "max-body-bytes", 4<<20, "largest request body the API accepts, in bytes; larger bodies get 413")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "time allowed for a graceful shutdown after SIGINT or SIGTERM")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.apiTokens, "api-token", "", "bearer tokens, separated by commas, that every /api/v1 request must carry; empty leaves the API open, as FFmate's is")
	fs.StringVar(&f.apiTokenFile, "api-token-file", "", "file with one bearer token per line, added to --api-token; lines starting with # are skipped")
	fs.BoolVar(&f.protectObservation, "protect-health-metrics", false, "also require a token for /health and /metrics")
	fs.IntVar(&f.maxEventBytes, "max-event-bytes", 1<<20, "largest event data the log accepts, in bytes; larger events get 413 and are never truncated")
	fs.IntVar(&f.maxJSONDepth, "max-json-depth", api.DefaultMaxJSONDepth, "deepest nesting of arrays and objects a publish body may have")
	fs.IntVar(&f.maxURLLength, "max-url-length", projections.DefaultLimits.MaxURLLength, "longest webhook URL, in bytes")
	fs.IntVar(&f.maxHeaders, "max-webhook-headers", projections.DefaultLimits.MaxHeaders, "most custom request headers one webhook may have")
	fs.IntVar(&f.maxHeaderBytes, "max-webhook-header-bytes", projections.DefaultLimits.MaxHeaderBytes, "largest size of a webhook's custom header names and values together, in bytes")
	fs.IntVar(&f.maxRequestHeader, "max-request-header-bytes", 64<<10, "largest header of an API request, in bytes")
	fs.DurationVar(&f.idempotencyWindow, "idempotency-window", api.DefaultIdempotencyWindow, "how long an Idempotency-Key of a publish is remembered")
	fs.DurationVar(&f.secretOverlap, "secret-rotation-overlap", projections.DefaultSecretOverlap, "how long a rotated-out signing secret keeps signing beside the new one")
	fs.Uint64Var(&f.minFreeBytes, "min-free-bytes", 128<<20, "disk space kept free in the data directory, in bytes: appends that would use it get 507, and the server does not start with less")
	fs.StringVar(&f.pprofAddr, "pprof-addr", "", "address of a separate listener for Go's /debug/pprof profiles, such as 127.0.0.1:6060; empty serves none")
	fs.BoolVar(&f.perWebhook, "metrics-per-webhook", true, "export the hooklog_webhook_* metrics, 8 series per webhook labelled with its id; false drops them")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hooklog server [flags]\n\nEvery flag can also be set by an environment variable: --data by HOOKLOG_DATA,\n--attempt-timeout by HOOKLOG_ATTEMPT_TIMEOUT, and so on. A flag on the command line wins.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q; hooklog server takes flags only\n", fs.Arg(0))
		return 2
	}
	if err := applyEnvironment(fs); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	cfg, logger, err := f.config(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	gcPercent, invalid := setGCPercent()
	if invalid {
		logger.Warn(`invalid GOGC: expected "off" or a number; using the server's default`, "gogc_value", os.Getenv("GOGC"), "gogc", gcPercent)
	}
	logger.Debug("garbage collector target set", "gogc", gcPercent)

	a, err := app.Open(cfg)
	if err != nil {
		logger.Error("hooklog could not start", "error", err)
		return 1
	}
	if f.pprofAddr != "" {
		stopProfiles, err := serveProfiles(f.pprofAddr, logger)
		if err != nil {
			logger.Error("hooklog could not start", "error", err)
			return 1
		}
		defer stopProfiles()
	}

	ctx, stop := signalContext(logger)
	defer stop()
	if err := a.Run(ctx); err != nil {
		return 1
	}
	return 0
}

// applyEnvironment sets every flag not given on the command line from its
// environment variable: HOOKLOG_ and the flag name in upper case with
// underscores, such as HOOKLOG_ATTEMPT_TIMEOUT.
func applyEnvironment(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })

	var err error
	fs.VisitAll(func(fl *flag.Flag) {
		if given[fl.Name] || err != nil {
			return
		}
		name := envName(fl.Name)
		value, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if setErr := fs.Set(fl.Name, value); setErr != nil {
			err = fmt.Errorf("invalid %s %q: %v", name, value, setErr)
		}
	})
	return err
}

func envName(flagName string) string {
	return "HOOKLOG_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "hooklog-data"
	}
	return filepath.Join(home, ".hooklog", "data")
}

// config validates the flags and turns them into the server's configuration.
func (f serverFlags) config(stderr io.Writer) (app.Config, *slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return app.Config{}, nil, fmt.Errorf("invalid --log-level %q: expected debug, info, warn or error", f.logLevel)
	}

	opts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch f.logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(stderr, opts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(stderr, opts))
	default:
		return app.Config{}, nil, fmt.Errorf("invalid --log-format %q: expected text or json", f.logFormat)
	}

	if f.port < 0 || f.port > 65535 {
		return app.Config{}, nil, fmt.Errorf("invalid --port %d: expected 0 to 65535", f.port)
	}
	if f.data == "" {
		return app.Config{}, nil, errors.New("invalid --data: the data directory must not be empty")
	}
	if f.attemptTimeout <= 0 {
		return app.Config{}, nil, fmt.Errorf("invalid --attempt-timeout %s: expected a positive duration such as 15s", f.attemptTimeout)
	}
	if f.retryMaxDelay <= 0 {
		return app.Config{}, nil, fmt.Errorf("invalid --retry-max-delay %s: expected a positive duration such as 1h", f.retryMaxDelay)
	}
	if f.retryMaxAttempt < 0 {
		return app.Config{}, nil, fmt.Errorf("invalid --retry-max-attempts %d: expected 0 (no limit) or more", f.retryMaxAttempt)
	}
	if f.retryMaxAge < 0 {
		return app.Config{}, nil, fmt.Errorf("invalid --retry-max-age %s: expected 0 (no limit) or a positive duration such as 72h", f.retryMaxAge)
	}
	if f.attemptKeep <= 0 {
		return app.Config{}, nil, fmt.Errorf("invalid --attempt-retention %s: expected a positive duration such as 168h", f.attemptKeep)
	}
	if f.maxBodyBytes <= 0 {
		return app.Config{}, nil, fmt.Errorf("invalid --max-body-bytes %d: expected a positive number of bytes", f.maxBodyBytes)
	}
	if f.shutdownTimeout <= 0 {
		return app.Config{}, nil, fmt.Errorf("invalid --shutdown-timeout %s: expected a positive duration such as 10s", f.shutdownTimeout)
	}

	schedule, err := parseSchedule(f.retrySchedule)
	if err != nil {
		return app.Config{}, nil, err
	}
	tokens, err := f.tokens()
	if err != nil {
		return app.Config{}, nil, err
	}
	for name, value := range map[string]int{
		"--max-event-bytes": f.maxEventBytes, "--max-json-depth": f.maxJSONDepth, "--max-url-length": f.maxURLLength,
		"--max-webhook-headers": f.maxHeaders, "--max-webhook-header-bytes": f.maxHeaderBytes, "--max-request-header-bytes": f.maxRequestHeader,
	} {
		if value <= 0 {
			return app.Config{}, nil, fmt.Errorf("invalid %s %d: expected a positive number", name, value)
		}
	}
	if f.minFreeBytes == 0 {
		return app.Config{}, nil, errors.New("invalid --min-free-bytes 0: expected a positive number of bytes to keep free, such as 134217728")
	}
	if f.maxEventBytes > int(f.maxBodyBytes) {
		return app.Config{}, nil, fmt.Errorf("invalid --max-event-bytes %d: it must not exceed --max-body-bytes %d", f.maxEventBytes, f.maxBodyBytes)
	}
	if f.idempotencyWindow <= 0 || f.secretOverlap < 0 {
		return app.Config{}, nil, errors.New("invalid --idempotency-window or --secret-rotation-overlap: expected positive durations such as 24h")
	}

	policy := delivery.DefaultRetryPolicy()
	policy.Schedule = schedule
	policy.MaxDelay = f.retryMaxDelay
	policy.MaxAttempts = f.retryMaxAttempt
	policy.MaxAge = f.retryMaxAge

	cfg := app.Config{
		Addr:    f.host + ":" + strconv.Itoa(f.port),
		DataDir: f.data,
		Delivery: delivery.Config{
			Policy:            policy,
			AttemptTimeout:    f.attemptTimeout,
			UserAgent:         "hooklog/" + version,
			AddressPolicy:     delivery.AddressPolicy{BlockPrivate: f.blockPrivate},
			AttemptRetention:  f.attemptKeep,
			PerWebhookMetrics: f.perWebhook,
		},
		MaxBodyBytes:   f.maxBodyBytes,
		MaxEventBytes:  f.maxEventBytes,
		MaxHeaderBytes: f.maxRequestHeader,
		API: api.Config{
			Tokens:               tokens,
			ProtectObservability: f.protectObservation,
			MaxJSONDepth:         f.maxJSONDepth,
			IdempotencyWindow:    f.idempotencyWindow,
		},
		WebhookLimits:   projections.Limits{MaxURLLength: f.maxURLLength, MaxHeaders: f.maxHeaders, MaxHeaderBytes: f.maxHeaderBytes},
		SecretOverlap:   f.secretOverlap,
		MinFreeBytes:    f.minFreeBytes,
		ShutdownTimeout: f.shutdownTimeout,
		Logger:          logger,
		Registry:        metrics.NewRegistry(),
	}
	if strings.Contains(f.host, ":") {
		cfg.Addr = "[" + f.host + "]:" + strconv.Itoa(f.port)
	}
	return cfg, logger, nil
}

// tokens returns the API tokens of --api-token and --api-token-file.
func (f serverFlags) tokens() ([]string, error) {
	var tokens []string
	for t := range strings.SplitSeq(f.apiTokens, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tokens = append(tokens, t)
		}
	}
	if f.apiTokenFile == "" {
		return tokens, nil
	}

	data, err := os.ReadFile(f.apiTokenFile)
	if err != nil {
		return nil, fmt.Errorf("invalid --api-token-file: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			tokens = append(tokens, line)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("invalid --api-token-file %s: it contains no token", f.apiTokenFile)
	}
	return tokens, nil
}

func parseSchedule(raw string) ([]time.Duration, error) {
	var schedule []time.Duration
	for part := range strings.SplitSeq(raw, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("invalid --retry-schedule %q: expected positive durations separated by commas, such as 3s,5s,10s", raw)
		}
		schedule = append(schedule, d)
	}
	return schedule, nil
}

// signalContext returns a context that ends at the first SIGINT or SIGTERM.
// A second signal exits at once.
func signalContext(logger *slog.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)

	go func() {
		select {
		case sig := <-signals:
			logger.Info("signal received; shutting down gracefully (send it again to exit at once)", "signal", sig.String())
			cancel()
		case <-ctx.Done():
			return
		}

		sig := <-signals
		logger.Warn("second signal received; exiting without a graceful shutdown", "signal", sig.String())
		os.Exit(1)
	}()

	return ctx, func() {
		signal.Stop(signals)
		cancel()
	}
}
