package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// JobWatch is what the watcher saw of one export job.
type JobWatch struct {
	ID        string    `json:"id"`
	ClientID  string    `json:"clientId"`
	OrgID     string    `json:"orgId"`
	Received  time.Time `json:"received"`
	FirstSeen time.Time `json:"firstSeen"`
	// Final: COMPLETED (manifest read, files checked), FAILED (the status
	// answered the job's failure), NOT_FOUND (the status answered 404
	// three times in a row), or "" (still running when the watch ended).
	Final       string      `json:"final"`
	FinalAt     time.Time   `json:"finalAt"`
	FailMessage string      `json:"failMessage,omitempty"`
	DBStatus    string      `json:"dbStatus"`
	DBAttempts  int         `json:"dbAttempts"`
	StatusCodes map[int]int `json:"statusCodes"` // answers of the status URL
	ProbeCodes  map[int]int `json:"probeCodes"`  // answers of a file URL while the job ran
	Files       []FileCheck `json:"files"`
	Problems    []string    `json:"problems,omitempty"`

	notFound  int
	nextPoll  time.Time
	manifest  *manifest
	probed    bool
	fileCodes map[string]map[int]int
	ids       map[string]bool // type/id over the job's files
}

// FileCheck is one manifest file, downloaded and read line by line.
type FileCheck struct {
	Name    string      `json:"name"`
	Type    string      `json:"type"`
	Kind    string      `json:"kind"` // output, error
	Count   *int        `json:"count,omitempty"`
	Lines   int         `json:"lines"`
	Bytes   int64       `json:"bytes"`
	Codes   map[int]int `json:"codes"` // answers of the download, retries included
	OK      bool        `json:"ok"`
	Problem string      `json:"problem,omitempty"`
}

type manifest struct {
	TransactionTime     string          `json:"transactionTime"`
	Request             string          `json:"request"`
	RequiresAccessToken bool            `json:"requiresAccessToken"`
	Output              []manifestEntry `json:"output"`
	Error               []manifestEntry `json:"error"`
}

type manifestEntry struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count *int   `json:"count"`
}

// Watch is DIR/watch.json.
type Watch struct {
	Started  time.Time   `json:"started"`
	Stopped  time.Time   `json:"stopped"`
	TimedOut bool        `json:"timedOut"`
	Jobs     []*JobWatch `json:"jobs"`
}

func runWatch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	dir := fs.String("dir", ".", "where state.json is; attack.done ends the watch")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for unfinished jobs after the load")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := readState(*dir)
	if err != nil {
		return err
	}
	db, err := sql.Open("postgres", st.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	w := &watcher{st: st, db: db, a: newAPI(st.BaseURL), jobs: map[string]*JobWatch{}, tokens: map[string]*Client{}}
	for i := range st.Clients {
		c := &st.Clients[i]
		if _, ok := w.tokens[c.OrgID]; !ok || c.Role == "export" {
			cc := *c
			w.tokens[c.OrgID] = &cc
		}
		w.clientIDs = append(w.clientIDs, c.ID)
	}
	out := Watch{Started: time.Now().UTC()}
	done := filepath.Join(*dir, "attack.done")
	var stopAt time.Time
	for {
		w.discover()
		w.pollAll()
		if stopAt.IsZero() {
			if _, err := os.Stat(done); err == nil {
				stopAt = time.Now()
				w.discover() // the last kick-offs
				fmt.Fprintf(os.Stderr, "watch: load over; %d export jobs, %d unfinished\n", len(w.jobs), w.unfinished())
			}
		} else if w.unfinished() == 0 && w.discoverOK {
			break
		} else if time.Since(stopAt) > *wait {
			out.TimedOut = true
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	out.Stopped = time.Now().UTC()
	w.final()
	for _, j := range w.jobs {
		out.Jobs = append(out.Jobs, j)
	}
	sort.Slice(out.Jobs, func(i, k int) bool { return out.Jobs[i].Received.Before(out.Jobs[k].Received) })
	return writeJSONFile(filepath.Join(*dir, "watch.json"), out)
}

type watcher struct {
	st         *State
	db         *sql.DB
	a          *api
	jobs       map[string]*JobWatch
	tokens     map[string]*Client // organization → a client of it
	clientIDs  []string
	discoverOK bool // the last discovery reached the database
}

func (w *watcher) unfinished() int {
	n := 0
	for _, j := range w.jobs {
		if j.Final == "" {
			n++
		}
	}
	return n
}

// discover finds the load's export jobs in the database (they may be
// queued before vegeta has even seen the kick-off's answer).
func (w *watcher) discover() {
	rows, err := w.db.Query(`SELECT id, client_id, organization_id::text, received_at FROM export_jobs
WHERE client_id = ANY($1) AND received_at > $2`, pq.Array(w.clientIDs), w.st.JobsAfter)
	if err != nil {
		w.discoverOK = false
		return
	}
	defer rows.Close()
	for rows.Next() {
		var j JobWatch
		if err := rows.Scan(&j.ID, &j.ClientID, &j.OrgID, &j.Received); err != nil {
			w.discoverOK = false
			return
		}
		if _, ok := w.jobs[j.ID]; !ok {
			j.FirstSeen = time.Now().UTC()
			j.StatusCodes, j.ProbeCodes, j.fileCodes = map[int]int{}, map[int]int{}, map[string]map[int]int{}
			w.jobs[j.ID] = &j
		}
	}
	w.discoverOK = rows.Err() == nil
}

// token returns a live token of a client of org.
func (w *watcher) token(org string) string {
	c := w.tokens[org]
	if time.Since(c.TokenAt) > 4*time.Minute {
		if t, err := w.a.clientToken(c.ID, c.Secret); err == nil {
			c.Token, c.TokenAt = t, time.Now()
		}
	}
	return c.Token
}

func (w *watcher) pollAll() {
	for _, j := range w.jobs {
		if j.Final == "" && time.Now().After(j.nextPoll) {
			w.poll(j)
		}
	}
}

func (w *watcher) get(org, u string) (int, http.Header, []byte) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+w.token(org))
	resp, err := w.a.hc.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized {
		// The token is valid for 5 minutes, but during a database outage
		// the gateway may refuse it: get a new one before the next try.
		if c := w.tokens[org]; time.Since(c.TokenAt) > 5*time.Second {
			c.TokenAt = time.Time{}
		}
	}
	return resp.StatusCode, resp.Header, b
}

// poll asks the job's status URL once and acts on the answer; with a
// manifest in hand it downloads what is not yet downloaded.
func (w *watcher) poll(j *JobWatch) {
	j.nextPoll = time.Now().Add(1200 * time.Millisecond)
	if j.manifest != nil {
		w.download(j)
		return
	}
	code, h, body := w.get(j.OrgID, w.st.BaseURL+"/fhir/bulkstatus/"+j.ID)
	j.StatusCodes[code]++
	switch code {
	case http.StatusAccepted:
		j.notFound = 0
		if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 1 {
			j.nextPoll = time.Now().Add(time.Duration(min(s, 3)) * time.Second)
		}
		if !j.probed {
			// A running job's file must not be served: files appear only
			// complete, with the manifest.
			j.probed = true
			for _, name := range []string{"Patient-1.ndjson", "ExplanationOfBenefit-1.ndjson"} {
				pc, _, pb := w.get(j.OrgID, w.st.BaseURL+"/fhir/bulkfiles/"+j.ID+"/"+name)
				answered := time.Now()
				if pc != http.StatusOK {
					j.ProbeCodes[pc]++
					continue
				}
				// The job may have completed since the status answered:
				// then the file is whole (every line parses) and the
				// database has the job completed before the answer.
				var completed *time.Time
				_ = w.db.QueryRow(`SELECT completed_at FROM export_jobs WHERE id = $1 AND status = 'COMPLETED'`, j.ID).Scan(&completed)
				typ := strings.SplitN(name, "-", 2)[0]
				_, problem := checkNDJSON(pb, FileCheck{Type: typ, Kind: "output"}, map[string]bool{})
				switch {
				case problem != "":
					j.Problems = append(j.Problems, fmt.Sprintf("%s served while the job ran, and partial: %s", name, problem))
					j.ProbeCodes[pc]++
				case completed == nil || completed.After(answered):
					j.Problems = append(j.Problems, fmt.Sprintf("%s served (%d bytes) before the job completed", name, len(pb)))
					j.ProbeCodes[pc]++
				default:
					j.ProbeCodes[-pc]++ // 200 after the job completed: a race with the status poll, not a fault
				}
			}
		}
	case http.StatusOK:
		j.notFound = 0
		var m manifest
		if err := json.Unmarshal(body, &m); err != nil {
			j.Problems = append(j.Problems, "manifest does not parse: "+err.Error())
			j.Final, j.FinalAt = "COMPLETED", time.Now().UTC()
			return
		}
		j.manifest = &m
		w.download(j)
	case http.StatusInternalServerError:
		// A failed job answers 500 with its reason; so may a status
		// request during a database outage: the database tells them apart.
		var status string
		if err := w.db.QueryRow(`SELECT status FROM export_jobs WHERE id = $1`, j.ID).Scan(&status); err == nil && status == "FAILED" {
			j.Final, j.FinalAt, j.FailMessage = "FAILED", time.Now().UTC(), diagnostics(body)
		}
	case http.StatusNotFound:
		if j.notFound++; j.notFound >= 3 {
			j.Final, j.FinalAt = "NOT_FOUND", time.Now().UTC()
			j.Problems = append(j.Problems, "the status URL answers 404: "+diagnostics(body))
		}
	case http.StatusTooManyRequests:
		if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil {
			j.nextPoll = time.Now().Add(time.Duration(s) * time.Second)
		}
	}
}

func diagnostics(body []byte) string {
	var oo struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if json.Unmarshal(body, &oo) == nil && len(oo.Issue) > 0 {
		return oo.Issue[0].Diagnostics
	}
	return strings.TrimSpace(string(body[:min(len(body), 200)]))
}

// download fetches and checks every file of the manifest not yet checked;
// a download that fails for want of the database is tried again at the
// next poll. The job is COMPLETED when every file has been read.
func (w *watcher) download(j *JobWatch) {
	m := j.manifest
	entries := make([]FileCheck, 0, len(m.Output)+len(m.Error))
	for _, e := range m.Output {
		entries = append(entries, FileCheck{Name: e.URL, Type: e.Type, Kind: "output", Count: e.Count})
	}
	for _, e := range m.Error {
		entries = append(entries, FileCheck{Name: e.URL, Type: e.Type, Kind: "error", Count: e.Count})
	}
	done := map[string]bool{}
	for _, f := range j.Files {
		done[f.Name] = true
	}
	if j.ids == nil {
		j.ids = map[string]bool{}
	}
	for _, f := range entries {
		if done[f.Name] {
			continue
		}
		if !strings.HasPrefix(f.Name, w.st.BaseURL+"/fhir/bulkfiles/"+j.ID+"/") {
			f.Problem = "file URL outside the job: " + f.Name
			j.Files = append(j.Files, f)
			continue
		}
		codes := j.fileCodes[f.Name]
		if codes == nil {
			codes = map[int]int{}
			j.fileCodes[f.Name] = codes
		}
		code, _, body := w.get(j.OrgID, f.Name)
		codes[code]++
		switch code {
		case 0, http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable:
			if codes[code] < 30 {
				return // try again at the next poll
			}
		}
		f.Codes = codes
		f.Bytes = int64(len(body))
		if code != http.StatusOK {
			f.Problem = fmt.Sprintf("download answered %d: %s", code, diagnostics(body))
		} else {
			f.Lines, f.Problem = checkNDJSON(body, f, j.ids)
		}
		f.OK = f.Problem == ""
		j.Files = append(j.Files, f)
	}
	if len(j.Files) == len(entries) {
		j.Final, j.FinalAt = "COMPLETED", time.Now().UTC()
		for _, f := range j.Files {
			if !f.OK {
				j.Problems = append(j.Problems, f.Name[strings.LastIndex(f.Name, "/")+1:]+": "+f.Problem)
			}
		}
	}
}

// checkNDJSON reads a file line by line: every line one JSON resource of
// the manifest's type with an id not seen before in the job, the file
// newline-terminated, as many lines as the manifest's count.
func checkNDJSON(body []byte, f FileCheck, ids map[string]bool) (int, string) {
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return 0, "the file does not end with a newline (truncated?)"
	}
	r := bufio.NewReader(bytes.NewReader(body))
	lines := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			lines++
			var res struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
			}
			if err := json.Unmarshal(line, &res); err != nil {
				return lines, fmt.Sprintf("line %d does not parse: %v", lines, err)
			}
			if res.ResourceType != f.Type {
				return lines, fmt.Sprintf("line %d is a %q in a %s file", lines, res.ResourceType, f.Type)
			}
			if f.Kind == "output" {
				if res.ID == "" {
					return lines, fmt.Sprintf("line %d has no id", lines)
				}
				key := res.ResourceType + "/" + res.ID
				if ids[key] {
					return lines, fmt.Sprintf("line %d: %s written twice in the job", lines, key)
				}
				ids[key] = true
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if f.Count != nil && *f.Count != lines {
		return lines, fmt.Sprintf("%d lines, the manifest says %d", lines, *f.Count)
	}
	return lines, ""
}

// final records each job's status and attempts in the database.
func (w *watcher) final() {
	for _, j := range w.jobs {
		_ = w.db.QueryRow(`SELECT status, attempts FROM export_jobs WHERE id = $1`, j.ID).Scan(&j.DBStatus, &j.DBAttempts)
	}
}
