package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// empiRecord is one record of a test EMPI file; an empty field is left out of the file.
type empiRecord struct {
	mrn, family, given, birth, sex, phone string
	textName                              bool // FHIR: the name only as name.text
}

// incompleteEMPI returns n records. One in twenty lacks, in turn, its family name, its
// given name or its birth date (5%); one in twenty has a birth date known only to the
// year or the month; one in twenty gives its name only as FHIR name.text; the records
// at 5, 72 and 139 have no MRN and cannot be imported.
func incompleteEMPI(n int) []empiRecord {
	families := []string{"Qaxley", "Vorbitt", "Zembrano", "Kiltridge", "Usherwell", "Pommerant"}
	givens := []string{"Alvarette", "Bexley", "Corvina", "Dashiell", "Elowen", "Fenwick", "Gwendara"}
	out := make([]empiRecord, n)
	for i := range out {
		r := empiRecord{
			mrn:    fmt.Sprintf("7%08d", i),
			family: families[i%len(families)] + strings.Repeat("e", i/len(families)%4),
			given:  givens[i%len(givens)],
			birth:  fmt.Sprintf("19%02d-%02d-%02d", 40+i%60, 1+i%12, 1+i%28),
			sex:    []string{"female", "male"}[i%2],
			phone:  fmt.Sprintf("555-%04d", i),
		}
		switch i % 20 {
		case 3:
			switch i / 20 % 3 {
			case 0:
				r.family = ""
			case 1:
				r.given = ""
			case 2:
				r.birth = ""
			}
		case 11:
			r.birth = r.birth[:4+3*(i/20%2)]
		case 7:
			r.textName = true
		}
		if i%67 == 5 {
			r.mrn = ""
		}
		out[i] = r
	}
	return out
}

// writeEMPI writes records in one of the import formats and returns the path.
func writeEMPI(t *testing.T, format string, recs []empiRecord) string {
	t.Helper()
	var b strings.Builder
	patient := func(r empiRecord) map[string]any {
		p := map[string]any{"resourceType": "Patient", "gender": r.sex,
			"telecom": []map[string]string{{"system": "phone", "value": r.phone}}}
		if r.mrn != "" {
			p["identifier"] = []map[string]any{{"type": map[string]any{"coding": []map[string]string{{"code": "MR"}}}, "value": r.mrn}}
		}
		name := map[string]any{"use": "official"}
		if r.textName {
			name["text"] = strings.TrimSpace(r.given + " " + r.family)
		} else {
			if r.family != "" {
				name["family"] = r.family
			}
			if r.given != "" {
				name["given"] = []string{r.given}
			}
		}
		p["name"] = []any{map[string]any{"use": "nickname", "given": []string{"Nick"}}, name}
		if r.birth != "" {
			p["birthDate"] = r.birth
		}
		return p
	}
	switch format {
	case "csv":
		b.WriteString("mrn,family,given,birth_date,sex,phone\n")
		for _, r := range recs {
			fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s\n", r.mrn, r.family, r.given, r.birth, r.sex, r.phone)
		}
	case "ndjson":
		for _, r := range recs {
			j, _ := json.Marshal(patient(r))
			b.Write(append(j, '\n'))
		}
	case "bundle":
		var entries []any
		for _, r := range recs {
			entries = append(entries, map[string]any{"fullUrl": "urn:uuid:x", "resource": patient(r)})
		}
		entries = append(entries, map[string]any{"resource": map[string]any{"resourceType": "Organization", "name": "Test"}})
		j, _ := json.MarshalIndent(map[string]any{"resourceType": "Bundle", "type": "collection", "entry": entries}, "", " ")
		b.Write(j)
	}
	path := filepath.Join(t.TempDir(), "empi."+format)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dbCount runs a count query on the test's database.
func (s *stack) dbCount(query string, args ...any) int {
	s.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.getenv("DATABASE_URL"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// noPHI fails the test if out shows any value of the records.
func noPHI(t *testing.T, what, out string, recs []empiRecord) {
	t.Helper()
	for _, r := range recs {
		for _, v := range []string{r.mrn, r.family, r.given, r.birth, r.phone} {
			if len(v) > 3 && strings.Contains(out, v) {
				t.Errorf("%s shows the patient value %q:\n%s", what, v, out)
				return
			}
		}
	}
}

// TestRecordsImportIncompleteEMPI imports, in each format, an EMPI where 5% of the
// records lack a family name, given name or birth date and a few have no MRN: every
// record with an MRN is imported as it is, twice without change, and each record
// without one is named by its line or entry.
func TestRecordsImportIncompleteEMPI(t *testing.T) {
	recs := incompleteEMPI(200)
	want := struct{ patients, noFamily, noGiven, noBirth, partial int }{}
	for _, r := range recs {
		if r.mrn == "" {
			continue
		}
		want.patients++
		if r.family == "" {
			want.noFamily++
		}
		if r.given == "" {
			want.noGiven++
		}
		if r.birth == "" {
			want.noBirth++
		}
		if len(r.birth) == 4 || len(r.birth) == 7 {
			want.partial++
		}
	}
	for _, tc := range []struct {
		format string
		where  func(i int) string // where a record is in the file
	}{
		{"csv", func(i int) string { return fmt.Sprintf("line %d", i+2) }},
		{"ndjson", func(i int) string { return fmt.Sprintf("line %d", i+1) }},
		{"bundle", func(i int) string { return fmt.Sprintf("entry[%d]", i) }},
	} {
		t.Run(tc.format, func(t *testing.T) {
			s := newStack(t)
			path := writeEMPI(t, tc.format, recs)
			first := s.mustRun("records", "import", path)
			if summary := fmt.Sprintf("%d records: %d new, 0 updated, 0 unchanged, 0 repeated in the file; 3 skipped", want.patients, want.patients); !strings.Contains(first, summary) {
				t.Errorf("first import:\n%s\nwant %q", first, summary)
			}
			for i, r := range recs {
				if r.mrn == "" && !strings.Contains(first, "  "+tc.where(i)+": no MRN\n") {
					t.Errorf("first import does not name record %d (%s: no MRN):\n%s", i, tc.where(i), first)
				}
			}
			noPHI(t, "the import report", first, recs)
			second := s.mustRun("records", "import", path)
			if summary := fmt.Sprintf("0 new, 0 updated, %d unchanged, 0 repeated in the file; 3 skipped", want.patients); !strings.Contains(second, summary) {
				t.Errorf("second import:\n%s\nwant %q", second, summary)
			}
			for _, c := range []struct {
				what  string
				query string
				want  int
			}{
				{"patients", `SELECT count(*) FROM patients`, want.patients},
				{"without a family name", `SELECT count(*) FROM patients WHERE family = ''`, want.noFamily},
				{"without a given name", `SELECT count(*) FROM patients WHERE given = ''`, want.noGiven},
				{"without a birth date", `SELECT count(*) FROM patients WHERE birth_date IS NULL AND birth_partial IS NULL`, want.noBirth},
				{"with a partial birth date", `SELECT count(*) FROM patients WHERE birth_partial IS NOT NULL AND birth_year IS NOT NULL`, want.partial},
				{"named as in the file", `SELECT count(*) FROM patients WHERE family = ANY($1)`, 0},
			} {
				args := []any{}
				if strings.Contains(c.query, "$1") {
					args = append(args, []string{"Nick"}) // the nickname never wins over the official name
				}
				if got := s.dbCount(c.query, args...); got != c.want {
					t.Errorf("%s: %d, want %d", c.what, got, c.want)
				}
			}
			// Every record with an MRN is stored with the values it has, none invented.
			for _, r := range recs {
				if r.mrn == "" {
					continue
				}
				n := s.dbCount(`SELECT count(*) FROM patients p WHERE mrn = $1 AND family = $2 AND given = $3 AND `+
					`coalesce(to_char(birth_date, 'YYYY-MM-DD'), birth_partial, '') = $4`, r.mrn, r.family, r.given, r.birth)
				if n != 1 {
					t.Errorf("record %s is not stored as it is in the file", r.mrn)
					break
				}
			}
		})
	}
}

// TestRecordsImportBrokenRecordAndStrict: one broken record among good ones is reported
// and the good ones imported; with --strict a file holding a broken record is refused
// and nothing changes, whichever file of the command holds it.
func TestRecordsImportBrokenRecordAndStrict(t *testing.T) {
	s := newStack(t)
	recs := incompleteEMPI(60)[:20]
	recs[5].mrn = "700000005" // no record of these lacks an MRN
	broken := append(append([]empiRecord{}, recs[:10]...), empiRecord{mrn: "799999999", family: "Brokenby", given: "Ivo", birth: "1970-02-30"})
	broken = append(broken, recs[10:]...)
	path := writeEMPI(t, "csv", broken)
	out := s.mustRun("records", "import", path)
	if !strings.Contains(out, "20 records: 20 new, 0 updated, 0 unchanged, 0 repeated in the file; 1 skipped") ||
		!strings.Contains(out, "  line 12: invalid birth date\n") {
		t.Errorf("import with one broken record:\n%s", out)
	}
	noPHI(t, "the import report", out, broken)

	// The next file adds five patients, changes a phone number and holds a record
	// without an MRN: refused whole.
	next := incompleteEMPI(60)[40:45]
	changed := recs[0]
	changed.phone = "555-9999"
	next = append(next, changed, empiRecord{family: "Nombre", given: "Sin", birth: "1980-01-01"})
	bad := writeEMPI(t, "ndjson", next)
	good := writeEMPI(t, "csv", incompleteEMPI(60)[50:52])
	before := s.dbCount(`SELECT count(*) FROM patients`)
	for _, args := range [][]string{{bad}, {good, bad}} {
		stdout, stderr, code := s.run(append([]string{"records", "import", "--strict"}, args...)...)
		if code == 0 {
			t.Errorf("records import --strict %v: exit 0, want a refusal", args)
		}
		if !strings.Contains(stderr, "refused (--strict): 1 records in 1 files cannot be imported; nothing was changed") ||
			!strings.Contains(stdout, bad+": line 7: no MRN\n") {
			t.Errorf("records import --strict %v:\nstdout %s\nstderr %s", args, stdout, stderr)
		}
		noPHI(t, "the refusal", stdout+stderr, next)
		if after := s.dbCount(`SELECT count(*) FROM patients`); after != before {
			t.Errorf("--strict %v: %d patients before, %d after", args, before, after)
		}
		if n := s.dbCount(`SELECT count(*) FROM patients WHERE phone = '555-9999'`); n != 0 {
			t.Errorf("--strict %v: the changed record was updated", args)
		}
	}
	// Without --strict the same file imports what it can and exits 0.
	out = s.mustRun("records", "import", bad)
	if !strings.Contains(out, "6 records: 5 new, 1 updated, 0 unchanged, 0 repeated in the file; 1 skipped") {
		t.Errorf("import without --strict:\n%s", out)
	}
	// --strict imports a file without a bad record.
	if out := s.mustRun("records", "import", "--strict", good); !strings.Contains(out, "2 records: 2 new") {
		t.Errorf("import --strict of a good file:\n%s", out)
	}
	// HL7 v2 is checked whole too: a good file imports, one with a bad message is refused.
	adt := func(pid string) string {
		path := filepath.Join(t.TempDir(), "adt.hl7")
		os.WriteFile(path, []byte("MSH|^~\\&|ADT|X|CHARTSCAN|X|20260101||ADT^A04|1|P|2.5\r"+pid+"\r"), 0o644)
		return path
	}
	if out := s.mustRun("records", "import", "--strict", adt("PID|1||733333331^^^X^MR||||1975|F")); !strings.Contains(out, "1 patient messages: 1 new") {
		t.Errorf("import --strict of a good HL7 file:\n%s", out)
	}
	before = s.dbCount(`SELECT count(*) FROM patients`)
	fresh := writeEMPI(t, "csv", incompleteEMPI(60)[55:57])
	if stdout, stderr, code := s.run("records", "import", "--strict", fresh, adt("PID|1||^^^X^MR||DOE^JANE||19750314|F")); code == 0 ||
		!strings.Contains(stdout, "message 1: PID-3: no MRN") || !strings.Contains(stderr, "refused (--strict)") {
		t.Errorf("import --strict of a bad HL7 file: exit %d\n%s%s", code, stdout, stderr)
	}
	if after := s.dbCount(`SELECT count(*) FROM patients`); after != before {
		t.Errorf("--strict with a bad HL7 file: %d patients before, %d after", before, after)
	}
	// A file of which nothing can be imported fails, strict or not.
	none := writeEMPI(t, "csv", []empiRecord{{family: "Nombre", given: "Sin"}, {mrn: "1", birth: "1980-13-01"}})
	before = s.dbCount(`SELECT count(*) FROM patients`)
	_, stderr, code := s.run("records", "import", none)
	if code == 0 || !strings.Contains(stderr, "no patient record could be imported: 2 skipped (line 2: no MRN; line 3: invalid birth date)") {
		t.Errorf("import of a file without an importable record: exit %d\n%s", code, stderr)
	}
	if after := s.dbCount(`SELECT count(*) FROM patients`); after != before {
		t.Errorf("a file without an importable record changed the patients: %d before, %d after", before, after)
	}
}

// TestWebEMPIImportListsSkippedRecords imports through the admin's EMPI page, which uses
// the CLI's code: the page counts and lists the skipped records, without their values,
// and a file with nothing to import is an error on the page.
func TestWebEMPIImportListsSkippedRecords(t *testing.T) {
	s := newStack(t)
	srv := s.startServe()
	ada := signedIn(t, srv, "ada", s.addUser("ada", "admin"))
	recs := incompleteEMPI(80)
	post := func(data []byte) (int, string) {
		t.Helper()
		csrf := ada.pageCSRF("/admin/empi")
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("file", "empi.csv")
		fw.Write(data)
		mw.Close()
		return ada.do("POST", "/admin/empi?csrf="+csrf, readerBody{&b}, "Content-Type", mw.FormDataContentType())
	}
	st, body := post(mustRead(t, writeEMPI(t, "csv", recs)))
	if st != http.StatusOK || !strings.Contains(body, "78 records: 78 new, 0 updated, 0 unchanged, 0 repeated in the file; 2 skipped.") ||
		!strings.Contains(body, "<li>line 7: no MRN</li>") || !strings.Contains(body, "<li>line 74: no MRN</li>") {
		t.Errorf("EMPI page after the import: %d\n%s", st, body)
	}
	noPHI(t, "the EMPI page", body, recs)
	st, body = post([]byte("mrn,family,given,birth_date\n,Nombre,Sin,1980-01-01\n"))
	if st != http.StatusBadRequest || !strings.Contains(body, "no patient record could be imported: 1 skipped (line 2: no MRN)") {
		t.Errorf("EMPI page after a file without an importable record: %d\n%s", st, body)
	}
	if n := s.dbCount(`SELECT count(*) FROM patients`); n != 78 {
		t.Errorf("%d patients, want 78", n)
	}
	// The API reports the same, the skipped records as data.
	api := apiClient(t, srv, s.token("ada"))
	st, body = api.do("POST", "/api/v1/empi/import?name=empi.csv", readerBody{bytes.NewReader(mustRead(t, writeEMPI(t, "csv", recs)))},
		"Content-Type", "text/csv")
	var got struct {
		Read, Unchanged, Skipped int
		SkippedRecords           []struct{ Where, Reason string } `json:"skipped_records"`
	}
	if st != http.StatusOK {
		t.Fatalf("API import: %d %s", st, body)
	}
	decodeJSON(t, body, &got)
	want := []struct{ Where, Reason string }{{"line 7", "no MRN"}, {"line 74", "no MRN"}}
	if got.Read != 78 || got.Unchanged != 78 || got.Skipped != 2 || !slices.Equal(got.SkippedRecords, want) {
		t.Errorf("API import: %s", body)
	}
}
