package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"example.com/gateway/auth"
	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
	"example.com/gateway/store"
)

// Handler is the FHIR REST surface under /fhir/: discovery, attribution
// groups, bulk kick-off, status, cancel and files.
type Handler struct {
	Service *Service
	Logger  *slog.Logger
	// SMARTConfiguration returns the body of
	// /fhir/.well-known/smart-configuration (the token issuer's); nil serves
	// a static one built from PUBLIC_URL.
	SMARTConfiguration func() map[string]any
	// RequestID returns the request id of a request's context (for audit rows).
	RequestID func(context.Context) string
}

const (
	contentFHIRJSON = "application/fhir+json"
	contentNDJSON   = "application/fhir+ndjson"
)

// Register adds the /fhir/ routes to mux. Everything but the
// CapabilityStatement and SMART discovery needs a bearer token; unknown
// paths under /fhir/ answer 404 with an OperationOutcome.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /fhir/metadata", h.metadata)
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", h.smartConfiguration)
	mux.Handle("GET /fhir/Group", h.authed(h.searchGroups))
	mux.Handle("GET /fhir/Group/{id}", h.authed(h.readGroup))
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		mux.Handle(method+" /fhir/Group/{id}/$export", h.authed(h.kickoff(gateway.OpGroupExport)))
		mux.Handle(method+" /fhir/Group/{id}/$davinci-data-export", h.authed(h.kickoff(gateway.OpDavinciDataExport)))
		mux.Handle(method+" /fhir/Patient/$export", h.authed(h.kickoff(gateway.OpPatientExport)))
	}
	mux.Handle("GET /fhir/bulkstatus/{job}", h.authed(h.status))
	mux.Handle("DELETE /fhir/bulkstatus/{job}", h.authed(h.cancel))
	mux.Handle("GET /fhir/bulkfiles/{job}/{file}", h.authed(h.file))
	mux.HandleFunc("/fhir/", func(w http.ResponseWriter, r *http.Request) {
		writeOutcome(w, http.StatusNotFound, "error", "not-found", "no such FHIR endpoint")
	})
}

// authed requires a principal (a valid bearer token): without one, 401
// with an OperationOutcome and WWW-Authenticate (RFC 6750).
func (h *Handler) authed(next func(http.ResponseWriter, *http.Request, auth.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok || p.IsZero() {
			challenge := `Bearer realm="fhir"`
			if r.Header.Get("Authorization") != "" {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeOutcome(w, http.StatusUnauthorized, "error", "login", "a valid bearer access token is required")
			return
		}
		next(w, r, p)
	})
}

// writeOutcome answers with an OperationOutcome of one issue.
func writeOutcome(w http.ResponseWriter, status int, severity, code, diagnostics string) {
	writeJSON(w, status, contentFHIRJSON, fhir.NewOperationOutcome(severity, code, diagnostics))
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError answers with the OperationOutcome of err: a *gateway.Error's
// code and client-safe message; anything else is logged and answers 500
// "internal error".
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if ctx := r.Context(); ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The client went away: not a fault, and nobody reads the answer.
		h.Logger.InfoContext(ctx, "fhir request cancelled", "path", r.URL.Path)
		writeOutcome(w, http.StatusServiceUnavailable, "error", "transient", "request cancelled")
		return
	}
	if store.IsUnavailable(err) {
		// An outage or a statement past DB_STATEMENT_TIMEOUT: retry later.
		h.Logger.ErrorContext(r.Context(), "fhir request failed", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		writeOutcome(w, http.StatusServiceUnavailable, "error", "transient", "the service is temporarily unavailable; retry later")
		return
	}
	var e *gateway.Error
	if !errors.As(err, &e) {
		h.Logger.ErrorContext(r.Context(), "fhir request failed", "path", r.URL.Path, "err", err)
		writeOutcome(w, http.StatusInternalServerError, "error", "exception", "internal error")
		return
	}
	status, code := http.StatusInternalServerError, "exception"
	switch e.Code {
	case gateway.CodeInvalid:
		status, code = http.StatusBadRequest, "invalid"
	case gateway.CodeUnauthenticated:
		status, code = http.StatusUnauthorized, "login"
	case gateway.CodeForbidden:
		status, code = http.StatusForbidden, "forbidden"
	case gateway.CodeNotFound:
		status, code = http.StatusNotFound, "not-found"
	case gateway.CodeConflict:
		status, code = http.StatusConflict, "conflict"
	case gateway.CodeRateLimited:
		status, code = http.StatusTooManyRequests, "throttled"
		w.Header().Set("Retry-After", "30")
	case gateway.CodeInternal:
		h.Logger.ErrorContext(r.Context(), "fhir request failed", "path", r.URL.Path, "err", err)
	}
	msg := e.Message
	if e.Code == gateway.CodeInvalid && e.Path != "" && msg == "" {
		msg = "invalid " + e.Path
	}
	if e.Code == gateway.CodeInternal {
		msg = "internal error"
	}
	writeOutcome(w, status, "error", code, msg)
}

// kickoff is a bulk data kick-off request (FHIR Bulk Data "Bulk Data
// Kick-off Request"; Da Vinci ATR $davinci-data-export).
func (h *Handler) kickoff(op string) func(http.ResponseWriter, *http.Request, auth.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) {
		org, env, ok := p.ExportOwner()
		if !ok {
			writeOutcome(w, http.StatusForbidden, "error", "forbidden", "only Provider Access API clients may export")
			return
		}
		groupID := r.PathValue("id")
		if op != gateway.OpPatientExport && groupID != gateway.AttributionGroupID(org, env) {
			// Someone else's group answers exactly like one that does not exist.
			h.writeError(w, r, gateway.ErrNotFound)
			return
		}
		// The manifest's request: the kick-off URL as the client sent it, on
		// PUBLIC_URL (never the Host header); for POST without parameters.
		requestURL := h.Service.PublicURL + r.URL.EscapedPath()
		if r.Method == http.MethodGet && r.URL.RawQuery != "" {
			requestURL += "?" + r.URL.RawQuery
		}
		req, err := ParseKickoff(r, op, groupID, requestURL)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		job, err := h.Service.Enqueue(r.Context(), p, req)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Location", h.Service.StatusURL(job.ID))
		writeOutcome(w, http.StatusAccepted, "information", "informational",
			"export accepted: poll the Content-Location URL for its status")
	}
}

// status is a bulk data status request (FHIR Bulk Data "Bulk Data Status
// Request"): 202 with X-Progress and Retry-After while the job runs, 200
// with the manifest (application/json) when it is complete, 500 with an
// OperationOutcome when it failed, 429 when polled too often, 404 for a
// job that is not the caller's organization's, or was deleted or expired.
func (h *Handler) status(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	org, env, ok := p.ExportOwner()
	id := r.PathValue("job")
	if !ok || !validJobID(id) {
		h.writeError(w, r, gateway.ErrNotFound)
		return
	}
	s := h.Service
	job, tooSoon, err := s.DB.PollExportJob(r.Context(), id, org, env, s.minPoll())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if tooSoon {
		w.Header().Set("Retry-After", strconv.Itoa(seconds(s.minPoll())))
		writeOutcome(w, http.StatusTooManyRequests, "error", "throttled",
			"status requested too often: wait for Retry-After before polling again")
		return
	}
	switch job.Status {
	case gateway.ExportQueued, gateway.ExportRunning:
		w.Header().Set("X-Progress", progress(job))
		w.Header().Set("Retry-After", strconv.Itoa(h.retryAfter(job)))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusAccepted)
	case gateway.ExportFailed:
		msg := job.Error
		if msg == "" {
			msg = "the export failed"
		}
		writeOutcome(w, http.StatusInternalServerError, "error", "exception", msg)
	case gateway.ExportCompleted:
		m, err := s.Manifest(r.Context(), job)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if job.ExpiresAt != nil {
			w.Header().Set("Expires", job.ExpiresAt.UTC().Format(http.TimeFormat))
		}
		writeJSON(w, http.StatusOK, "application/json", m)
	default:
		h.writeError(w, r, gateway.ErrNotFound)
	}
}

// progress is the X-Progress header: short (FHIR Bulk Data: under 100
// characters) and free of anything but counts.
func progress(j gateway.ExportJob) string {
	switch {
	case j.Status == gateway.ExportQueued:
		return "queued"
	case j.MembersTotal == nil:
		return "starting"
	}
	return fmt.Sprintf("%d%% complete (%d of %d members)", int(math.Floor(j.Progress()*100)), j.MembersDone, *j.MembersTotal)
}

// retryAfter suggests when to poll again: a quarter of the estimated time
// left, between the minimum poll interval and 30 seconds.
func (h *Handler) retryAfter(j gateway.ExportJob) int {
	lo := seconds(h.Service.minPoll())
	est := lo
	if j.StartedAt != nil && j.Progress() > 0 {
		elapsed := time.Since(*j.StartedAt)
		left := time.Duration(float64(elapsed) * (1 - j.Progress()) / j.Progress())
		est = seconds(left / 4)
	}
	return min(max(est, lo), 30)
}

func seconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }

// cancel is a bulk data delete request: 202, then the job and its files are
// gone (404) for everyone.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := h.Service.Cancel(r.Context(), p, r.PathValue("job")); err != nil {
		h.writeError(w, r, err)
		return
	}
	writeOutcome(w, http.StatusAccepted, "information", "informational", "export deleted")
}

// file serves one NDJSON file of a completed job to a principal of the
// owning organization and environment (requiresAccessToken: true). The
// lookup takes a download lease, so the file outlives its expiry until
// the download can no longer be running. Range requests are honoured.
func (h *Handler) file(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	org, env, ok := p.ExportOwner()
	id, name := r.PathValue("job"), r.PathValue("file")
	if !ok || !validJobID(id) || !fileNameRE.MatchString(name) {
		h.writeError(w, r, gateway.ErrNotFound)
		return
	}
	s := h.Service
	if _, err := s.DB.ExportFileForDownload(r.Context(), id, name, org, env, s.downloadLease()); err != nil {
		h.writeError(w, r, err)
		return
	}
	f, err := os.Open(filepath.Join(s.Dir, id, name))
	if err != nil {
		h.writeError(w, r, fmt.Errorf("open export file of job %s: %w", id, err))
		return
	}
	defer f.Close() // an open file survives its removal: the download completes
	st, err := f.Stat()
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", contentNDJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", st.ModTime(), f)
}
