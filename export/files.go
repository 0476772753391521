package export

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"example.com/gateway/gateway"
)

// Files of a job live in EXPORT_DIR/<job id>/ (0700), one resource type per
// file, named <Type>-<n>.ndjson (0600). A file being written has the name
// .<Type>-<n>.ndjson.partial and gets its final name only when it is
// complete: when it reaches the split size, or when the job completes.
//
// Restart safety ("truncate to checkpoint"): after each batch the worker
// flushes the open files to the operating system and records every file
// with its resource count and byte size in the job's checkpoint, in the
// same transaction as the member cursor. A resumed job truncates each
// type's last file to its recorded size (whatever its name on disk),
// deletes every file the checkpoint does not know, and rewrites the batches
// after the cursor: no resource is lost or written twice. A dead process
// loses nothing the kernel has; files are fsynced when complete (split or
// job end), not after every batch: after a crash of the machine itself a
// file may be shorter than its checkpoint says (appended data reaches the
// disk before the size that covers it), which the restore detects
// (errFilesMismatch) and answers by running the job again from the start.

const (
	kindOutput = "output"
	kindError  = "error"
)

// fileNameRE matches the final names of export files.
var fileNameRE = regexp.MustCompile(`^([A-Za-z]+)-([1-9][0-9]{0,5})\.ndjson$`)

func fileName(resourceType string, seq int) string {
	return resourceType + "-" + strconv.Itoa(seq) + ".ndjson"
}

func partialName(name string) string { return "." + name + ".partial" }

// errFilesMismatch means the files on disk do not match the checkpoint (the
// export directory was tampered with or lost): the job must start over.
var errFilesMismatch = errors.New("export files do not match the job's checkpoint")

// jobFiles writes a job's NDJSON files.
type jobFiles struct {
	dir      string
	limit    int                   // resources per file
	maxBytes int64                 // bytes per file (a file ends after the resource that reaches it)
	files    []*gateway.ExportFile // every file, in creation order
	open     map[fileKey]*openFile // the file being written, per kind and type
}

type fileKey struct{ kind, resourceType string }

// openFile is a file being written: encoder → counter → bufio → file.
type openFile struct {
	meta *gateway.ExportFile
	f    *os.File
	bw   *bufio.Writer
	cw   countingWriter
	enc  *json.Encoder
}

// countingWriter counts what is written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// openJobFiles prepares dir for a job whose last checkpoint recorded
// checkpoint (nil for a new job): see "Restart safety" above.
func openJobFiles(dir string, limit int, maxBytes int64, checkpoint []gateway.ExportFile) (*jobFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	jf := &jobFiles{dir: dir, limit: limit, maxBytes: maxBytes, open: map[fileKey]*openFile{}}
	known := map[string]bool{}
	last := map[fileKey]*gateway.ExportFile{}
	for i := range checkpoint {
		f := checkpoint[i]
		jf.files = append(jf.files, &f)
		known[f.Name] = true
		key := fileKey{f.Kind, f.ResourceType}
		if l := last[key]; l == nil || f.Seq > l.Seq {
			last[key] = &f
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := strings.TrimSuffix(strings.TrimPrefix(e.Name(), "."), ".partial")
		if !known[name] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range jf.files {
		final, partial := filepath.Join(dir, f.Name), filepath.Join(dir, partialName(f.Name))
		if last[fileKey{f.Kind, f.ResourceType}] != f {
			// A complete file: it was renamed before a later checkpoint.
			if st, err := os.Stat(final); err != nil || st.Size() != f.Bytes {
				return nil, errFilesMismatch
			}
			continue
		}
		// The type's last file: back to its checkpointed size, under its
		// partial name, open for appending.
		path := partial
		if _, err := os.Stat(partial); err != nil {
			if _, err := os.Stat(final); err != nil {
				return nil, errFilesMismatch
			}
			if err := os.Rename(final, partial); err != nil {
				return nil, err
			}
		} else {
			os.Remove(final) // cannot both exist; if so the partial one is the checkpointed one
		}
		st, err := os.Stat(path)
		if err != nil || st.Size() < f.Bytes {
			return nil, errFilesMismatch
		}
		if err := os.Truncate(path, f.Bytes); err != nil {
			return nil, err
		}
		fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		jf.open[fileKey{f.Kind, f.ResourceType}] = newOpenFile(f, fh)
	}
	return jf, nil
}

func newOpenFile(meta *gateway.ExportFile, f *os.File) *openFile {
	o := &openFile{meta: meta, f: f}
	o.bw = bufio.NewWriterSize(f, 256<<10)
	o.cw = countingWriter{w: o.bw, n: meta.Bytes}
	o.enc = json.NewEncoder(&o.cw)
	o.enc.SetEscapeHTML(false) // FHIR JSON: narrative and URLs stay as they are
	return o
}

// file returns the open file for kind and resourceType, starting a new one
// when there is none or the current one is full.
func (jf *jobFiles) file(kind, resourceType string) (*openFile, error) {
	key := fileKey{kind, resourceType}
	o := jf.open[key]
	if o != nil && o.meta.Count < jf.limit && (jf.maxBytes <= 0 || o.cw.n < jf.maxBytes) {
		return o, nil
	}
	seq := 1
	if o != nil {
		seq = o.meta.Seq + 1
		if err := jf.complete(o); err != nil {
			return nil, err
		}
		delete(jf.open, key)
	}
	meta := &gateway.ExportFile{Name: fileName(resourceType, seq), Kind: kind, ResourceType: resourceType, Seq: seq}
	fh, err := os.OpenFile(filepath.Join(jf.dir, partialName(meta.Name)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	jf.files = append(jf.files, meta)
	o = newOpenFile(meta, fh)
	jf.open[key] = o
	return o, nil
}

// write appends v as one NDJSON line to the output of resourceType.
func (jf *jobFiles) write(resourceType string, v any) error {
	o, err := jf.file(kindOutput, resourceType)
	if err != nil {
		return err
	}
	if err := o.enc.Encode(v); err != nil { // Encode ends the line: NDJSON framing
		return err
	}
	o.meta.Count++
	return nil
}

// writeRaw appends a resource already encoded as JSON (one line, no newline).
func (jf *jobFiles) writeRaw(resourceType string, raw []byte) error {
	o, err := jf.file(kindOutput, resourceType)
	if err != nil {
		return err
	}
	if _, err := o.cw.Write(raw); err != nil {
		return err
	}
	if _, err := o.cw.Write([]byte{'\n'}); err != nil {
		return err
	}
	o.meta.Count++
	return nil
}

// writeError appends an OperationOutcome to the job's error file.
func (jf *jobFiles) writeError(outcome any) error {
	o, err := jf.file(kindError, "OperationOutcome")
	if err != nil {
		return err
	}
	if err := o.enc.Encode(outcome); err != nil {
		return err
	}
	o.meta.Count++
	return nil
}

// sync flushes the open files to the operating system and returns the
// state of every file, for a checkpoint (see "Restart safety").
func (jf *jobFiles) sync() ([]gateway.ExportFile, error) {
	for _, o := range jf.open {
		if err := o.bw.Flush(); err != nil {
			return nil, err
		}
		o.meta.Bytes = o.cw.n
	}
	return jf.state(), nil
}

func (jf *jobFiles) state() []gateway.ExportFile {
	out := make([]gateway.ExportFile, len(jf.files))
	for i, f := range jf.files {
		out[i] = *f
	}
	return out
}

// complete flushes, fsyncs and closes o and gives it its final name.
func (jf *jobFiles) complete(o *openFile) error {
	if err := o.bw.Flush(); err != nil {
		return err
	}
	o.meta.Bytes = o.cw.n
	if err := o.f.Sync(); err != nil {
		return err
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	return os.Rename(filepath.Join(jf.dir, partialName(o.meta.Name)), filepath.Join(jf.dir, o.meta.Name))
}

// finish completes every open file and returns the final state.
func (jf *jobFiles) finish() ([]gateway.ExportFile, error) {
	keys := make([]fileKey, 0, len(jf.open))
	for k := range jf.open {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b fileKey) int {
		return strings.Compare(a.kind+"/"+a.resourceType, b.kind+"/"+b.resourceType)
	})
	for _, k := range keys {
		if err := jf.complete(jf.open[k]); err != nil {
			return nil, err
		}
		delete(jf.open, k)
	}
	if d, err := os.Open(jf.dir); err == nil { // make the renames durable
		d.Sync()
		d.Close()
	}
	return jf.state(), nil
}

// close releases the open files without completing them (the job stops;
// its next run restores from the checkpoint).
func (jf *jobFiles) close() {
	for k, o := range jf.open {
		o.f.Close()
		delete(jf.open, k)
	}
}

// removeFiles deletes a job's directory.
func (s *Service) removeFiles(jobID string) error {
	if !validJobID(jobID) {
		return fmt.Errorf("invalid job id %q", jobID)
	}
	return os.RemoveAll(filepath.Join(s.Dir, jobID))
}
