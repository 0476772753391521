package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPlaygroundPointsAtGraphQL(t *testing.T) {
	s := &Server{}
	rec := httptest.NewRecorder()
	s.playgroundHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") || !strings.Contains(body, `"/graphql"`) {
		t.Errorf("playground: %d %s\n%.300s", rec.Code, rec.Header().Get("Content-Type"), body)
	}
}
