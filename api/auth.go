package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// tokenSet holds the SHA-256 of each API token. Comparing hashes of equal
// length keeps the comparison's time independent of the tokens' lengths.
type tokenSet [][sha256.Size]byte

func newTokenSet(tokens []string) tokenSet {
	set := make(tokenSet, 0, len(tokens))
	for _, t := range tokens {
		set = append(set, sha256.Sum256([]byte(t)))
	}
	return set
}

// allows reports whether token is one of the set. It compares against every
// token, in constant time each, whatever matches.
func (s tokenSet) allows(token string) bool {
	given := sha256.Sum256([]byte(token))
	match := 0
	for i := range s {
		match |= subtle.ConstantTimeCompare(given[:], s[i][:])
	}
	return match == 1
}

// needsToken reports whether a request to path must carry a token.
func (s *Server) needsToken(path string) bool {
	if len(s.tokens) == 0 {
		return false
	}
	if path == "/health" || path == "/metrics" {
		return s.protectObservability
	}
	return true
}

// serveAuthorized checks the bearer token where one is needed and the
// declared body size, then routes.
func (s *Server) serveAuthorized(w http.ResponseWriter, r *http.Request) {
	if s.needsToken(r.URL.Path) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || !s.tokens.allows(strings.TrimSpace(token)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hooklog"`)
			writeError(w, unauthorized("missing or invalid API token; send it as Authorization: Bearer TOKEN"))
			return
		}
	}
	if r.ContentLength > s.maxBody {
		// Rejected before the body is read, so the client learns it at
		// once and need not send the body.
		writeError(w, toError(&http.MaxBytesError{Limit: s.maxBody}))
		return
	}
	s.router.ServeHTTP(w, r)
}
