package api

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/hooklog/hooklog/projections"
)

// Paging of GET /api/v1/webhooks, as FFmate documents it.
const (
	defaultPerPage = 100
	maxPerPage     = 100
)

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	in, err := decodeWebhookInput(r)
	if err != nil {
		return err
	}

	hook, err := s.webhooks.Create(r.Context(), in)
	if err != nil {
		return err
	}
	creds, err := s.webhooks.Credentials(hook.UUID)
	if err != nil {
		return err
	}

	// The secret is in this answer and in GET /webhooks/{id}/secret only.
	writeJSON(w, http.StatusOK, struct {
		projections.Webhook
		Secret string `json:"secret"`
	}{hook, creds.Current()})
	return nil
}

// secretAnswer is the body of the secret endpoints.
type secretAnswer struct {
	WebhookID string `json:"webhookId"`
	Secret    string `json:"secret"`
	// Previous is the rotated-out secret that still signs until
	// PreviousExpiresAt.
	Previous          string     `json:"previous,omitempty"`
	PreviousExpiresAt *time.Time `json:"previousExpiresAt,omitempty"`
}

func newSecretAnswer(id string, c projections.Credentials) secretAnswer {
	out := secretAnswer{WebhookID: id, Secret: c.Current()}
	if len(c.Secrets) > 1 && time.Now().Before(c.Secrets[1].ExpiresAt) {
		expires := c.Secrets[1].ExpiresAt
		out.Previous, out.PreviousExpiresAt = c.Secrets[1].Value, &expires
	}
	return out
}

// getSecret returns a webhook's signing secret: GET /webhooks/{id}/secret.
func (s *Server) getSecret(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	creds, err := s.webhooks.Credentials(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newSecretAnswer(id, creds))
	return nil
}

// rotateSecret gives a webhook a new secret; the previous one keeps signing
// beside it for the overlap: POST /webhooks/{id}/secret/rotate.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	creds, err := s.webhooks.RotateSecret(id)
	if err != nil {
		return err
	}
	s.logger.Info("webhook secret rotated", "webhook_id", id)
	writeJSON(w, http.StatusOK, newSecretAnswer(id, creds))
	return nil
}

// listWebhooks returns one page of webhooks, newest first, with the total
// count in the X-Total header.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	page, perPage, err := pageParams(r)
	if err != nil {
		return err
	}

	hooks, total := s.webhooks.List(page, perPage)
	w.Header().Set("X-Total", strconv.Itoa(total))
	writeJSON(w, http.StatusOK, hooks)
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	hook, err := s.webhooks.Get(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook)
	return nil
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	in, err := decodeWebhookInput(r)
	if err != nil {
		return err
	}

	hook, err := s.webhooks.Update(r.Context(), mux.Vars(r)["id"], in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook)
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.webhooks.Delete(r.Context(), mux.Vars(r)["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listExecutions returns one page of the attempt log of all webhooks,
// newest first, with the total count in X-Total, as FFmate does.
func (s *Server) listExecutions(w http.ResponseWriter, r *http.Request) error {
	return s.writeExecutions(w, r, "")
}

// listWebhookExecutions is listExecutions for one webhook.
func (s *Server) listWebhookExecutions(w http.ResponseWriter, r *http.Request) error {
	hook, err := s.webhooks.Get(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return s.writeExecutions(w, r, hook.UUID)
}

func (s *Server) writeExecutions(w http.ResponseWriter, r *http.Request, webhookID string) error {
	page, perPage, err := pageParams(r)
	if err != nil {
		return err
	}

	attempts, total, err := s.delivery.Attempts(webhookID, page, perPage)
	if err != nil {
		return err
	}
	w.Header().Set("X-Total", strconv.Itoa(total))
	writeJSON(w, http.StatusOK, attempts)
	return nil
}

// listParked returns one page of a webhook's parked events in seq order,
// with the total count in X-Total.
func (s *Server) listParked(w http.ResponseWriter, r *http.Request) error {
	hook, err := s.webhooks.Get(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	page, perPage, err := pageParams(r)
	if err != nil {
		return err
	}

	parked, total, err := s.delivery.Parked(hook.UUID, page, perPage)
	if err != nil {
		return err
	}
	w.Header().Set("X-Total", strconv.Itoa(total))
	writeJSON(w, http.StatusOK, parked)
	return nil
}

// pageParams reads FFmate's paging parameters: page from 0 (default 0) and
// perPage from 1 to 100 (default 100).
func pageParams(r *http.Request) (page, perPage int, err error) {
	q := r.URL.Query()
	page, err = intParam(q.Get("page"), "page", 0, 0, math.MaxInt32)
	if err != nil {
		return 0, 0, err
	}
	perPage, err = intParam(q.Get("perPage"), "perPage", defaultPerPage, 1, maxPerPage)
	if err != nil {
		return 0, 0, err
	}
	return page, perPage, nil
}

func decodeWebhookInput(r *http.Request) (projections.WebhookInput, error) {
	body, err := readBody(r)
	if err != nil {
		return projections.WebhookInput{}, err
	}

	var in projections.WebhookInput
	if err := decodeStrict(body, &in); err != nil {
		return projections.WebhookInput{}, err
	}
	return in, nil
}
