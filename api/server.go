// Package api serves hooklog's HTTP API: publishing and reading events, the
// FFmate-compatible webhooks API, /health and /metrics. Handlers are thin:
// they decode, call the eventlog and projections packages, and return errors
// that one place turns into FFmate's error JSON.
package api

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hooklog/hooklog/delivery"
	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/projections"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes      = 4 << 20
	DefaultMaxJSONDepth      = 64
	DefaultIdempotencyWindow = 24 * time.Hour
)

// Config configures a Server.
type Config struct {
	Log      *eventlog.Log
	Webhooks *projections.Webhooks
	Delivery *delivery.Manager
	// Gatherer is served at /metrics; nil serves no /metrics route.
	Gatherer prometheus.Gatherer
	// Registerer receives the API's request metrics; nil exports none.
	Registerer prometheus.Registerer
	// MaxBodyBytes limits request bodies; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Tokens, when set, are the bearer tokens that every /api/v1 request
	// must carry. Without tokens the API is open, as FFmate's is.
	Tokens []string
	// ProtectObservability makes /health and /metrics need a token too.
	ProtectObservability bool
	// MaxJSONDepth caps the nesting of a publish body; zero means
	// DefaultMaxJSONDepth.
	MaxJSONDepth int
	// IdempotencyWindow is how long an Idempotency-Key is remembered; zero
	// means DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
	Logger            *slog.Logger
}

// Server is the API's http.Handler.
type Server struct {
	log      *eventlog.Log
	webhooks *projections.Webhooks
	delivery *delivery.Manager
	maxBody  int64
	logger   *slog.Logger
	router   *mux.Router
	metrics  *apiMetrics

	tokens               tokenSet
	protectObservability bool
	maxJSONDepth         int
	idempotencyWindow    time.Duration
}

// New returns the API server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		log:      cfg.Log,
		webhooks: cfg.Webhooks,
		delivery: cfg.Delivery,
		maxBody:  cfg.MaxBodyBytes,
		logger:   cfg.Logger,
		router:   mux.NewRouter(),
		metrics:  newAPIMetrics(cfg.Registerer),

		tokens:               newTokenSet(cfg.Tokens),
		protectObservability: cfg.ProtectObservability,
		maxJSONDepth:         cfg.MaxJSONDepth,
		idempotencyWindow:    cfg.IdempotencyWindow,
	}
	if s.maxJSONDepth <= 0 {
		s.maxJSONDepth = DefaultMaxJSONDepth
	}
	if s.idempotencyWindow <= 0 {
		s.idempotencyWindow = DefaultIdempotencyWindow
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}

	r := s.router
	r.Handle("/health", s.handle(s.health)).Methods(http.MethodGet)
	if cfg.Gatherer != nil {
		r.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	}

	// Routes are registered on the root router with their full paths,
	// because a gorilla/mux v1.8.1 subrouter answers 404 instead of 405 when
	// only the method is wrong.
	const v1 = "/api/v1"
	r.Handle(v1+"/events", s.handle(s.publish)).Methods(http.MethodPost)
	r.Handle(v1+"/events", s.handle(s.listEvents)).Methods(http.MethodGet)
	r.Handle(v1+"/events/{seq}", s.handle(s.getEvent)).Methods(http.MethodGet)

	r.Handle(v1+"/webhooks", s.handle(s.createWebhook)).Methods(http.MethodPost)
	r.Handle(v1+"/webhooks", s.handle(s.listWebhooks)).Methods(http.MethodGet)
	// Before /webhooks/{id}, which would match them too.
	r.Handle(v1+"/webhooks/executions", s.handle(s.listExecutions)).Methods(http.MethodGet)
	r.Handle(v1+"/webhooks/status", s.handle(s.allStatuses)).Methods(http.MethodGet)
	r.Handle(v1+"/webhooks/{id}", s.handle(s.getWebhook)).Methods(http.MethodGet)
	r.Handle(v1+"/webhooks/{id}", s.handle(s.updateWebhook)).Methods(http.MethodPut)
	r.Handle(v1+"/webhooks/{id}", s.handle(s.deleteWebhook)).Methods(http.MethodDelete)
	r.Handle(v1+"/webhooks/{id}/executions", s.handle(s.listWebhookExecutions)).Methods(http.MethodGet)
	r.Handle(v1+"/webhooks/{id}/parked", s.handle(s.listParked)).Methods(http.MethodGet)
	r.Handle(v1+"/webhooks/{id}/parked", s.handle(s.dropParked)).Methods(http.MethodDelete)
	r.Handle(v1+"/webhooks/{id}/parked/replay", s.handle(s.replayParked)).Methods(http.MethodPost)
	r.Handle(v1+"/webhooks/{id}/parked/{seq}", s.handle(s.dropParked)).Methods(http.MethodDelete)
	r.Handle(v1+"/webhooks/{id}/parked/{seq}/replay", s.handle(s.replayParked)).Methods(http.MethodPost)
	r.Handle(v1+"/webhooks/{id}/status", s.handle(s.webhookStatus)).Methods(http.MethodGet)
	r.Handle(v1+"/webhooks/{id}/replay", s.handle(s.replay)).Methods(http.MethodPost)
	r.Handle(v1+"/webhooks/{id}/redeliver", s.handle(s.redeliver)).Methods(http.MethodPost)
	r.Handle(v1+"/webhooks/{id}/secret", s.handle(s.getSecret)).Methods(http.MethodGet)
	r.Handle(v1+"/webhooks/{id}/secret/rotate", s.handle(s.rotateSecret)).Methods(http.MethodPost)
	r.Handle(v1+"/webhooks/{id}/pause", s.handle(s.pauseWebhook)).Methods(http.MethodPost)
	r.Handle(v1+"/webhooks/{id}/resume", s.handle(s.resumeWebhook)).Methods(http.MethodPost)

	r.NotFoundHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no route for %s %s", r.Method, r.URL.Path)
	})
	r.MethodNotAllowedHandler = s.handle(func(w http.ResponseWriter, req *http.Request) error {
		allowed := allowedMethods(r, req)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return methodNotAllowed("method %s is not allowed on %s; allowed methods are %s", req.Method, req.URL.Path, strings.Join(allowed, ", "))
	})
	return s
}

// allowedMethods returns the methods that router serves for req's path, as
// the Allow header of a 405 response lists them.
func allowedMethods(router *mux.Router, req *http.Request) []string {
	var allowed []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := req.Clone(req.Context())
		probe.Method = method
		var match mux.RouteMatch
		if router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, method)
		}
	}
	return allowed
}

// ServeHTTP limits the request body, checks the token, routes the request
// and counts it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	s.metrics.observe(s.router, w, r, http.HandlerFunc(s.serveAuthorized))
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "head": s.log.Head()})
	return nil
}
