// Command bench-import writes the input files of scripts/bench-import.sh:
// the sandbox generator's synthetic data mapped to FHIR R4 NDJSON by package
// fhir (with money, as a payer's pipeline would send it), and an
// attribution CSV over the same members.
//
//	go run ./scripts/bench-import -members 30000 -out DIR [-csv-rows 1000000]
//
// It writes DIR/providers.ndjson (Organization, Practitioner),
// DIR/members.ndjson (Patient, Coverage), DIR/eob.ndjson
// (ExplanationOfBenefit: claims and prior authorizations) and
// DIR/attribution.csv, streaming: memory does not grow with -members.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"example.com/gateway/fhir"
	"example.com/gateway/gateway"
	"example.com/gateway/sandbox"
)

func main() {
	members := flag.Int("members", 30000, "synthetic members")
	seed := flag.Int64("seed", 42, "generator seed")
	out := flag.String("out", ".", "output directory")
	csvRows := flag.Int("csv-rows", 1_000_000, "attribution CSV rows")
	flag.Parse()

	today := gateway.DateOf(time.Now().UTC())
	g, err := sandbox.New(sandbox.Options{Members: *members, Seed: *seed, Today: today})
	if err != nil {
		log.Fatal(err)
	}
	open := func(name string) (*os.File, *bufio.Writer, *json.Encoder) {
		f, err := os.Create(filepath.Join(*out, name))
		if err != nil {
			log.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return f, w, enc
	}
	closeAll := func(f *os.File, w *bufio.Writer) {
		if err := w.Flush(); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}

	pf, pw, penc := open("providers.ndjson")
	orgs := g.Organizations()
	for _, o := range orgs {
		must(penc.Encode(fhir.FromOrganization(o)))
	}
	prs := g.Practitioners()
	for _, p := range prs {
		must(penc.Encode(fhir.FromPractitioner(p)))
	}
	closeAll(pf, pw)

	money := fhir.Policy{Money: true}
	mf, mw, menc := open("members.ndjson")
	ef, ew, eenc := open("eob.ndjson")
	ids := make([]string, 0, *members)
	eobs := 0
	for d := range g.Members() {
		ids = append(ids, d.Member.Identifier)
		must(menc.Encode(fhir.FromMember(d.Member)))
		must(menc.Encode(fhir.FromCoverage(d.Coverage)))
		for _, c := range d.Claims {
			must(eenc.Encode(fhir.FromClaim(c.Claim, c.Lines, c.Diagnoses, c.Procedures, money)))
			eobs++
		}
		for _, p := range d.PriorAuthorizations {
			must(eenc.Encode(fhir.FromPriorAuthorization(p.PriorAuthorization, p.Items, money)))
			eobs++
		}
	}
	closeAll(mf, mw)
	closeAll(ef, ew)

	// Attribution: every member to organizations in turn, with distinct
	// period starts, until csv-rows rows.
	cf, err := os.Create(filepath.Join(*out, "attribution.csv"))
	must(err)
	cw := bufio.NewWriterSize(cf, 1<<20)
	fmt.Fprintln(cw, "member_identifier,organization_npi,practitioner_npi,period_start,period_end")
	start := gateway.NewDate(2020, 1, 1)
	for n := 0; n < *csvRows && len(ids) > 0; n++ {
		m := ids[n%len(ids)]
		round := n / len(ids)
		o := orgs[round%len(orgs)]
		s := start.AddDays(round / len(orgs))
		fmt.Fprintf(cw, "%s,%s,,%s,%s\n", m, o.NPI, s, s.AddDays(365))
	}
	must(cw.Flush())
	must(cf.Close())
	fmt.Fprintf(os.Stderr, "bench-import: %d organizations, %d practitioners, %d members, %d ExplanationOfBenefit, %d attribution rows\n",
		len(orgs), len(prs), len(ids), eobs, *csvRows)
}
