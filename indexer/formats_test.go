package indexer

import (
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/chartscan/chartscan"
)

// readWith reads in with opts and returns the patients, the bad records and the
// replaced-by links ("merged>survivor").
func readWith(t *testing.T, in io.Reader, opts RecordOptions) ([]chartscan.Patient, []BadRecord, []string) {
	t.Helper()
	var ps []chartscan.Patient
	var bad []BadRecord
	var links []string
	opts.Replaced = func(merged, survivor string) error {
		links = append(links, merged+">"+survivor)
		return nil
	}
	err := ReadRecordsWith(in, opts, func(p chartscan.Patient) error {
		ps = append(ps, p)
		return nil
	}, func(b BadRecord) error {
		bad = append(bad, b)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadRecordsWith: %v", err)
	}
	return ps, bad, links
}

func mrnsOf(ps []chartscan.Patient) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.MRN)
	}
	return out
}

// TestReadRecordsFHIRShapes reads the FHIR files issue 12 found refused: a single
// Patient, a transaction Bundle, a searchset of document and message Bundles, and
// Patient.link replaced-by.
func TestReadRecordsFHIRShapes(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		mrns  []string
		links []string
		bad   []BadRecord
	}{
		{"a single Patient, pretty-printed", `{
  "resourceType": "Patient",
  "id": "example",
  "identifier": [{"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}, "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
  "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
  "gender": "male",
  "birthDate": "1974-12-25"
}`, []string{"12345"}, nil, nil},
		{"a transaction", `{"resourceType": "Bundle", "type": "transaction", "entry": [
  {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": {"resourceType": "Patient", "identifier": [{"value": "T1"}], "name": [{"family": "Post"}]},
   "request": {"method": "POST", "url": "Patient"}},
  {"resource": {"resourceType": "Patient", "id": "p2", "identifier": [{"value": "T2"}], "name": [{"family": "Put"}]},
   "request": {"method": "PUT", "url": "Patient/p2"}},
  {"request": {"method": "DELETE", "url": "Patient/p3"}},
  {"resource": {"resourceType": "Observation", "status": "final"}, "request": {"method": "POST", "url": "Observation"}}
]}`, []string{"T1", "T2"}, nil, nil},
		{"a searchset of a document and a message", `{"resourceType": "Bundle", "type": "searchset", "entry": [
  {"resource": {"resourceType": "Bundle", "type": "document", "entry": [
    {"resource": {"resourceType": "Composition", "status": "final"}},
    {"resource": {"resourceType": "Patient", "identifier": [{"value": "D1"}], "name": [{"text": "Ada Lovelace"}]}}]}},
  {"resource": {"resourceType": "Bundle", "type": "message", "entry": [
    {"resource": {"resourceType": "MessageHeader"}},
    {"resource": {"resourceType": "Patient", "name": [{"family": "NoMRN"}]}}]}}
]}`, []string{"D1"}, nil, []BadRecord{{Where: "entry[1].resource.entry[1]", Reason: "no MRN"}}},
		{"Patient.link replaced-by, by id, fullUrl and identifier", `{"resourceType": "Bundle", "type": "collection", "entry": [
  {"fullUrl": "urn:uuid:aaa", "resource": {"resourceType": "Patient", "id": "new", "identifier": [{"value": "S1"}]}},
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "OLD1"}], "active": false,
    "link": [{"other": {"reference": "Patient/new"}, "type": "replaced-by"}]}},
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "OLD2"}],
    "link": [{"other": {"reference": "urn:uuid:aaa"}, "type": "replaced-by"}, {"other": {"reference": "Patient/x"}, "type": "seealso"}]}},
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "OLD3"}],
    "link": [{"other": {"identifier": {"value": "S9"}}, "type": "replaced-by"}]}},
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "OLD4"}],
    "link": [{"other": {"reference": "Patient/elsewhere"}, "type": "replaced-by"}]}}
]}`, []string{"S1", "OLD1", "OLD2", "OLD3", "OLD4"}, []string{"OLD1>S1", "OLD2>S1", "OLD3>S9"},
			[]BadRecord{{Where: "entry[4]", Reason: "Patient.link names a patient this file does not hold"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, bad, links := readWith(t, strings.NewReader(tt.in), RecordOptions{})
			if diff := cmp.Diff(tt.mrns, mrnsOf(ps)); diff != "" {
				t.Errorf("MRNs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.links, links); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.bad, bad); diff != "" {
				t.Errorf("bad records (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadRecordsMRNSystem: with the facility's system configured, the MRN is its
// identifier; the same number from another facility is no MRN, and a Patient of another
// facility only is a bad record, never filed under that number.
func TestReadRecordsMRNSystem(t *testing.T) {
	in := `{"resourceType": "Patient", "identifier": [{"system": "http://other.example/mrn", "type": {"coding": [{"code": "MR"}]}, "value": "12345"}, {"system": "urn:oid:1.2.3.4", "value": "777"}]}
{"resourceType": "Patient", "identifier": [{"system": "http://other.example/mrn", "value": "12345"}], "name": [{"family": "Elsewhere"}]}
`
	ps, bad, _ := readWith(t, strings.NewReader(in), RecordOptions{MRNSystem: "1.2.3.4"})
	if diff := cmp.Diff([]string{"777"}, mrnsOf(ps)); diff != "" {
		t.Errorf("MRNs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]BadRecord{{Where: "line 2", Reason: "no identifier of the facility's MRN system"}}, bad); diff != "" {
		t.Errorf("bad (-want +got):\n%s", diff)
	}
	ps, _, _ = readWith(t, strings.NewReader(in), RecordOptions{})
	if diff := cmp.Diff([]string{"12345", "12345"}, mrnsOf(ps)); diff != "" {
		t.Errorf("without a system (-want +got):\n%s", diff)
	}
}

// TestReadRecordsEncodings reads a CSV in Latin-1, Windows-1252 and UTF-8, detected or
// named, one byte at a time so that no multi-byte character survives only by luck.
func TestReadRecordsEncodings(t *testing.T) {
	const head = "mrn,family,given,birth_date\n"
	tests := []struct {
		name, in, encoding string
		family, given      string
	}{
		{"utf-8", head + "1,Müller,Zoë,1970-01-01\n", "", "Müller", "Zoë"},
		{"utf-8 with a BOM", "\xef\xbb\xbf" + head + "1,Müller,Zoë,1970-01-01\n", "", "Müller", "Zoë"},
		{"latin-1 detected", head + "1,M\xfcller,Zo\xeb,1970-01-01\n", "", "Müller", "Zoë"},
		{"windows-1252 detected", head + "1,O\x92Neill,Ren\xe9e,1970-01-01\n", "", "O’Neill", "Renée"},
		{"latin1 named", head + "1,M\xfcller,Zo\xeb,1970-01-01\n", "latin1", "Müller", "Zoë"},
		{"iso-8859-15 named", head + "1,\xa4uro,Zo\xeb,1970-01-01\n", "ISO-8859-15", "€uro", "Zoë"},
		{"utf-8 named", head + "1,Müller,Zoë,1970-01-01\n", "utf-8", "Müller", "Zoë"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, bad, _ := readWith(t, iotest.OneByteReader(strings.NewReader(tt.in)), RecordOptions{Encoding: tt.encoding})
			if len(bad) > 0 || len(ps) != 1 {
				t.Fatalf("read %d patients, bad %v", len(ps), bad)
			}
			if ps[0].Family != tt.family || ps[0].Given != tt.given {
				t.Errorf("name %q %q, want %q %q", ps[0].Family, ps[0].Given, tt.family, tt.given)
			}
		})
	}
	err := ReadRecordsWith(strings.NewReader(head), RecordOptions{Encoding: "klingon"}, func(chartscan.Patient) error { return nil }, nil)
	if chartscan.ErrorMessage(err) != `unknown encoding "klingon" (want e.g. utf-8, latin1, windows-1252, iso-8859-15)` {
		t.Errorf("unknown encoding: %v", err)
	}
}

// TestReadRecordsCSVLayouts reads Synthea's patients.csv and a FEBRL data set with
// their named mappings, and a mapping given column by column.
func TestReadRecordsCSVLayouts(t *testing.T) {
	open := func(name string) *os.File {
		f, err := os.Open("../testdata/empi/" + name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	synthea, err := ParseColumnMap("synthea")
	if err != nil {
		t.Fatal(err)
	}
	ps, bad, _ := readWith(t, open("synthea-patients.csv"), RecordOptions{Columns: synthea})
	if len(bad) != 0 || len(ps) != 3 {
		t.Fatalf("synthea: %d patients, bad %v", len(ps), bad)
	}
	want := chartscan.Patient{MRN: "5A1E0C3E7F0B4C7E9A510D7E3F1B2A01", Family: "Quintanilla903", Given: "Tomás Andrés512", BirthDate: "1988-04-21",
		Sex: "male", Street: "12 Sample Way Unit 3", City: "Exampleton", State: "Massachusetts", Postcode: "01013"}
	if diff := cmp.Diff(want, ps[0]); diff != "" {
		t.Errorf("synthea patient (-want +got):\n%s", diff)
	}
	if ps[2].BirthDate != "2019-07" {
		t.Errorf("synthea partial birth date %q", ps[2].BirthDate)
	}
	febrl, _ := ParseColumnMap("FEBRL")
	ps, bad, _ = readWith(t, open("febrl.csv"), RecordOptions{Columns: febrl})
	if len(bad) != 0 || len(ps) != 4 {
		t.Fatalf("febrl: %d patients, bad %v", len(ps), bad)
	}
	want = chartscan.Patient{MRN: "REC0001ORG", Family: "quenby", Given: "maribel", BirthDate: "1951-03-14", Sex: "unknown",
		Street: "sample street", City: "exampleton hills", Postcode: "4223", State: "nsw"}
	if diff := cmp.Diff(want, ps[0]); diff != "" {
		t.Errorf("febrl patient (-want +got):\n%s", diff)
	}
	if p := ps[3]; p.Given != "" || p.BirthDate != "" {
		t.Errorf("febrl record without a given name and birth date: %+v", p)
	}
	own, err := ParseColumnMap("mrn=Patient No, family=Surname\n# a comment\ngiven=Forename")
	if err != nil {
		t.Fatal(err)
	}
	ps, _, _ = readWith(t, strings.NewReader("Patient No;Surname;Forename;Ward\n88;Ng;Wai;3\n"), RecordOptions{Columns: own})
	if len(ps) != 1 || ps[0].MRN != "88" || ps[0].Family != "Ng" || ps[0].Given != "Wai" {
		t.Errorf("own mapping: %+v", ps)
	}
	for _, bad := range []string{"family=LAST", "mrn=Id,nickname=NICK", "mrn"} {
		if _, err := ParseColumnMap(bad); chartscan.ErrorCode(err) != chartscan.EInvalid {
			t.Errorf("ParseColumnMap(%q) = %v, want an invalid-input error", bad, err)
		}
	}
}

// TestReadRecordsDropsBytesTheDatabaseRefuses: a NUL or a broken UTF-8 sequence in a
// field (which PostgreSQL would refuse, quoting the record) is dropped or replaced.
func TestReadRecordsDropsBytesTheDatabaseRefuses(t *testing.T) {
	ps, bad, _ := readWith(t, strings.NewReader("{\"resourceType\": \"Patient\", \"identifier\": [{\"value\": \"1\\u0000\"}], \"name\": [{\"family\": \"Nu\\u0000ll\"}]}\n"), RecordOptions{})
	if len(bad) != 0 || len(ps) != 1 || ps[0].Family != "Null" || ps[0].MRN != "1" {
		t.Errorf("NUL in a record: %+v, bad %v", ps, bad)
	}
}
