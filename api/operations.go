package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// replayInput is the body of a replay: a seq or an RFC 3339 time.
type replayInput struct {
	Seq  *uint64 `json:"seq"`
	Time *string `json:"time"`
}

// replay moves a webhook's cursor back: POST /webhooks/{id}/replay with
// {"seq":N} or {"time":"…"}.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	var in replayInput
	if err := decodeBodyInto(r, &in); err != nil {
		return err
	}
	if (in.Seq == nil) == (in.Time == nil) {
		return badRequest(`expected exactly one of "seq" (a seq from 1) and "time" (an RFC 3339 time)`)
	}

	var fromSeq uint64
	if in.Seq != nil {
		st, err := s.delivery.Replay(r.Context(), id, *in.Seq)
		if err != nil {
			return err
		}
		fromSeq = st.Cursor + 1
	} else {
		t, err := time.Parse(time.RFC3339Nano, *in.Time)
		if err != nil {
			return badRequest("invalid time %q; expected RFC 3339, such as 2026-01-02T15:04:05Z", *in.Time)
		}
		if _, fromSeq, err = s.delivery.ReplayFrom(r.Context(), id, t); err != nil {
			return err
		}
	}

	writeJSON(w, http.StatusOK, map[string]any{"webhookId": id, "fromSeq": fromSeq, "cursor": fromSeq - 1})
	return nil
}

// redeliver sends one event again: POST /webhooks/{id}/redeliver with
// {"seq":N}. It answers with the attempt, delivered or not.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Seq *uint64 `json:"seq"`
	}
	if err := decodeBodyInto(r, &in); err != nil {
		return err
	}
	if in.Seq == nil || *in.Seq == 0 {
		return badRequest(`missing or zero "seq"; expected the seq of the event to send again`)
	}

	attempt, err := s.delivery.Redeliver(r.Context(), mux.Vars(r)["id"], *in.Seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, attempt)
	return nil
}

// replayParked replays parked events: POST /webhooks/{id}/parked/replay
// starts a replay of all of them in the background (202);
// POST /webhooks/{id}/parked/{seq}/replay sends one now (200 with the
// attempt).
func (s *Server) replayParked(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	seq, err := parkedSeq(r)
	if err != nil {
		return err
	}

	attempt, count, err := s.delivery.ReplayParked(r.Context(), id, seq)
	if err != nil {
		return err
	}
	if seq == 0 {
		writeJSON(w, http.StatusAccepted, map[string]any{"webhookId": id, "replaying": count})
		return nil
	}
	writeJSON(w, http.StatusOK, attempt)
	return nil
}

// dropParked deletes parked events: DELETE /webhooks/{id}/parked deletes
// all and answers their count; DELETE /webhooks/{id}/parked/{seq} one (204).
func (s *Server) dropParked(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	seq, err := parkedSeq(r)
	if err != nil {
		return err
	}

	count, err := s.delivery.DropParked(r.Context(), id, seq)
	if err != nil {
		return err
	}
	if seq != 0 {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhookId": id, "dropped": count})
	return nil
}

// parkedSeq reads the optional {seq} of a parked route; 0 means all.
func parkedSeq(r *http.Request) (uint64, error) {
	raw, ok := mux.Vars(r)["seq"]
	if !ok {
		return 0, nil
	}
	seq, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || seq == 0 {
		return 0, badRequest("invalid seq %q; a seq is a whole number from 1", raw)
	}
	return seq, nil
}

func (s *Server) pauseWebhook(w http.ResponseWriter, r *http.Request) error {
	hook, err := s.webhooks.Pause(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook)
	return nil
}

func (s *Server) resumeWebhook(w http.ResponseWriter, r *http.Request) error {
	hook, err := s.webhooks.Resume(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook)
	return nil
}

func (s *Server) webhookStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.delivery.Status(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) allStatuses(w http.ResponseWriter, r *http.Request) error {
	list, err := s.delivery.Statuses()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// decodeBodyInto decodes a JSON request body; an empty body decodes as {}.
func decodeBodyInto(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	return decodeStrict(body, v)
}
