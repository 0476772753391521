package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/gateway/gateway"
)

func TestJobFilesSplitAndRestore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "job")
	line := map[string]string{"resourceType": "Patient", "id": strings.Repeat("x", 40)} // 75 bytes with the newline
	jf, err := openJobFiles(dir, 3, 150, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := jf.write("Patient", line); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint, err := jf.sync()
	if err != nil {
		t.Fatal(err)
	}
	// Split by size: a file ends once it holds 150 bytes (two lines here),
	// before its count limit of three.
	if len(checkpoint) != 3 || checkpoint[0].Count != 2 || checkpoint[1].Count != 2 || checkpoint[2].Count != 1 {
		t.Fatalf("checkpoint %+v", checkpoint)
	}
	// More after the checkpoint, including a split, then a crash.
	for range 4 {
		jf.write("Patient", line)
	}
	jf.write("Coverage", line)
	jf.sync()
	jf.close()

	jf, err = openJobFiles(dir, 3, 150, checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	jf.write("Patient", line)
	final, err := jf.finish()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range final {
		names = append(names, f.Name)
		b, _ := os.ReadFile(filepath.Join(dir, f.Name))
		if n := strings.Count(string(b), "\n"); n != f.Count || int64(len(b)) != f.Bytes {
			t.Errorf("%s: %d lines, %d bytes; recorded %d, %d", f.Name, n, len(b), f.Count, f.Bytes)
		}
	}
	if strings.Join(names, " ") != "Patient-1.ndjson Patient-2.ndjson Patient-3.ndjson" || final[2].Count != 2 {
		t.Errorf("after restore: %v %+v", names, final)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("directory holds %d entries, want 3", len(entries))
	}

	// A checkpoint the disk does not match.
	if _, err := openJobFiles(dir, 3, 150, []gateway.ExportFile{{Name: "Patient-1.ndjson", Kind: kindOutput, ResourceType: "Patient", Seq: 1, Count: 9, Bytes: 9999}}); err != errFilesMismatch {
		t.Errorf("mismatch: %v", err)
	}
}
