package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/hooklog/hooklog/delivery"
	"github.com/hooklog/hooklog/eventlog"
	"github.com/hooklog/hooklog/internal/diskspace"
	"github.com/hooklog/hooklog/projections"
)

// Error is an API error in FFmate's shape: {"code","err","message"}. Codes
// that FFmate also uses keep FFmate's value; hooklog's own start with 100.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Err     string `json:"err"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return e.Message
}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "001.000.0003", Err: "bad.request", Message: fmt.Sprintf(format, args...)}
}

func invalidBody(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "001.000.0005", Err: "invalid.request.body", Message: fmt.Sprintf(format, args...)}
}

func invalidQuery(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "001.000.0007", Err: "invalid.query", Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: "001.000.0008", Err: "not.found", Message: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "100.000.0413", Err: "payload.too.large", Message: fmt.Sprintf(format, args...)}
}

func unauthorized(format string, args ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "100.000.0401", Err: "unauthorized", Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: "100.000.0409", Err: "conflict", Message: fmt.Sprintf(format, args...)}
}

func methodNotAllowed(format string, args ...any) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Code: "100.000.0405", Err: "method.not.allowed", Message: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "100.000.0503", Err: "service.unavailable", Message: fmt.Sprintf(format, args...)}
}

func internalError() *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "001.000.0000", Err: "internal.server.error", Message: "internal server error; the server log has the details"}
}

// statusClientClosedRequest is the status logged for a request whose client
// went away before the response, as nginx logs it.
const statusClientClosedRequest = 499

// toError maps an error of the packages below to an API error.
func toError(err error) *Error {
	var apiErr *Error
	var validation *projections.ValidationError
	var maxBytes *http.MaxBytesError
	var size *eventlog.SizeError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &validation):
		return badRequest("%s", validation.Error())
	case errors.As(err, &maxBytes):
		return tooLarge("request body exceeds the limit of %d bytes", maxBytes.Limit)
	case errors.Is(err, projections.ErrWebhookNotFound), errors.Is(err, delivery.ErrParkedNotFound):
		return notFound("%s", err.Error())
	case errors.Is(err, eventlog.ErrNotFound):
		return notFound("%s", err.Error())
	case errors.As(err, &size):
		return tooLarge("%s", size.Detail)
	case errors.Is(err, eventlog.ErrBatchTooLarge), errors.Is(err, eventlog.ErrEventTooLarge):
		return tooLarge("%s", err.Error())
	case errors.Is(err, diskspace.ErrFull):
		return &Error{Status: http.StatusInsufficientStorage, Code: "100.000.0507", Err: "insufficient.storage",
			Message: "the event was not stored: " + err.Error() + "; free disk space and publish again"}
	case errors.Is(err, eventlog.ErrClosed):
		return unavailable("the server is shutting down")
	case errors.Is(err, context.Canceled):
		// The client went away, so no one reads this response.
		return &Error{Status: statusClientClosedRequest, Code: "100.000.0499", Err: "client.closed.request", Message: "the client closed the request"}
	default:
		return internalError()
	}
}

// handlerFunc is an HTTP handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle writes the error of h, if any, as FFmate's error JSON and logs it.
// This is the one place where errors become responses.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}

		apiErr := toError(err)
		if apiErr.Status >= 500 {
			s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", apiErr.Status, "error", err)
		} else {
			s.logger.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "status", apiErr.Status, "error", err)
		}
		writeError(w, apiErr)
	})
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"code":"001.000.0000","err":"internal.server.error","message":"encoding the response failed"}`)
	}
	writeRawJSON(w, status, body)
}

func writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
