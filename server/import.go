package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"example.com/gateway/gateway"
	"example.com/gateway/ingest"
	"example.com/gateway/store"
)

const importUsage = `usage: gateway import --kind fhir|attribution|optout [flags] FILE… (- reads standard input)

  --kind K                 fhir (FHIR R4 NDJSON), attribution or optout (CSV); required
  --rejects PATH           where rejected lines go [FILE.rejects.ndjson]; required with -
  --max-rejects N          exit 1 when more than N lines are rejected [0]
  --replace-scope organization=NPI
                           attribution only: the files are the organization's whole list;
                           its payer attributions missing from them are ended, atomically
  --batch N                lines per batch [10000 for fhir, 50000 for CSV]
  --parallel N             connections loading each batch at once, split by member [1]
`

// runImport is the `import` command: it loads the payer's files (DESIGN.md
// §4, "Import formats") and prints a summary; rejected lines go to the
// rejects file. It exits 1 when more lines are rejected than --max-rejects
// allows, 2 on a usage error.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, cancel := commandContext(ctx)
	defer cancel()
	cmd, err := parseImportArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "gateway import: %v\n\n%s", err, importUsage)
		return &exitError{code: 2, err: err}
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	logger := NewLogger(stderr, cfg.LogLevel)
	// Memory stays flat whatever the file size: batches are bounded. The
	// collector may let garbage grow to four times the live heap (a third
	// less CPU than the default on a large FHIR file), within a soft limit
	// of 96 MiB that keeps the process well under 128 MiB.
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
	// Each --parallel importer holds a connection for the whole run, and
	// the run's own records need one more: a smaller pool would wait for
	// ever. No statement timeout: a batch takes as long as it needs.
	url, err := databaseURL(ctx, cfg, logger)
	if err != nil {
		return err
	}
	db, err := openPool(ctx, cfg, url, store.Options{MaxConns: max(cfg.DBMaxConns, cmd.Parallel+1)}, cfg.MigrateOnStart)
	if err != nil {
		return err
	}
	defer db.Close()
	cmd.Stdin, cmd.Stdout, cmd.Logger = os.Stdin, stdout, logger
	cmd.StartedBy = "cli:" + osUser()
	return cmd.Run(ctx, db)
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return cmpOr(os.Getenv("USER"), "unknown")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// parseImportArgs parses the flags, which may come before, between or after
// the files.
func parseImportArgs(args []string) (*importCommand, error) {
	cmd := &importCommand{}
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kind := fs.String("kind", "", "")
	fs.StringVar(&cmd.Rejects, "rejects", "", "")
	fs.IntVar(&cmd.MaxRejects, "max-rejects", 0, "")
	scope := fs.String("replace-scope", "", "")
	fs.IntVar(&cmd.BatchLines, "batch", 0, "")
	fs.IntVar(&cmd.Parallel, "parallel", 1, "")
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		cmd.Files = append(cmd.Files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	var err error
	if cmd.Kind, err = ingest.ParseKind(*kind); *kind == "" || err != nil {
		return nil, errors.New("--kind fhir, attribution or optout is required")
	}
	switch {
	case len(cmd.Files) == 0:
		return nil, errors.New("no file to import (use - for standard input)")
	case slices.Contains(cmd.Files, "-") && cmd.Rejects == "":
		return nil, errors.New("--rejects PATH is required when reading standard input")
	case slices.Contains(cmd.Files, "-") && len(cmd.Files) > 1:
		return nil, errors.New("standard input (-) cannot be combined with files")
	case cmd.MaxRejects < 0:
		return nil, errors.New("--max-rejects must be 0 or more")
	case cmd.BatchLines < 0:
		return nil, errors.New("--batch must be positive")
	case cmd.Parallel < 1 || cmd.Parallel > 16:
		return nil, errors.New("--parallel must be between 1 and 16")
	}
	if *scope != "" {
		npi, ok := strings.CutPrefix(*scope, "organization=")
		switch {
		case cmd.Kind != ingest.KindAttribution:
			return nil, errors.New("--replace-scope applies to --kind attribution only")
		case !ok:
			return nil, errors.New("--replace-scope must be organization=NPI")
		case !gateway.ValidNPI(npi):
			return nil, errors.New("--replace-scope: invalid organization NPI")
		}
		cmd.ReplaceNPI = npi
	}
	return cmd, nil
}

// importCommand is one run of `import`, its inputs resolved.
type importCommand struct {
	Kind       ingest.Kind
	Files      []string // "-" is standard input
	Rejects    string   // rejects file; "" → FILE.rejects.ndjson
	MaxRejects int
	ReplaceNPI string // --replace-scope organization=NPI
	Parallel   int    // connections loading at once [1]
	BatchLines int    // 0: default by kind
	BatchBytes int    // 0: 16 MiB

	Stdin     io.Reader
	Stdout    io.Writer
	Logger    *slog.Logger
	StartedBy string
	Now       func() time.Time // default time.Now

	// afterBatch, when set, runs after each batch is committed (tests stop
	// an import half-way through it).
	afterBatch func(batches int)
}

// importTotals accumulates a run's counts.
type importTotals struct {
	counts  map[string]*gateway.ImportCounts
	rejects int
}

func (t *importTotals) add(res store.BatchResult) {
	for typ, c := range res.Counts {
		x := t.counts[typ]
		if x == nil {
			x = &gateway.ImportCounts{}
			t.counts[typ] = x
		}
		x.Loaded += c.Loaded
		x.Unchanged += c.Unchanged
		x.Rejected += c.Rejected
		x.Ended += c.Ended
		t.rejects += c.Rejected
	}
}

func (t *importTotals) snapshot() map[string]gateway.ImportCounts {
	out := make(map[string]gateway.ImportCounts, len(t.counts))
	for typ, c := range t.counts {
		out[typ] = *c
	}
	return out
}

// importFile is one input and what belongs to it during the run.
type importFile struct {
	name    string // as given; "-" for standard input
	rejects *rejectsWriter
	spool   *os.File // FHIR lines whose references did not resolve yet
	spooled int
}

// Run imports the files and prints the summary. It records the run in
// import_runs. The error is an *exitError with code 1 when the rejects
// exceed MaxRejects.
func (c *importCommand) Run(ctx context.Context, db *store.DB) (err error) {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	if c.BatchLines == 0 {
		c.BatchLines = 10_000
		if c.Kind != ingest.KindFHIR {
			c.BatchLines = 50_000
		}
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 16 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ReplaceNPI != "" {
		if err := db.CheckReplaceScope(ctx, c.ReplaceNPI); err != nil {
			return err
		}
	}
	scope := ""
	if c.ReplaceNPI != "" {
		scope = "organization=" + c.ReplaceNPI
	}
	runID, err := db.StartImportRun(ctx, string(c.Kind), c.Files, c.StartedBy, scope)
	if err != nil {
		return fmt.Errorf("import: record the run: %w", err)
	}
	totals := &importTotals{counts: map[string]*gateway.ImportCounts{}}
	defer func() {
		outcome, msg := gateway.ImportSucceeded, ""
		if err != nil {
			outcome, msg = gateway.ImportFailed, err.Error()
			if ctx.Err() != nil {
				msg = "interrupted"
			}
		}
		if ferr := db.FinishImportRun(ctx, runID, totals.snapshot(), outcome, msg); ferr != nil && err == nil {
			err = ferr
		}
	}()

	// Today, for "a date in the future": tomorrow in UTC, so that no time
	// zone of the payer's makes today's data look like tomorrow's.
	today := gateway.DateOf(now().UTC()).AddDays(1)
	opts := store.ImportOptions{RecordedBy: c.StartedBy, ReplaceOrganizationNPI: c.ReplaceNPI}

	files := make([]*importFile, len(c.Files))
	defer func() {
		for _, f := range files {
			if f == nil {
				continue
			}
			if f.spool != nil {
				f.spool.Close()
				os.Remove(f.spool.Name())
			}
			if f.rejects != nil {
				if cerr := f.rejects.Close(); cerr != nil && err == nil {
					err = cerr
				}
			}
		}
	}()
	sharedRejects := (*rejectsWriter)(nil)
	if c.Rejects != "" {
		if sharedRejects, err = createRejects(c.Rejects, len(c.Files) > 1); err != nil {
			return err
		}
		sharedRejects.keepEmpty = true
	}
	for i, name := range c.Files {
		f := &importFile{name: name, rejects: sharedRejects}
		if f.rejects == nil {
			if f.rejects, err = createRejects(name+".rejects.ndjson", false); err != nil {
				return err
			}
		}
		files[i] = f
		if sharedRejects != nil && i > 0 {
			f.rejects = nil // closed once, through files[0]
		}
	}
	rejectsOf := func(f *importFile) *rejectsWriter {
		if f.rejects != nil {
			return f.rejects
		}
		return files[0].rejects
	}

	// --replace-scope: the whole load in one transaction, so that the
	// organization's list is replaced atomically, or not at all. Otherwise
	// each batch may load over several connections at once, split by member
	// (--parallel, ingest.Batch.Partition): worth it when the database has
	// cores to spare.
	atomic := c.ReplaceNPI != ""
	parallel := max(c.Parallel, 1)
	if atomic {
		parallel = 1
	}
	ims := make([]*store.Importer, parallel)
	defer func() {
		for _, im := range ims {
			if im != nil {
				im.Close()
			}
		}
	}()
	for i := range ims {
		if ims[i], err = db.NewImporter(ctx, opts); err != nil {
			return err
		}
	}
	im := ims[0]
	if atomic {
		if err := im.Begin(ctx); err != nil {
			return err
		}
	}
	load := func(b *ingest.Batch) (store.BatchResult, error) { return loadParallel(ctx, ims, b) }

	batches := 0
	lines := 0
	for _, f := range files {
		n, err := c.importFile(ctx, f, rejectsOf(f), today, load, totals, func() {
			batches++
			if !atomic {
				if err := db.UpdateImportRun(ctx, runID, totals.snapshot()); err != nil {
					c.Logger.WarnContext(ctx, "import: record progress", "err", err)
				}
			}
			if c.afterBatch != nil {
				c.afterBatch(batches)
			}
		})
		lines += n
		if err != nil {
			return err
		}
	}
	if err := c.retryDangling(ctx, files, rejectsOf, today, load, totals); err != nil {
		return err
	}

	if atomic {
		if totals.rejects > c.MaxRejects {
			// Atomic: a list with more bad lines than allowed replaces nothing.
			if err := im.Rollback(); err != nil {
				return err
			}
			for _, cnt := range totals.counts {
				cnt.Loaded, cnt.Unchanged = 0, 0
			}
		} else {
			ended, err := im.EndUnseen(ctx)
			if err != nil {
				return err
			}
			totals.count(string(ingest.KindAttribution)).Ended += ended
			if err := im.Commit(); err != nil {
				return err
			}
		}
	}

	c.summary(files, lines, totals, now().Sub(start))
	if totals.rejects > c.MaxRejects {
		msg := fmt.Sprintf("%d rejected lines exceed --max-rejects %d", totals.rejects, c.MaxRejects)
		if c.ReplaceNPI != "" {
			msg += "; rolled back: nothing was replaced"
		}
		return &exitError{code: 1, err: errors.New(msg)}
	}
	return nil
}

func (t *importTotals) count(typ string) *gateway.ImportCounts {
	x := t.counts[typ]
	if x == nil {
		x = &gateway.ImportCounts{}
		t.counts[typ] = x
	}
	return x
}

// loadParallel loads b over the importers at once, one part of it each
// (ingest.Batch.Partition: a member's lines stay together, in order). Parts
// commit separately: an interruption leaves whole lines, and a rerun
// completes the rest. Should two parts deadlock (two lines of one
// identifier in different parts), the batch loads again on one connection:
// loading is idempotent.
func loadParallel(ctx context.Context, ims []*store.Importer, b *ingest.Batch) (store.BatchResult, error) {
	if len(ims) == 1 {
		return ims[0].Load(ctx, b)
	}
	parts := b.Partition(len(ims))
	results := make([]store.BatchResult, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Go(func() { results[i], errs[i] = ims[i].Load(ctx, part) })
	}
	wg.Wait()
	for _, err := range errs {
		if store.IsRetryable(err) && ctx.Err() == nil {
			return ims[0].Load(ctx, b)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return store.BatchResult{}, err
	}
	var out store.BatchResult
	for _, r := range results {
		out.Add(r)
	}
	return out, nil
}

// batchResult is a batch read ahead by the reader goroutine.
type batchResult struct {
	b   *ingest.Batch
	err error
}

// importFile reads one file batch by batch — the next batch is read and
// parsed while the database loads the current one — and returns the number
// of lines read.
func (c *importCommand) importFile(ctx context.Context, f *importFile, rejects *rejectsWriter, today gateway.Date,
	load func(*ingest.Batch) (store.BatchResult, error), totals *importTotals, committed func()) (int, error) {
	var in io.Reader
	var file *os.File
	if f.name == "-" {
		in = c.Stdin
	} else {
		var err error
		if file, err = os.Open(f.name); err != nil {
			return 0, fmt.Errorf("import: %w", err)
		}
		defer file.Close()
		in = file
	}
	// Lines to retry are read again from the file (by position), or kept
	// in memory when standard input cannot be read again.
	rd, err := ingest.NewReader(c.Kind, in, ingest.Options{Today: today, KeepRaw: file == nil})
	if err != nil {
		return 0, fmt.Errorf("import %s: %w", f.name, err)
	}

	// Two batches circulate: one loading, one being read.
	free := make(chan *ingest.Batch, 2)
	free <- &ingest.Batch{}
	free <- &ingest.Batch{}
	ready := make(chan batchResult)
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go func() {
		defer close(ready)
		for {
			var b *ingest.Batch
			select {
			case b = <-free:
			case <-readCtx.Done():
				return
			}
			err := rd.Next(b, c.BatchLines, c.BatchBytes)
			if err == io.EOF {
				return
			}
			select {
			case ready <- batchResult{b, err}:
			case <-readCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	for r := range ready {
		if r.err != nil {
			return rd.Line(), fmt.Errorf("import %s: read: %w", f.name, r.err)
		}
		res, err := load(r.b)
		if err != nil {
			return rd.Line(), fmt.Errorf("import %s: lines %d–%d: %w", f.name, r.b.FirstLine, r.b.FirstLine+r.b.Lines-1, err)
		}
		if err := rejects.write(f.name, r.b.Rejects, res.Rejects); err != nil {
			return rd.Line(), err
		}
		if err := c.spool(f, file, r.b, res.Dangling); err != nil {
			return rd.Line(), err
		}
		totals.add(res)
		committed()
		free <- r.b
	}
	return rd.Line(), ctx.Err()
}

// spool keeps the lines whose references did not resolve, with why, to
// retry them once the whole load is in: "line<TAB>type<TAB>path<TAB>text".
// The spool is a temporary file, so memory stays flat however many lines
// wait.
func (c *importCommand) spool(f *importFile, src *os.File, b *ingest.Batch, dangling []ingest.Reject) error {
	if len(dangling) == 0 {
		return nil
	}
	if f.spool == nil {
		sp, err := os.CreateTemp("", "gateway-import-*.spool")
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		f.spool = sp
	}
	w := bufio.NewWriter(f.spool)
	var buf []byte
	for _, d := range dangling {
		raw := b.Raw(d.Line)
		if raw == nil && src != nil {
			off, n, ok := b.Position(d.Line)
			if ok {
				buf = slices.Grow(buf[:0], n)[:n]
				if _, err := src.ReadAt(buf, off); err != nil {
					return fmt.Errorf("import %s: read line %d again: %w", f.name, d.Line, err)
				}
				raw = buf
			}
		}
		if raw == nil {
			return fmt.Errorf("import: line %d: text not kept for a retry", d.Line)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t", d.Line, d.Type, d.Path)
		w.Write(raw)
		w.WriteByte('\n')
		f.spooled++
	}
	return w.Flush()
}

// spooledLine is one line of a spool file.
type spooledLine struct {
	reject ingest.Reject
	text   string
}

// readSpool calls fn for each line of a spool file, then removes it.
func readSpool(sp *os.File, fn func(spooledLine) error) error {
	defer func() {
		sp.Close()
		os.Remove(sp.Name())
	}()
	if _, err := sp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sc := bufio.NewScanner(sp)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 4)
		if len(parts) != 4 {
			return errors.New("import: corrupt spool file")
		}
		n, err := strconv.Atoi(parts[0])
		if err != nil {
			return errors.New("import: corrupt spool file")
		}
		if err := fn(spooledLine{ingest.Reject{Line: n, Type: parts[1], Path: parts[2], Reason: danglingReason}, parts[3]}); err != nil {
			return err
		}
	}
	return sc.Err()
}

const danglingReason = "reference does not resolve: no such resource in the files loaded or the database"

// retryDangling loads again the lines whose references did not resolve
// when they were read (a claim read before its patient's file, say), pass
// after pass while a pass resolves some; the rest are rejected.
func (c *importCommand) retryDangling(ctx context.Context, files []*importFile, rejectsOf func(*importFile) *rejectsWriter,
	today gateway.Date, load func(*ingest.Batch) (store.BatchResult, error), totals *importTotals) error {
	p := ingest.Parser{Today: today}
	for {
		progress, pending := false, false
		for _, f := range files {
			if f.spooled == 0 {
				continue
			}
			spool := f.spool
			f.spool, f.spooled = nil, 0
			b := &ingest.Batch{Kind: c.Kind}
			flush := func() error {
				if b.Records() == 0 {
					b.Reset()
					return nil
				}
				res, err := load(b)
				if err != nil {
					return err
				}
				if err := rejectsOf(f).write(f.name, b.Rejects, res.Rejects); err != nil {
					return err
				}
				if err := c.spool(f, nil, b, res.Dangling); err != nil {
					return err
				}
				if len(res.Dangling) < b.Records() {
					progress = true
				}
				totals.add(res)
				b.Reset()
				return nil
			}
			err := readSpool(spool, func(l spooledLine) error {
				if b.Lines == 0 {
					b.FirstLine = l.reject.Line
				}
				p.ParseLine(b, l.reject.Line, []byte(l.text))
				b.Lines++
				if b.Lines >= c.BatchLines {
					return flush()
				}
				return ctx.Err()
			})
			if err == nil {
				err = flush()
			}
			if err != nil {
				return err
			}
			pending = pending || f.spooled > 0
		}
		if !pending {
			return nil
		}
		if !progress {
			break
		}
	}
	// What still does not resolve is rejected.
	for _, f := range files {
		if f.spooled == 0 {
			continue
		}
		spool := f.spool
		f.spool, f.spooled = nil, 0
		rejects := rejectsOf(f)
		err := readSpool(spool, func(l spooledLine) error {
			totals.count(l.reject.Type).Rejected++
			totals.rejects++
			return rejects.write(f.name, []ingest.Reject{l.reject}, nil)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// summary prints the counts per kind of record.
func (c *importCommand) summary(files []*importFile, lines int, totals *importTotals, took time.Duration) {
	w := tabwriter.NewWriter(c.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(c.Stdout, "import %s: %d file(s), %d lines in %s\n", c.Kind, len(files), lines, took.Round(time.Millisecond))
	types := make([]string, 0, len(totals.counts))
	for typ := range totals.counts {
		types = append(types, typ)
	}
	slices.Sort(types)
	fmt.Fprintln(w, "kind\tloaded\tunchanged\trejected\t")
	var sum gateway.ImportCounts
	ended := 0
	for _, typ := range types {
		x := totals.counts[typ]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t\n", typ, x.Loaded, x.Unchanged, x.Rejected)
		sum.Loaded += x.Loaded
		sum.Unchanged += x.Unchanged
		sum.Rejected += x.Rejected
		ended += x.Ended
	}
	fmt.Fprintf(w, "total\t%d\t%d\t%d\t\n", sum.Loaded, sum.Unchanged, sum.Rejected)
	w.Flush()
	if ended > 0 {
		fmt.Fprintf(c.Stdout, "ended %d attribution(s) missing from the list (--replace-scope organization=%s)\n", ended, c.ReplaceNPI)
	}
	if sum.Rejected > 0 {
		seen := map[*rejectsWriter]bool{}
		for _, f := range files {
			if f.rejects != nil && !seen[f.rejects] && f.rejects.n > 0 {
				seen[f.rejects] = true
				fmt.Fprintf(c.Stdout, "rejects: %s (%d)\n", f.rejects.path, f.rejects.n)
			}
		}
	}
}

// rejectsWriter writes a rejects file: one JSON object per rejected line,
// {"line": N, "reason": "…", "path": "…"} (and "file" when one rejects file
// serves several input files).
type rejectsWriter struct {
	path      string
	f         *os.File
	w         *bufio.Writer
	withFile  bool
	keepEmpty bool // --rejects PATH: the file exists even when empty
	n         int
}

func createRejects(path string, withFile bool) (*rejectsWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("import: rejects file: %w", err)
	}
	return &rejectsWriter{path: path, f: f, w: bufio.NewWriter(f), withFile: withFile}, nil
}

type rejectLine struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Path   string `json:"path"`
}

// write writes two sets of rejects merged in line order.
func (r *rejectsWriter) write(file string, a, b []ingest.Reject) error {
	if len(a)+len(b) == 0 {
		return nil
	}
	all := append(append(make([]ingest.Reject, 0, len(a)+len(b)), a...), b...)
	slices.SortStableFunc(all, func(x, y ingest.Reject) int { return x.Line - y.Line })
	enc := json.NewEncoder(r.w)
	enc.SetEscapeHTML(false)
	for _, rj := range all {
		l := rejectLine{Line: rj.Line, Reason: rj.Reason, Path: rj.Path}
		if r.withFile {
			l.File = file
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
		r.n++
	}
	return r.w.Flush()
}

// Close closes the file, and removes it when it is a default rejects file
// with nothing in it (so that a stale one from an earlier run never stays).
func (r *rejectsWriter) Close() error {
	if err := r.w.Flush(); err != nil {
		r.f.Close()
		return err
	}
	err := r.f.Close()
	if err == nil && r.n == 0 && !r.keepEmpty {
		err = os.Remove(r.path)
	}
	return err
}
