// Package app assembles hooklog's parts into a server: the Badger database,
// the event log, the webhook projection, delivery and the HTTP API. It starts
// them in that order and stops them in the reverse order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hooklog/hooklog/api"
	"github.com/hooklog/hooklog/catalog"
	"github.com/hooklog/hooklog/delivery"
	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/internal/diskspace"
	"github.com/hooklog/hooklog/metrics"
	"github.com/hooklog/hooklog/projections"
)

// Config configures the server. Zero fields take the documented defaults.
type Config struct {
	// Addr is the listen address, such as ":3000" or "127.0.0.1:0".
	Addr string
	// DataDir holds the Badger database; it is created if missing.
	DataDir string
	// Delivery configures the delivery workers.
	Delivery delivery.Config
	// MaxBodyBytes limits request bodies; zero means api.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxEventBytes limits one event's data at append; zero means 1 MiB.
	MaxEventBytes int
	// MaxHeaderBytes limits the header of an API request; zero means 64 KiB.
	MaxHeaderBytes int
	// API sets the API's tokens, JSON depth and idempotency window. Open
	// fills in the parts and MaxBodyBytes.
	API api.Config
	// WebhookLimits bound webhook URLs and custom headers.
	WebhookLimits projections.Limits
	// SecretOverlap is how long a rotated-out secret keeps signing; zero
	// means projections.DefaultSecretOverlap.
	SecretOverlap time.Duration
	// MinFreeBytes is the disk space kept free in the data directory:
	// appends that would use it fail with 507, and the server does not
	// start with less. Zero means 128 MiB.
	MinFreeBytes uint64
	// ShutdownTimeout bounds the whole shutdown; zero means 10 seconds.
	ShutdownTimeout time.Duration
	// Logger receives the server's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives every part's metrics and is served at /metrics;
	// nil means a new registry from metrics.NewRegistry.
	Registry *prometheus.Registry
}

// App is a running hooklog server.
type App struct {
	cfg      Config
	logger   *slog.Logger
	db       *badger.DB // the log database
	stateDB  *badger.DB // the delivery database
	log      *eventlog.Log
	webhooks *projections.Webhooks
	delivery *delivery.Manager
	server   *http.Server
	listener net.Listener
}

// Open opens the data directory, recovers the log and the webhook set, and
// binds the listen address. It starts nothing; Run does.
func Open(cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	// Delivery's grace for attempts in flight fits in the shutdown, after
	// the HTTP server's share.
	if grace := cfg.ShutdownTimeout / 3; cfg.Delivery.StopGrace <= 0 || cfg.Delivery.StopGrace > grace {
		cfg.Delivery.StopGrace = min(5*time.Second, grace)
	}
	if cfg.Delivery.Logger == nil {
		cfg.Delivery.Logger = cfg.Logger
	}
	if cfg.Registry == nil {
		cfg.Registry = metrics.NewRegistry()
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = 1 << 20
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	cfg.Delivery.Registerer = cfg.Registry
	a := &App{cfg: cfg, logger: cfg.Logger}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if cfg.MinFreeBytes == 0 {
		cfg.MinFreeBytes = 128 << 20
	}
	free, err := diskspace.Free(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if free < cfg.MinFreeBytes {
		return nil, fmt.Errorf("data directory %s has %d MiB free, less than the %d MiB kept in reserve (--min-free-bytes): free some space first",
			cfg.DataDir, free>>20, cfg.MinFreeBytes>>20)
	}
	guard := diskspace.New(cfg.DataDir, cfg.MinFreeBytes)
	cfg.Delivery.SpaceCheck = guard.Check

	a.db, err = OpenDB(filepath.Join(cfg.DataDir, "log"), cfg.Logger, logDB)
	if err != nil {
		return nil, err
	}
	a.stateDB, err = OpenDB(filepath.Join(cfg.DataDir, "delivery"), cfg.Logger, deliveryDB)
	if err != nil {
		a.db.Close()
		return nil, err
	}
	closeDBs := func() {
		a.stateDB.Close()
		a.db.Close()
	}

	cfg.Registry.MustRegister(metrics.NewStorageCollector(a.db, a.stateDB))
	a.log, err = eventlog.Open(a.db, eventlog.Options{
		Registerer: cfg.Registry, KnownEvents: catalog.Names, MaxEventBytes: cfg.MaxEventBytes,
		MaxBatchBytes: maxBatchBytes, ValueThreshold: logValueThreshold, SpaceCheck: guard.Check,
	})
	if err != nil {
		closeDBs()
		return nil, err
	}

	a.webhooks, err = projections.OpenWebhooks(a.log, a.db, cfg.Logger)
	if err != nil {
		a.log.Close()
		closeDBs()
		return nil, err
	}

	a.webhooks.SetLimits(cfg.WebhookLimits)
	if cfg.SecretOverlap > 0 {
		a.webhooks.SetSecretOverlap(cfg.SecretOverlap)
	}

	if cfg.Delivery.SyncInterval <= 0 {
		cfg.Delivery.SyncInterval = 100 * time.Millisecond
	}
	if cfg.Delivery.ValueLogGCInterval <= 0 {
		cfg.Delivery.ValueLogGCInterval = 5 * time.Minute
	}
	a.delivery = delivery.NewManager(a.log, a.webhooks, a.stateDB, cfg.Delivery)

	apiCfg := cfg.API
	apiCfg.Log, apiCfg.Webhooks, apiCfg.Delivery = a.log, a.webhooks, a.delivery
	apiCfg.Gatherer, apiCfg.Registerer = cfg.Registry, cfg.Registry
	apiCfg.MaxBodyBytes, apiCfg.Logger = cfg.MaxBodyBytes, cfg.Logger
	// A client that stalls while sending its request is cut off, so it
	// cannot hold a connection, a goroutine and the shutdown.
	a.server = &http.Server{
		Handler:           api.New(apiCfg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
	}

	a.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		a.log.Close()
		closeDBs()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return a, nil
}

// dbKind selects the options of one of the two databases.
type dbKind int

const (
	// logDB holds the event log, the webhook projection and the webhook
	// credentials. Every commit is synced, so an acknowledged event is on
	// disk.
	logDB dbKind = iota
	// deliveryDB holds cursors, retry state, parked events and the attempt
	// log, written after every attempt. Commits are not synced one by one:
	// the delivery manager syncs the database every SyncInterval. A write
	// survives a crash of the process at once, because Badger writes
	// through memory-mapped files, and a power loss after the next sync.
	deliveryDB
)

// Memory of the databases. Badger allocates each memtable in full on the
// Go heap and builds a flushed memtable's table in memory, so these sizes,
// not Badger's defaults (64 MiB memtables, five of them, a 256 MiB block
// cache), set most of hooklog's memory.
const (
	logMemTableSize      = 16 << 20
	deliveryMemTableSize = 8 << 20
	// logValueThreshold sends event data of this size and more to Badger's
	// value log instead of the memtable, which then holds keys and pointers
	// only: flushes stay small and rare.
	logValueThreshold = 512
	// deliveryValueThreshold sends attempt records, parked events and long
	// states to the delivery database's value log. Its memtable then
	// contains cursors, keys and pointers: by our estimate a delivery adds
	// about 150 bytes to the LSM tree instead of about a kilobyte, so
	// flushes and compactions, whose table builders are most of the heap,
	// are rarer.
	deliveryValueThreshold = 256
	// deliveryValueLogFileSize is small so that the value log's garbage
	// collection, which rewrites one file at a time, can free the space of
	// expired attempt records soon.
	deliveryValueLogFileSize = 64 << 20
	// logValueLogFileSize bounds the start-up time. When Badger (v4.9.6)
	// opens a database, it reads the whole value log file written last to
	// find where its valid entries end, and then starts a new file. With
	// Badger's default of 1 GiB, a restart after a run that appended a
	// gigabyte of events took 0.45 s with the file in the page cache.
	logValueLogFileSize = 64 << 20
	// tableSize is the size of every table below level 0. A compaction
	// runs several table builders at once, and each starts with a buffer
	// of twice the table's size, so Badger's 2 MiB, doubled at each deeper
	// level, made 8 to 16 MiB per builder with a large log.
	tableSize = 1 << 20
	// maxBatchBytes keeps a group commit under Badger's transaction limit,
	// 15% of the memtable size, as eventlog estimates it.
	maxBatchBytes = logMemTableSize * 14 / 100
)

// OpenDB opens a Badger database in dir with the options of kind. Reads of
// the log are mostly sequential, so small block caches do.
func OpenDB(dir string, logger *slog.Logger, kind dbKind) (*badger.DB, error) {
	// Without compression the table builders need no second buffer for
	// each block: the log's tables hold keys and value pointers, which
	// compress little, and the memory matters more than the disk.
	opts := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{logger}).
		WithNumCompactors(2).
		WithNumMemtables(2).
		WithBaseTableSize(tableSize).
		WithCompression(options.None)
	opts.TableSizeMultiplier = 1
	switch kind {
	case logDB:
		opts = opts.WithSyncWrites(true).WithMemTableSize(logMemTableSize).WithBlockCacheSize(16 << 20).WithValueThreshold(logValueThreshold).
			WithValueLogFileSize(logValueLogFileSize)
	case deliveryDB:
		// Each webhook's worker writes only its own keys, so transactions
		// cannot conflict and Badger need not track their reads.
		opts = opts.WithSyncWrites(false).WithMemTableSize(deliveryMemTableSize).WithBlockCacheSize(8 << 20).WithDetectConflicts(false).
			WithValueThreshold(deliveryValueThreshold).WithValueLogFileSize(deliveryValueLogFileSize)
	}

	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open database in %s: %w", dir, err)
	}
	return db, nil
}

// Delivery returns the delivery manager.
func (a *App) Delivery() *delivery.Manager {
	return a.delivery
}

// Addr returns the address the server listens on.
func (a *App) Addr() string {
	return a.listener.Addr().String()
}

// Run serves until ctx ends or serving fails, then shuts down: the API stops
// taking requests and finishes those in flight, delivery stops, the
// projection stores its snapshot, the log's writer stops and the database
// closes. It returns the first error.
func (a *App) Run(ctx context.Context) error {
	a.logger.Info("hooklog started", "addr", a.Addr(), "data", a.cfg.DataDir, "head", a.log.Head(),
		"webhooks", len(a.webhooks.Snapshot().Webhooks), "api_tokens", len(a.cfg.API.Tokens))
	if len(a.cfg.API.Tokens) == 0 && !isLoopback(a.listener.Addr()) {
		a.logger.Warn("the API needs no token and listens beyond loopback: anyone who reaches this address can publish events and change webhooks; set --api-token or listen on 127.0.0.1 with --host", "addr", a.Addr())
	}

	projectionCtx, stopProjection := context.WithCancel(context.Background())
	deliveryCtx, stopDelivery := context.WithCancel(context.Background())
	defer stopProjection()
	defer stopDelivery()

	var wg sync.WaitGroup
	projectionErr := make(chan error, 1)
	wg.Go(func() { projectionErr <- a.webhooks.Run(projectionCtx) })
	deliveryErr := make(chan error, 1)
	wg.Go(func() { deliveryErr <- a.delivery.Run(deliveryCtx) })
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- a.server.Serve(a.listener) })

	var firstErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		firstErr = fmt.Errorf("serve HTTP: %w", err)
	case err := <-projectionErr:
		firstErr = fmt.Errorf("webhook projection: %w", err)
	case err := <-deliveryErr:
		firstErr = fmt.Errorf("delivery: %w", err)
	}
	a.logger.Info("hooklog stopping")

	deadline := time.Now().Add(a.cfg.ShutdownTimeout)
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}

	// 1. Stop taking requests; requests in flight get half the shutdown
	// time to finish, then their connections are closed.
	httpCtx, cancelHTTP := context.WithDeadline(context.Background(), time.Now().Add(a.cfg.ShutdownTimeout/2))
	if err := a.server.Shutdown(httpCtx); err != nil {
		a.logger.Warn("requests still in flight at shutdown were cut off", "error", err)
		a.server.Close()
	}
	cancelHTTP()

	// 2. Stop delivery: attempts in flight get the delivery grace, then
	// they are aborted. Each cursor was stored when its event was
	// acknowledged, so nothing is left to save.
	stopDelivery()

	// 3. Stop the projection; it stores a snapshot of what it covers.
	stopProjection()

	// Both stop soon after their contexts end, and the databases must
	// outlive them, so the wait has no timeout; a slow stop is logged.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		a.logger.Warn("shutdown is taking longer than --shutdown-timeout; waiting for delivery and the projection to stop")
		<-done
	}

	// 4. Stop the log's writer, then close the databases. Closing syncs
	// the delivery database.
	keep(a.log.Close())
	if err := a.stateDB.Close(); err != nil {
		keep(fmt.Errorf("close delivery database: %w", err))
	}
	if err := a.db.Close(); err != nil {
		keep(fmt.Errorf("close log database: %w", err))
	}

	if firstErr != nil && !errors.Is(firstErr, http.ErrServerClosed) {
		a.logger.Error("hooklog stopped with an error", "error", firstErr)
		return firstErr
	}
	a.logger.Info("hooklog stopped")
	return nil
}

// isLoopback reports whether addr is a loopback address only, as opposed
// to all interfaces or a reachable one.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// badgerLogger sends Badger's log lines to slog. Badger's info lines are
// routine (compactions, replay), so they go out at debug level.
type badgerLogger struct {
	logger *slog.Logger
}

func (l badgerLogger) Errorf(format string, args ...any) {
	l.logger.Error("badger: " + trimNewline(fmt.Sprintf(format, args...)))
}

func (l badgerLogger) Warningf(format string, args ...any) {
	l.logger.Warn("badger: " + trimNewline(fmt.Sprintf(format, args...)))
}

func (l badgerLogger) Infof(format string, args ...any) {
	l.debug(format, args...)
}

func (l badgerLogger) Debugf(format string, args ...any) {
	l.debug(format, args...)
}

// debug formats a line only when debug lines are logged. Badger logs one
// for every write, and formatting it took 2.8% of a delivering server's CPU
// in one profile.
func (l badgerLogger) debug(format string, args ...any) {
	if !l.logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.logger.Debug("badger: " + trimNewline(fmt.Sprintf(format, args...)))
}

func trimNewline(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
