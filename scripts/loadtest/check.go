package main

import (
	"bufio"
	"cmp"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// vegetaResult is one line of `vegeta encode -to json`.
type vegetaResult struct {
	Code      int                 `json:"code"`
	Timestamp time.Time           `json:"timestamp"`
	Latency   time.Duration       `json:"latency"`
	Error     string              `json:"error"`
	Body      []byte              `json:"body"`
	Method    string              `json:"method"`
	URL       string              `json:"url"`
	Headers   map[string][]string `json:"headers"`
}

// hit is what check keeps of a result.
type hit struct {
	kind      string // graphql, token, export
	op        string // the GraphQL operation or export variant, from X-Request-Id
	requestID string
	code      int
	start     time.Time
	latency   time.Duration
	transport string   // vegeta's error when there was no HTTP answer
	gqlCodes  []string // extensions.code of the GraphQL errors
	hasData   bool     // GraphQL: data present and not null
	members   []string // GraphQL: the distinct members the answer returned
	location  string   // export: Content-Location of a 202
	tokenOK   bool     // token: an access_token came back
}

func (h *hit) end() time.Time { return h.start.Add(h.latency) }

// ok: the answer a correct gateway gives this request under load.
func (h *hit) ok() bool {
	switch h.kind {
	case "graphql":
		return h.code == 200 && h.hasData && len(h.gqlCodes) == 0
	case "token":
		return h.code == 200 && h.tokenOK
	case "export":
		return h.code == 202 && h.location != ""
	}
	return false
}

// expected: not a success but a correct answer (the organization's export
// limit, or a duplicate of a running export: 429).
func (h *hit) expected() bool { return h.kind == "export" && h.code == 429 }

func runCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	dir := fs.String("dir", ".", "where state.json and watch.json are")
	results := fs.String("results", "", "vegeta results as JSON lines (vegeta encode -to json)")
	faultFile := fs.String("fault", "", "file with the kill and restart times (fault mode)")
	workers := fs.Int("max-workers", 0, "vegeta's -max-workers (reported)")
	maxErr := fs.Float64("max-error-rate", 0.01, "highest error rate per kind that passes (without a fault)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := readState(*dir)
	if err != nil {
		return err
	}
	hits, err := readResults(*results)
	if err != nil {
		return err
	}
	if len(hits) == 0 {
		return fmt.Errorf("no results in %s", *results)
	}
	var watch Watch
	if b, err := os.ReadFile(filepath.Join(*dir, "watch.json")); err == nil {
		if err := json.Unmarshal(b, &watch); err != nil {
			return fmt.Errorf("watch.json: %w", err)
		}
	}
	var fault *faultTimes
	if *faultFile != "" {
		if fault, err = readFault(*faultFile); err != nil {
			return err
		}
	}
	db, err := sql.Open("postgres", st.DSN)
	if err != nil {
		return err
	}
	defer db.Close()

	rep := &report{}
	rep.load(st, hits, *workers, fault == nil, *maxErr)
	if err := rep.audit(st, db, hits); err != nil {
		return err
	}
	rep.exports(hits, &watch)
	if fault != nil {
		rep.fault(fault, hits, &watch)
	}
	rep.verdict()
	text := rep.b.String()
	fmt.Print(text)
	if err := os.WriteFile(filepath.Join(*dir, "report.txt"), []byte(text), 0o644); err != nil {
		return err
	}
	if len(rep.failures) > 0 {
		return failed{}
	}
	return nil
}

func readResults(path string) ([]*hit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	var hits []*hit
	for {
		var r vegetaResult
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		hits = append(hits, classify(&r))
	}
	sort.Slice(hits, func(i, k int) bool { return hits[i].start.Before(hits[k].start) })
	return hits, nil
}

func classify(r *vegetaResult) *hit {
	h := &hit{code: r.Code, start: r.Timestamp, latency: r.Latency, transport: r.Error}
	u, _ := url.Parse(r.URL)
	switch {
	case u != nil && u.Path == "/graphql":
		h.kind = "graphql"
	case u != nil && u.Path == "/oauth/token":
		h.kind = "token"
	default:
		h.kind = "export"
	}
	h.op = "(no answer)"
	for k, v := range r.Headers {
		if strings.EqualFold(k, "X-Request-Id") && len(v) > 0 {
			h.requestID = v[0]
			if parts := strings.SplitN(v[0], ".", 4); len(parts) == 4 {
				h.op = parts[3]
			}
		}
		if strings.EqualFold(k, "Content-Location") && len(v) > 0 {
			h.location = v[0]
		}
	}
	switch h.kind {
	case "graphql":
		if r.Code == 200 || r.Code == 500 {
			parseGraphQL(r.Body, h)
		}
	case "token":
		var t struct {
			AccessToken string `json:"access_token"`
		}
		h.tokenOK = json.Unmarshal(r.Body, &t) == nil && t.AccessToken != ""
	}
	return h
}

// parseGraphQL reads the errors of an answer and the members it returned:
// data.members.edges[].node.id and data.member.id, the reads the gateway
// audits (one row per request × member).
func parseGraphQL(body []byte, h *hit) {
	var r struct {
		Data *struct {
			Member *struct {
				ID string `json:"id"`
			} `json:"member"`
			Members *struct {
				Edges []struct {
					Node *struct {
						ID string `json:"id"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"members"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		h.gqlCodes = []string{"UNPARSABLE"}
		return
	}
	for _, e := range r.Errors {
		h.gqlCodes = append(h.gqlCodes, cmp.Or(e.code(), "NO_CODE"))
	}
	if r.Data == nil {
		return
	}
	h.hasData = true
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			h.members = append(h.members, id)
		}
	}
	if r.Data.Member != nil {
		add(r.Data.Member.ID)
	}
	if r.Data.Members != nil {
		for _, e := range r.Data.Members.Edges {
			if e.Node != nil {
				add(e.Node.ID)
			}
		}
	}
}

// report accumulates the text and the failed requirements.
type report struct {
	b        strings.Builder
	failures []string
	warnings []string
	window   time.Duration
	began    time.Time
}

func (r *report) printf(format string, args ...any) { fmt.Fprintf(&r.b, format, args...) }

func (r *report) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + "ms" }

type stats struct {
	n, ok, expected int
	lat             []time.Duration
	codes           map[string]int
}

func (s *stats) add(h *hit) {
	s.n++
	if h.ok() {
		s.ok++
	} else if h.expected() {
		s.expected++
	}
	s.lat = append(s.lat, h.latency)
	if s.codes == nil {
		s.codes = map[string]int{}
	}
	s.codes[outcome(h)]++
}

// outcome names an answer: its status code, GraphQL error codes, or the
// transport error.
func outcome(h *hit) string {
	switch {
	case h.code == 0:
		t := h.transport
		if i := strings.LastIndex(t, ": "); i >= 0 {
			t = t[i+2:]
		}
		return "no answer (" + t + ")"
	case h.kind == "graphql" && len(h.gqlCodes) > 0:
		c := slices.Clone(h.gqlCodes)
		slices.Sort(c)
		c = slices.Compact(c)
		data := "data"
		if !h.hasData {
			data = "no data"
		}
		return fmt.Sprintf("%d %s, errors %s", h.code, data, strings.Join(c, ","))
	}
	return strconv.Itoa(h.code)
}

func (r *report) line(name string, s *stats) {
	slices.Sort(s.lat)
	errs := s.n - s.ok - s.expected
	r.printf("  %-28s %7d %7d %6d %6d %6.2f%% %8.1f %9s %9s %9s %9s\n", name, s.n, s.ok, s.expected, errs,
		100*float64(errs)/float64(max(s.n, 1)), float64(s.ok)/r.window.Seconds(),
		ms(percentile(s.lat, .5)), ms(percentile(s.lat, .9)), ms(percentile(s.lat, .99)), ms(s.lat[len(s.lat)-1]))
}

func (r *report) load(st *State, hits []*hit, workers int, judge bool, maxErr float64) {
	r.began = hits[0].start
	var last, lastStart time.Time
	for _, h := range hits {
		last = maxTime(last, h.end())
		lastStart = maxTime(lastStart, h.start)
	}
	r.window = last.Sub(r.began)
	sendWindow := lastStart.Sub(r.began)
	dur, _ := time.ParseDuration(st.Duration)
	r.printf("== Load (run %s) ==\n", st.Run)
	r.printf("asked: %.0f req/s for %s (graphql %.0f, token %.0f, export kick-off %.1f req/s), vegeta -max-workers %d\n",
		st.Rate, st.Duration, st.Mix.GraphQL, st.Mix.Token, st.Mix.Export, workers)
	sentRate := float64(len(hits)) / max(sendWindow.Seconds(), 1e-9)
	kept := "yes"
	if float64(len(hits)) < 0.98*st.Rate*dur.Seconds() {
		kept = "NO (the load generator could not send at the asked rate)"
		r.warnings = append(r.warnings, fmt.Sprintf("vegeta sent %.0f req/s of the %.0f asked: all its -max-workers %d were waiting for answers (the gateway did not sustain the rate; see the latencies)",
			sentRate, st.Rate, workers))
	}
	if lag := r.window - sendWindow; kept == "yes" && lag > 3*time.Second {
		r.warnings = append(r.warnings, fmt.Sprintf("the last answer came %.1f s after the last request was sent: a backlog (the gateway is saturated at this rate; see the latencies)", lag.Seconds()))
	}
	r.printf("sent: %d requests in %.1f s (%.1f req/s; kept up: %s); last answer %.1f s after the first request\n\n",
		len(hits), sendWindow.Seconds(), sentRate, kept, r.window.Seconds())
	r.printf("  %-28s %7s %7s %6s %6s %7s %8s %9s %9s %9s %9s\n", "kind / operation", "reqs", "ok", "429", "errors", "err%", "ok/s", "p50", "p90", "p99", "max")
	kinds := map[string]*stats{}
	ops := map[string]*stats{}
	for _, h := range hits {
		if kinds[h.kind] == nil {
			kinds[h.kind] = &stats{}
		}
		kinds[h.kind].add(h)
		k := h.kind + "/" + h.op
		if ops[k] == nil {
			ops[k] = &stats{}
		}
		ops[k].add(h)
	}
	all := &stats{}
	for _, h := range hits {
		all.add(h)
	}
	r.line("all", all)
	for _, kind := range []string{"graphql", "token", "export"} {
		s := kinds[kind]
		if s == nil {
			continue
		}
		r.line(kind, s)
		var names []string
		for k := range ops {
			if strings.HasPrefix(k, kind+"/") {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			r.line("  "+strings.TrimPrefix(k, kind+"/"), ops[k])
		}
	}
	r.printf("\nanswers by kind (status, GraphQL error codes):\n")
	for _, kind := range []string{"graphql", "token", "export"} {
		if s := kinds[kind]; s != nil {
			r.printf("  %-8s %s\n", kind, countsText(s.codes))
		}
	}
	r.printf("  (export 429: the organization's limit of 4 exports in flight, or an identical request still running — expected, not errors)\n")
	if judge {
		for _, kind := range []string{"graphql", "token", "export"} {
			if s := kinds[kind]; s != nil {
				if rate := float64(s.n-s.ok-s.expected) / float64(s.n); rate > maxErr {
					r.fail("%s error rate %.2f%% is above %.2f%%", kind, 100*rate, 100*maxErr)
				}
			}
		}
	}
}

func countsText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, "; ")
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// audit compares the member reads of the answers with the audit rows the
// load's GraphQL requests wrote, request by request (the X-Request-Id the
// load sent is the rows' request_id).
func (r *report) audit(st *State, db *sql.DB, hits []*hit) error {
	var clients []string
	for _, c := range st.Clients {
		clients = append(clients, c.ID)
	}
	rows, err := db.Query(`SELECT request_id, member_id::text, operation FROM audit_events
WHERE id > $1 AND principal_kind = 'CLIENT' AND principal_id = ANY($2) AND operation LIKE 'graphql%'`,
		st.AuditBaseline, pq.Array(clients))
	if err != nil {
		return fmt.Errorf("audit rows: %w", err)
	}
	defer rows.Close()
	audited := map[string][]string{}
	total := 0
	for rows.Next() {
		var req, member, op string
		if err := rows.Scan(&req, &member, &op); err != nil {
			return err
		}
		audited[req] = append(audited[req], member)
		total++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	reads, answered, badAnswers := 0, 0, 0
	var mismatched []string
	seen := map[string]bool{}
	for _, h := range hits {
		if h.kind != "graphql" || h.requestID == "" {
			continue
		}
		answered++
		reads += len(h.members)
		seen[h.requestID] = true
		got := slices.Clone(audited[h.requestID])
		want := slices.Clone(h.members)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			badAnswers++
			mismatched = append(mismatched, fmt.Sprintf("%s (%s, %s): answer returned %d members, %d audit rows",
				h.requestID, h.op, outcome(h), len(want), len(got)))
		}
	}
	orphans, orphanRows := 0, 0
	var orphanIDs []string
	for req, ms := range audited {
		if !seen[req] {
			orphans++
			orphanRows += len(ms)
			if len(orphanIDs) < 3 {
				orphanIDs = append(orphanIDs, req)
			}
		}
	}
	r.printf("\n== Audit ==\n")
	verdict := "EQUAL"
	if reads != total-orphanRows {
		verdict = "NOT EQUAL"
	}
	r.printf("member reads in the %d GraphQL answers received: %d; audit rows of these requests: %d → %s\n",
		answered, reads, total-orphanRows, verdict)
	r.printf("request by request (X-Request-Id = audit_events.request_id, same member ids): %d of %d answers match\n",
		answered-badAnswers, answered)
	if orphans > 0 {
		r.printf("besides: %d requests whose answer vegeta did not receive (it gave up after its -timeout) were read and audited (%d rows; e.g. %s); all audit rows of the load: %d\n",
			orphans, orphanRows, strings.Join(orphanIDs, ", "), total)
	}
	sort.Strings(mismatched)
	for i, m := range mismatched {
		if i == 10 {
			r.printf("  … %d more\n", len(mismatched)-10)
			break
		}
		r.printf("  %s\n", m)
	}
	if reads != total-orphanRows || badAnswers > 0 {
		r.fail("audit rows (%d) differ from member reads (%d), %d answers mismatched", total-orphanRows, reads, badAnswers)
	}
	return nil
}

// exports checks that every accepted kick-off is one job, that every job
// reached an end, and that every file of every completed job was whole.
func (r *report) exports(hits []*hit, w *Watch) {
	r.printf("\n== Exports ==\n")
	accepted := map[string]int{}
	byOp := map[string]map[int]int{}
	for _, h := range hits {
		if h.kind != "export" {
			continue
		}
		if byOp[h.op] == nil {
			byOp[h.op] = map[int]int{}
		}
		byOp[h.op][h.code]++
		if h.code == 202 && h.location != "" {
			accepted[h.location[strings.LastIndex(h.location, "/")+1:]]++
		}
	}
	var ops []string
	for op := range byOp {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		m := map[string]int{}
		for c, n := range byOp[op] {
			m[strconv.Itoa(c)] = n
		}
		r.printf("kick-offs %-15s %s\n", op+":", countsText(m))
	}
	dups := 0
	for id, n := range accepted {
		if n > 1 {
			dups++
			r.printf("  job %s was answered to %d kick-offs\n", id, n)
		}
	}
	jobs := map[string]*JobWatch{}
	for _, j := range w.Jobs {
		jobs[j.ID] = j
	}
	// Jobs of the load that no 202 announced (a kick-off whose answer was
	// lost or was an error after the job was queued).
	var unannounced []string
	for id := range jobs {
		if accepted[id] == 0 {
			unannounced = append(unannounced, id)
		}
	}
	final := map[string]int{}
	var lost, problems []string
	files, lines := 0, 0
	var slowest time.Duration
	for id := range accepted {
		j := jobs[id]
		switch {
		case j == nil:
			lost = append(lost, id+": accepted (202) but not in the database")
			continue
		case j.Final == "":
			lost = append(lost, fmt.Sprintf("%s: not finished when the watch ended (database: %s)", id, j.DBStatus))
		case j.Final == "NOT_FOUND":
			lost = append(lost, fmt.Sprintf("%s: status 404 (database: %s)", id, j.DBStatus))
		}
		final[cmp.Or(j.Final, "UNFINISHED")]++
		if j.Final == "FAILED" {
			problems = append(problems, fmt.Sprintf("%s failed: %s", id, j.FailMessage))
		}
		for _, p := range j.Problems {
			problems = append(problems, id+": "+p)
		}
		for _, f := range j.Files {
			files++
			lines += f.Lines
		}
		if !j.FinalAt.IsZero() {
			slowest = max(slowest, j.FinalAt.Sub(j.Received))
		}
	}
	r.printf("accepted (202): %d kick-offs, %d distinct jobs; kick-offs answered with a job already answered: %d\n",
		sumValues(accepted), len(accepted), dups)
	r.printf("jobs in the database for the load's clients: %d; without a 202: %d\n", len(jobs), len(unannounced))
	for _, id := range unannounced {
		j := jobs[id]
		r.printf("  %s (database: %s): queued, but its kick-off was not answered 202\n", id, j.DBStatus)
	}
	r.printf("accepted jobs by outcome: %s; slowest from kick-off to checked files: %.1f s\n", countsText(final), slowest.Seconds())
	r.printf("files downloaded and read: %d (%d NDJSON lines): every line parsed, of the manifest's type, ids unique in the job, line count = manifest count", files, lines)
	if len(problems) == 0 {
		r.printf(" — all OK\n")
	} else {
		r.printf(" — %d problems:\n", len(problems))
		for i, p := range problems {
			if i == 10 {
				r.printf("  … %d more\n", len(problems)-10)
				break
			}
			r.printf("  %s\n", p)
		}
	}
	probes := map[string]int{}
	for _, j := range w.Jobs {
		for c, n := range j.ProbeCodes {
			if c < 0 {
				probes[strconv.Itoa(-c)+" (the job had completed meanwhile; file whole)"] += n
			} else {
				probes[strconv.Itoa(c)] += n
			}
		}
	}
	r.printf("file requests for jobs still running (must not be served): %s\n", countsText(probes))
	attempts := map[string]int{}
	for _, j := range w.Jobs {
		attempts[strconv.Itoa(j.DBAttempts)]++
	}
	r.printf("jobs by attempts (export_jobs.attempts): %s\n", countsText(attempts))
	if w.TimedOut {
		r.printf("the watch timed out waiting for unfinished jobs\n")
	}
	for _, l := range lost {
		r.printf("  LOST %s\n", l)
	}
	switch {
	case len(lost) > 0:
		r.fail("%d export jobs lost", len(lost))
	case dups > 0:
		r.fail("%d export jobs answered to several kick-offs", dups)
	}
	if len(unannounced) > 0 {
		r.fail("%d export jobs queued without a 202 (duplicated by a retry, or invisible to the client)", len(unannounced))
	}
	if len(problems) > 0 {
		r.fail("%d export problems (failed jobs or bad files)", len(problems))
	}
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

type faultTimes struct {
	killed, down, restarted, ready time.Time
}

// readFault reads "killed MS", "down MS", "restarted MS", "ready MS" lines
// (Unix milliseconds) written by the script.
func readFault(path string) (*faultTimes, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f faultTimes
	for _, l := range strings.Split(string(b), "\n") {
		fields := strings.Fields(l)
		if len(fields) != 2 {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q", path, l)
		}
		t := time.UnixMilli(n)
		switch fields[0] {
		case "killed":
			f.killed = t
		case "down":
			f.down = t
		case "restarted":
			f.restarted = t
		case "ready":
			f.ready = t
		}
	}
	if f.killed.IsZero() || f.restarted.IsZero() {
		return nil, fmt.Errorf("%s: no kill or restart time (was PostgreSQL restarted during the load?)", path)
	}
	return &f, nil
}

func (r *report) fault(f *faultTimes, hits []*hit, w *Watch) {
	rel := func(t time.Time) float64 { return t.Sub(r.began).Seconds() }
	r.printf("\n== Fault ==\n")
	r.printf("PostgreSQL killed (SIGQUIT) at %.1f s, gone at %.1f s, started again at %.1f s, accepting connections at %.1f s (down %.1f s)\n",
		rel(f.killed), rel(f.down), rel(f.restarted), rel(f.ready), f.ready.Sub(f.killed).Seconds())

	// Recovery: from the restart to the first successful GraphQL answer to
	// a request sent once PostgreSQL was gone (so it needed the database
	// after it came back); then to the first second (by answer time) in
	// which 95% of the GraphQL answers succeed again: the outage's backlog
	// drained.
	gone := f.down
	if gone.IsZero() {
		gone = f.killed
	}
	var first, lastBad time.Time
	perSecond := map[int64][2]int{} // ok, all
	for _, h := range hits {
		if h.kind != "graphql" || h.start.Before(gone) {
			continue
		}
		if h.ok() && (first.IsZero() || h.end().Before(first)) {
			first = h.end()
		}
		if !h.ok() && h.start.After(f.restarted) {
			lastBad = maxTime(lastBad, h.end())
		}
		if h.end().Before(f.restarted) {
			continue
		}
		sec := h.end().Sub(f.restarted).Milliseconds() / 1000
		c := perSecond[sec]
		if h.ok() {
			c[0]++
		}
		c[1]++
		perSecond[sec] = c
	}
	steady := int64(-1)
	for sec := int64(0); sec < 120; sec++ {
		if c := perSecond[sec]; c[1] >= 5 && float64(c[0]) >= 0.95*float64(c[1]) {
			steady = sec
			break
		}
	}
	recovery := time.Duration(-1)
	if !first.IsZero() {
		recovery = first.Sub(f.restarted)
	}
	window := f.restarted.Add(5 * time.Second)
	r.printf("answers to requests sent from the kill to 5 s after the restart (%.1f–%.1f s):\n", rel(f.killed), rel(window))
	during := map[string]map[string]int{}
	for _, h := range hits {
		if h.start.Before(f.killed) || h.start.After(window) {
			continue
		}
		if during[h.kind] == nil {
			during[h.kind] = map[string]int{}
		}
		during[h.kind][outcome(h)]++
	}
	for _, kind := range []string{"graphql", "token", "export"} {
		if during[kind] != nil {
			r.printf("  %-8s %s\n", kind, countsText(during[kind]))
		}
	}
	// A timeline of the answers around the outage, by the second they came.
	r.printf("answers by the second they came (ok/other; t = seconds into the load):\n")
	r.printf("  %6s %12s %12s %12s\n", "t", "graphql", "token", "export")
	from := int(rel(f.killed)) - 2
	to := int(rel(f.ready)) + 6
	type okAll struct{ ok, all int }
	line := map[int]map[string]*okAll{}
	for _, h := range hits {
		sec := int(rel(h.end()))
		if sec < from || sec > to {
			continue
		}
		if line[sec] == nil {
			line[sec] = map[string]*okAll{"graphql": {}, "token": {}, "export": {}}
		}
		c := line[sec][h.kind]
		c.all++
		if h.ok() || h.expected() {
			c.ok++
		}
	}
	for sec := from; sec <= to; sec++ {
		var marks []string
		for _, m := range []struct {
			t    time.Time
			name string
		}{{f.killed, "killed"}, {f.restarted, "started again"}, {f.ready, "accepting connections"}} {
			if !m.t.IsZero() && sec == int(rel(m.t)) {
				marks = append(marks, m.name)
			}
		}
		mark := ""
		if len(marks) > 0 {
			mark = "  ← PostgreSQL " + strings.Join(marks, ", ")
		}
		l := line[sec]
		if l == nil {
			r.printf("  %6d %12s %12s %12s%s\n", sec, "-", "-", "-", mark)
			continue
		}
		cell := func(k string) string { return fmt.Sprintf("%d/%d", l[k].ok, l[k].all-l[k].ok) }
		r.printf("  %6d %12s %12s %12s%s\n", sec, cell("graphql"), cell("token"), cell("export"), mark)
	}
	bad := map[string]int{}
	internal := 0
	for _, h := range hits {
		if h.code >= 500 && h.code != 503 {
			bad[fmt.Sprintf("%s %s %d at %.1f s", h.kind, h.op, h.code, rel(h.start))]++
		}
		if h.kind == "graphql" && h.code == 200 && slices.Contains(h.gqlCodes, "INTERNAL") {
			internal++
		}
	}
	// The watcher's requests: status polls and downloads (a failed job's
	// status answers 500 by design; that is reported as a failed job).
	for _, j := range w.Jobs {
		for c, n := range j.StatusCodes {
			if c >= 500 && c != 503 && !(c == 500 && j.Final == "FAILED") {
				bad[fmt.Sprintf("export status poll %d", c)] += n
			}
		}
		for _, fl := range j.Files {
			for c, n := range fl.Codes {
				if c >= 500 && c != 503 {
					bad[fmt.Sprintf("export file download %d", c)] += n
				}
			}
		}
	}
	nbad := sumValues(bad)
	r.printf("5xx other than 503 during the whole run: %d", nbad)
	if nbad > 0 {
		r.printf(" — %s", countsText(compressBad(bad)))
	}
	r.printf("\nGraphQL answers 200 with an INTERNAL error (data unavailable, said in the body): %d\n", internal)
	if recovery < 0 {
		r.printf("recovery: no successful GraphQL answer after the restart\n")
		r.fail("no recovery after the restart")
	} else {
		r.printf("recovery: first successful GraphQL answer %.2f s after the restart", recovery.Seconds())
		if !f.ready.IsZero() {
			if after := first.Sub(f.ready); after > 0 {
				r.printf(" (%.2f s after PostgreSQL accepted connections)", after.Seconds())
			} else { // pg_isready polls: the gateway may connect first
				r.printf(" (as soon as PostgreSQL accepted connections)")
			}
		}
		if steady >= 0 {
			r.printf("; 95%% of the GraphQL answers succeed again in the second %d–%d s after it", steady, steady+1)
		}
		if !lastBad.IsZero() {
			r.printf("; the last failed answer to a request sent after the restart came %.2f s after it", lastBad.Sub(f.restarted).Seconds())
		}
		r.printf("\n")
		if recovery > 5*time.Second {
			r.fail("recovery took %.2f s (more than 5 s)", recovery.Seconds())
		}
	}
	if nbad > 0 {
		r.fail("%d answers were 5xx other than 503", nbad)
	}
}

// compressBad groups "kind op code at T" keys by kind, op and code, with
// the first and last time.
func compressBad(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range m {
		if i := strings.Index(k, " at "); i >= 0 {
			k = k[:i]
		}
		out[k] += n
	}
	return out
}

func (r *report) verdict() {
	r.printf("\n== Verdict ==\n")
	for _, w := range r.warnings {
		r.printf("WARNING: %s\n", w)
	}
	if len(r.failures) == 0 {
		r.printf("PASS\n")
		return
	}
	for _, f := range r.failures {
		r.printf("FAIL: %s\n", f)
	}
}
