package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes content to a file named name in a fresh directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRecordsImportIssue12Files imports a file of each kind issue 12 found refused or
// wrong, each twice: it imports as it should, the second import changes nothing, and no
// output shows a raw database error or a patient's values.
func TestRecordsImportIssue12Files(t *testing.T) {
	s := newStack(t, "CHARTSCAN_MRN_SYSTEM=MAIN")
	msh := func(event, id, charset string) string {
		return "MSH|^~\\&|SIM|MAIN|CS|MAIN|20260101||ADT^" + event + "|" + id + "|P|2.5||||||" + charset
	}
	files := []struct {
		name, content string
		args          []string
		first         string // in the first import's output
		check         string // a count query that must be 1 after it
		checkArgs     []any
	}{
		{"latin1.hl7", msh("A04", "L1", "8859/1") + "\rPID|1||610001^^^MAIN^MR||M\xdcLLER^J\xd6RG||19600101|M\r",
			nil, "1 new", `SELECT count(*) FROM patients WHERE mrn = '610001' AND family = 'MÜLLER' AND given = 'JÖRG'`, nil},
		{"comment.hl7", "# exported from the simulated hospital\n" + msh("A04", "C1", "") + "\rPID|1||610002^^^MAIN^MR||QUILL^ANN\r",
			nil, "1 new", `SELECT count(*) FROM patients WHERE mrn = '610002'`, nil},
		// A34 and A39 from a simulated hospital: an unknown patient merged into the real
		// identity, which never registered; an A40 whose PID has no name.
		{"merges.hl7", strings.Join([]string{
			msh("A04", "G1", ""), "PID|1||610010^^^MAIN^MR||UNKNOWN^TRAUMA",
			msh("A34", "G2", ""), "PID|1||610011^^^MAIN^MR||REALNAME^RITA||19800202|F", "MRG|610010^^^MAIN^MR",
			msh("A04", "G3", ""), "PID|1||610012^^^MAIN^MR||TWICE^TOM",
			msh("A39", "G4", ""), "PID|1|610013^^^MAIN^MR", "MRG||||610012^^^MAIN^MR",
			msh("A04", "G5", ""), "PID|1||610014^^^MAIN^MR||DUP^DORA",
			msh("A40", "G6", ""), "PID|1||610011^^^MAIN^MR", "MRG|610014^^^MAIN^MR",
			msh("A08", "G7", ""), "PID|1||610010^^^MAIN^MR||UNKNOWN^TRAUMA^LATE",
		}, "\r") + "\r", nil, "3 merges moved 0 filed pages; 0 applied before; 1 skipped",
			`SELECT count(*) FROM patients p WHERE mrn = '610011' AND family = 'REALNAME'
			 AND (SELECT count(*) FROM patient_aliases WHERE mrn = '610011') = 2
			 AND EXISTS (SELECT 1 FROM patients WHERE mrn = '610013' AND family = 'TWICE')
			 AND NOT EXISTS (SELECT 1 FROM patients WHERE mrn IN ('610010', '610012', '610014'))`, nil},
		// MRN 12345 from two facilities: only MAIN's is the MRN.
		{"two-facilities.hl7", msh("A04", "F1", "") + "\rPID|1||12345^^^OTHER^MR~610020^^^MAIN^MR||FACILITY^FIONA\r" +
			msh("A04", "F2", "") + "\rPID|1||12345^^^OTHER^MR||OTHERONLY^OSCAR\r",
			nil, "1 skipped", `SELECT count(*) FROM patients WHERE mrn = '610020' AND NOT EXISTS (SELECT 1 FROM patients WHERE mrn = '12345')`, nil},
		{"patient.json", `{
  "resourceType": "Patient", "id": "single",
  "identifier": [{"system": "MAIN", "value": "610030"}, {"system": "OTHER", "value": "12345"}],
  "name": [{"text": "王小明"}], "birthDate": "1975"
}`, nil, "1 new", `SELECT count(*) FROM patients WHERE mrn = '610030' AND family = '王小明' AND birth_partial = '1975'`, nil},
		{"transaction.json", `{"resourceType": "Bundle", "type": "transaction", "entry": [
  {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "identifier": [{"system": "MAIN", "value": "610040"}], "name": [{"family": "Posted"}]}, "request": {"method": "POST", "url": "Patient"}},
  {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Patient", "identifier": [{"system": "MAIN", "value": "610041"}], "name": [{"family": "Replaced"}],
    "link": [{"other": {"reference": "urn:uuid:1"}, "type": "replaced-by"}]}, "request": {"method": "PUT", "url": "Patient?identifier=MAIN|610041"}}
]}`, nil, "1 patients merged into the patient their replaced-by link names",
			`SELECT count(*) FROM patient_aliases WHERE alias_mrn = '610041' AND mrn = '610040'`, nil},
		{"latin1.csv", "mrn,family,given,birth_date\n610050,Ren\xe9e,Zo\xeb,1970-01-01\n", nil, "1 new",
			`SELECT count(*) FROM patients WHERE mrn = '610050' AND family = 'Renée' AND given = 'Zoë'`, nil},
		{"iso-8859-15.csv", "mrn,family,given,birth_date\n610051,\xbcuvre,\xa4,1970\n", []string{"--encoding", "ISO-8859-15"}, "1 new",
			`SELECT count(*) FROM patients WHERE mrn = '610051' AND family = 'Œuvre'`, nil},
		{"synthea.csv", string(mustRead(t, "../../testdata/empi/synthea-patients.csv")), []string{"--map", "synthea"}, "3 new",
			`SELECT count(*) FROM patients WHERE mrn = '5A1E0C3E7F0B4C7E9A510D7E3F1B2A02' AND family = 'Vantwest320'`, nil},
		{"febrl.csv", string(mustRead(t, "../../testdata/empi/febrl.csv")), []string{"--map", "febrl"}, "4 new",
			`SELECT count(*) FROM patients WHERE mrn = 'REC0002ORG' AND birth_date = '1962-12-08'`, nil},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			path := writeFile(t, f.name, f.content)
			args := append(append([]string{"records", "import"}, f.args...), path)
			out, stderr, code := s.run(args...)
			if code != 0 || !strings.Contains(out, f.first) {
				t.Fatalf("first import: exit %d, want %q in\n%s%s", code, f.first, out, stderr)
			}
			if n := s.dbCount(f.check, f.checkArgs...); n != 1 {
				t.Errorf("after the import: %s is %d\n%s", f.check, n, out)
			}
			again, stderr, code := s.run(args...)
			if code != 0 || !strings.Contains(again, "0 new, 0 updated") || strings.Contains(again, "merged into the patient") {
				t.Errorf("second import: exit %d\n%s%s", code, again, stderr)
			}
			for _, o := range []string{out, again, stderr} {
				for _, bad := range []string{"SQLSTATE", "invalid byte sequence", "MÜLLER", "REALNAME", "OTHERONLY", "12345"} {
					if strings.Contains(o, bad) {
						t.Errorf("output shows %q:\n%s", bad, o)
					}
				}
			}
		})
	}
	// A file holding only a late update of a merged MRN imports nothing, and says why by
	// message and field only.
	out, stderr, code := s.run("records", "import", writeFile(t, "late.hl7", msh("A08", "G9", "")+"\rPID|1||610010^^^MAIN^MR||UNKNOWN^TRAUMA^LATER\r"))
	if code == 0 || !strings.Contains(out+stderr, "message 1: PID-3: MRN merged into another patient; send changes for the survivor") {
		t.Errorf("late update of a merged MRN: exit %d\n%s%s", code, out, stderr)
	}
	if n := s.dbCount(`SELECT count(*) FROM patients WHERE mrn = '610010'`); n != 0 {
		t.Error("a late update brought a merged MRN back")
	}
}

// TestRecordsImportTwoFacilities imports MRN 12345 from two facilities without a
// configured MRN system: the second facility's patient is refused as a conflict and
// reported, never merged into the first; the first facility's other identifiers are
// linked, and a page showing one of them finds the patient.
func TestRecordsImportTwoFacilities(t *testing.T) {
	s := newStack(t)
	north := writeFile(t, "north.ndjson", `{"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.1", "type": {"coding": [{"code": "MR"}]}, "value": "12345"}, {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-1234"}], "name": [{"family": "Northrop"}]}`+"\n")
	south := writeFile(t, "south.hl7", "MSH|^~\\&|ADT|SOUTH|CS|MAIN|2026||ADT^A04|S1|P|2.5\rPID|1||12345^^^urn:oid:2.2^MR||SOUTHWORTH^SAM\r")
	s.mustRun("records", "import", north)
	out, stderr, code := s.run("records", "import", south)
	if code == 0 || !strings.Contains(out+stderr, "message 1: PID-3: MRN belongs to a patient of another assigning authority") {
		t.Errorf("the other facility's 12345: exit %d\n%s%s", code, out, stderr)
	}
	if n := s.dbCount(`SELECT count(*) FROM patients WHERE mrn = '12345' AND family = 'Northrop' AND mrn_system = 'urn:oid:1.1'`); n != 1 {
		t.Error("the first facility's patient changed")
	}
	if n := s.dbCount(`SELECT count(*) FROM patient_identifiers WHERE value = '999001234' AND mrn = '12345'`); n != 1 {
		t.Error("the other identifier was not linked")
	}
	csv := writeFile(t, "south.ndjson", `{"resourceType": "Patient", "identifier": [{"system": "urn:oid:2.2", "type": {"coding": [{"code": "MR"}]}, "value": "12345"}], "name": [{"family": "Southworth"}]}`+"\n"+
		`{"resourceType": "Patient", "identifier": [{"system": "urn:oid:2.2", "type": {"coding": [{"code": "MR"}]}, "value": "67890"}], "name": [{"family": "Other"}]}`+"\n")
	out = s.mustRun("records", "import", csv)
	if !strings.Contains(out, "1 records not imported: their MRN belongs to a patient of another system or assigning authority") || !strings.Contains(out, "1 new") {
		t.Errorf("bulk import from the other facility:\n%s", out)
	}
}
