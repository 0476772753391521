// Command loadtest is the Go half of scripts/loadtest.sh, the load and fault
// test of issue 7: the script starts PostgreSQL and the gateway and runs
// vegeta; this program creates the callers, writes vegeta's targets, watches
// the export jobs while the load runs, and checks the results.
//
//	loadtest setup -url URL -dsn DSN -dir DIR [sizing flags]
//	    creates the callers through the gateway's own API (no SQL): for each
//	    of the sandbox's synthetic organizations a person whom the operator
//	    invites and who creates Provider Access sandbox clients; and a few
//	    organizations registered through the portal, with a client each, for
//	    bulk exports. Fetches every client's token and attribution group,
//	    samples the members each organization may read, and writes
//	    DIR/state.json and DIR/targets.json (vegeta -format=json).
//	loadtest watch -dir DIR
//	    while the load runs, polls every export job the load's clients
//	    started, downloads each completed job's files and checks them; after
//	    DIR/attack.done appears it waits for the remaining jobs, then writes
//	    DIR/watch.json.
//	loadtest check -dir DIR -results FILE [-fault FILE]
//	    reads vegeta's results (vegeta encode -to json), the watcher's
//	    findings and the audit table, prints the report (DIR/report.txt too)
//	    and exits 1 when a requirement is not met.
//
// It uses the standard library and lib/pq only, and talks to the gateway
// over HTTP like any client; the database is read only for the audit rows
// and the export jobs.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "setup":
		err = runSetup(os.Args[2:])
	case "watch":
		err = runWatch(os.Args[2:])
	case "check":
		err = runCheck(os.Args[2:])
	default:
		usage()
	}
	var fail failed
	switch {
	case errors.As(err, &fail):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadtest setup|watch|check [flags] (see scripts/loadtest.sh)")
	os.Exit(2)
}

// failed is returned by check when a requirement is not met: the report
// says which; the exit status is 1.
type failed struct{}

func (failed) Error() string { return "requirements not met" }

// State is what setup leaves for watch and check (DIR/state.json).
type State struct {
	Run      string    `json:"run"`
	BaseURL  string    `json:"baseUrl"`
	DSN      string    `json:"dsn"`
	Created  time.Time `json:"created"`
	Clients  []Client  `json:"clients"`
	Rate     float64   `json:"rate"`
	Duration string    `json:"duration"`
	Mix      Mix       `json:"mix"`
	Targets  int       `json:"targets"`
	// AuditBaseline is the highest audit_events id when setup ended: the
	// load's audit rows are those above it.
	AuditBaseline int64 `json:"auditBaseline"`
	// JobsAfter is the database time when setup ended: the load's export
	// jobs are the load clients' jobs received after it.
	JobsAfter time.Time `json:"jobsAfter"`
}

// Client is one API client of the load.
type Client struct {
	ID      string      `json:"id"`
	Secret  string      `json:"secret"`
	Role    string      `json:"role"` // "dashboard" or "export"
	OrgID   string      `json:"orgId"`
	OrgName string      `json:"orgName"`
	GroupID string      `json:"groupId"`
	Token   string      `json:"token"`
	TokenAt time.Time   `json:"tokenAt"`
	Members []MemberRef `json:"members,omitempty"` // a sample of its organization's visible members
}

// MemberRef is a member a client may read.
type MemberRef struct {
	ID         string `json:"id"`
	Identifier string `json:"identifier"`
	GivenName  string `json:"givenName"`
	FamilyName string `json:"familyName"`
	BirthDate  string `json:"birthDate"`
}

// Mix is the requested composition of the load, in requests per second.
type Mix struct {
	GraphQL float64 `json:"graphql"`
	Token   float64 `json:"token"`
	Export  float64 `json:"export"`
}

func readState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var s State
	return &s, json.Unmarshal(b, &s)
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// api is the gateway as a client sees it.
type api struct {
	base string
	hc   *http.Client
}

func newAPI(base string) *api {
	return &api{base: strings.TrimRight(base, "/"), hc: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32},
	}}
}

// devToken returns a development-issuer access token for email (DEV_MODE).
func (a *api) devToken(email string) (string, error) {
	resp, err := a.hc.PostForm(a.base+"/dev/token", url.Values{"email": {email}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := decodeOK(resp, &out); err != nil {
		return "", fmt.Errorf("POST /dev/token: %w", err)
	}
	return out.AccessToken, nil
}

// clientToken asks /oauth/token for a client-credentials token
// (client_secret_basic).
func (a *api) clientToken(id, secret string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, a.base+"/oauth/token",
		strings.NewReader("grant_type=client_credentials&scope=system%2F%2A.read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := decodeOK(resp, &out); err != nil {
		return "", fmt.Errorf("POST /oauth/token for %s: %w", id, err)
	}
	return out.AccessToken, nil
}

// gqlError is one GraphQL error.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// gql runs a GraphQL operation and decodes its data into out; any error in
// the response is an error. Over the client's rate limit, it waits and
// tries again.
func (a *api) gql(token, query string, vars map[string]any, out any) error {
	for attempt := 0; ; attempt++ {
		err := a.gqlOnce(token, query, vars, out)
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "RATE_LIMITED") {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (a *api) gqlOnce(token, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, a.base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("graphql: HTTP 429 (RATE_LIMITED)")
	}
	if err := decodeOK(resp, &r); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		return fmt.Errorf("graphql: %s (%s)", e.Message, e.code())
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Data, out)
}

// decodeOK decodes a 2xx JSON response into out.
func decodeOK(resp *http.Response, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}
