package deliver

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
)

// The test content is visibly synthetic: TESTPATIENT, Example; OIDs under 2.999 (the
// ISO example arc).
const (
	testOID       = "2.999.1"
	testMRNSystem = "urn:oid:2.999.1.1"
)

var (
	testCreated = time.Date(2024, 3, 6, 14, 30, 0, 0, time.UTC)
	testNow     = time.Date(2024, 3, 6, 15, 0, 0, 0, time.FixedZone("", -5*3600))
)

// testPDF is a small PDF-looking payload; its bytes differ by seed.
func testPDF(seed string) []byte {
	return []byte("%PDF-1.7\n% chartscan test document " + seed + "\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
}

// testDoc returns a synthetic progress note, version 1.
func testDoc() Document {
	return Document{
		ID:      "TESTDOC-0001",
		Version: 1,
		Patient: Patient{MRN: "TEST900001", MRNSystem: testMRNSystem, Family: "TESTPATIENT", Given: "Example",
			BirthDate: "1970-01-01", Sex: "female"},
		DocumentType:  chartscan.DocTypeProgressNote,
		DateOfService: "2024-03-05",
		Created:       testCreated,
		PDF:           testPDF("one"),
		Facility:      Facility{Name: "TESTHOSPITAL", OID: testOID, ReceivingApp: "TESTEHR", ReceivingFacility: "TESTHOSPITAL"},
	}
}

// testReplacement returns version 2 of testDoc, replacing version 1.
func testReplacement(inError bool) Document {
	d := testDoc()
	d.Version = 2
	d.DocumentType = chartscan.DocTypeDischargeSummary
	d.PDF = testPDF("two")
	d.Replaces = Replaced{ID: d.ID, Version: 1, EnteredInError: inError, Reason: "Reviewer corrected the type"}
	return d
}

func TestLOINC(t *testing.T) {
	want := map[string][2]string{
		chartscan.DocTypeProgressNote:     {"11506-3", "Progress note"},
		chartscan.DocTypeDischargeSummary: {"18842-5", "Discharge summary"},
		chartscan.DocTypeLab:              {"11502-2", "Laboratory report"},
		chartscan.DocTypeRadiology:        {"18748-4", "Diagnostic imaging study"},
		chartscan.DocTypeOperative:        {"11504-8", "Surgical operation note"},
		chartscan.DocTypeConsent:          {"59284-0", "Consent Document"},
		chartscan.DocTypeNursing:          {"34746-8", "Nurse Note"},
	}
	for typ, w := range want {
		code, display, ok := LOINC(typ)
		if !ok || code != w[0] || display != w[1] {
			t.Errorf("LOINC(%q) = %q, %q, %v; want %q, %q", typ, code, display, ok, w[0], w[1])
		}
	}
	if len(docTypes) != len(want) {
		t.Errorf("%d document types mapped, %d tested", len(docTypes), len(want))
	}
	for _, typ := range []string{"", "unknown", "nursing_note", "Progress_Note"} {
		if code, _, ok := LOINC(typ); ok {
			t.Errorf("LOINC(%q) = %q; want none (text only)", typ, code)
		}
	}
	// Every document type the indexer can read has a code.
	for _, typ := range []string{chartscan.DocTypeProgressNote, chartscan.DocTypeDischargeSummary, chartscan.DocTypeLab,
		chartscan.DocTypeRadiology, chartscan.DocTypeOperative, chartscan.DocTypeConsent, chartscan.DocTypeNursing} {
		if _, _, ok := LOINC(typ); !ok {
			t.Errorf("document type %q has no LOINC code", typ)
		}
	}
}

func TestHL7DocType(t *testing.T) {
	var f Facility
	for typ, want := range map[string]string{
		chartscan.DocTypeProgressNote: "PR", chartscan.DocTypeDischargeSummary: "DS", chartscan.DocTypeRadiology: "DI",
		chartscan.DocTypeOperative: "OP", chartscan.DocTypeLab: "LAB", chartscan.DocTypeConsent: "CONSENT",
		chartscan.DocTypeNursing: "NURSING", "": "SCAN", "other": "SCAN",
	} {
		if got := f.HL7DocType(typ); got != want {
			t.Errorf("HL7DocType(%q) = %q, want %q", typ, got, want)
		}
	}
	f.HL7DocTypes = map[string]string{chartscan.DocTypeLab: "LR", "": "MISC", chartscan.DocTypeConsent: " "}
	for typ, want := range map[string]string{chartscan.DocTypeLab: "LR", "": "MISC", "other": "MISC", chartscan.DocTypeConsent: "CONSENT", chartscan.DocTypeProgressNote: "PR"} {
		if got := f.HL7DocType(typ); got != want {
			t.Errorf("with the facility's table, HL7DocType(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestParseACK(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		code      string
		controlID string
		text      string
	}{
		{"accept", "MSH|^~\\&|EHR|HOSP|CHARTSCAN|TEST|20240306||ACK^T02^ACK|A1|P|2.5.1\rMSA|AA|C1\r", "AA", "C1", ""},
		{"error with MSA-3", "MSH|^~\\&|EHR|HOSP|CHARTSCAN|TEST|20240306||ACK|A1|P|2.5.1\rMSA|AE|C2|Unknown patient\r", "AE", "C2", "Unknown patient"},
		{"reject, lower case", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|ar|C3|Unsupported event\r", "AR", "C3", "Unsupported event"},
		{"commit accept", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|CA|C4\r", "CA", "C4", ""},
		{"commit error", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|CE|C5|Queue full\r", "CE", "C5", "Queue full"},
		{"commit reject", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|CR|C6\r", "CR", "C6", ""},
		{"v2.5 ERR adds location and user message", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|AE|C7|Application Error\rERR||PID^1^3|204^Unknown key identifier^HL70357|E||||No patient with this MRN\r",
			"AE", "C7", "Application Error; PID-3: No patient with this MRN"},
		{"v2.5 ERR-3 text when there is no ERR-8", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|AE|C8\rERR||TXA^1^12|205^Duplicate key identifier^HL70357|E\r",
			"AE", "C8", "TXA-12: Duplicate key identifier"},
		{"v2.3 ERR-1", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.3\rMSA|AR|C9\rERR|MSH^1^9^200&Unsupported message type&HL70357\r",
			"AR", "C9", "MSH-9: Unsupported message type"},
		{"escapes decoded", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|AE|C10|Bad \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ value\\.br\\here\r", "AE", "C10", `Bad | ^ & ~ \ value here`},
		{"newlines, MLLP framing and a BOM", "\x0b\xef\xbb\xbfMSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\nMSA|AA|C11\n\x1c\r", "AA", "C11", ""},
		{"other delimiters", "MSH#*~!@#EHR#HOSP####ACK#A1#P#2.5.1\rMSA#AE#C12#Missing !F! field*two\r", "AE", "C12", "Missing # field*two"},
		{"Windows-1252 text", "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|AE|C13|Patient \xe9tranger\r", "AE", "C13", "Patient étranger"},
		{"the repository's own acknowledgement", string(indexer.HL7Ack(&indexer.HL7Message{ControlID: "C14", Event: "T02", Version: "2.5.1"}, indexer.AckError,
			&indexer.HL7Error{Segment: "PID", Seq: 1, Field: 3, Code: 101, Reason: "no MRN"}, "A14", testNow)), "AE", "C14", "PID-3: no MRN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ReadACK([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			want := Ack{Code: tt.code, ControlID: tt.controlID, Text: tt.text}
			if diff := cmp.Diff(want, a); diff != "" {
				t.Errorf("ReadACK (-want +got):\n%s", diff)
			}
			code, text, err := ParseACK([]byte(tt.in))
			if err != nil || code != tt.code || text != tt.text {
				t.Errorf("ParseACK = %q, %q, %v", code, text, err)
			}
			if a.Accepted() != (tt.code == "AA" || tt.code == "CA") {
				t.Errorf("Accepted() = %v for %s", a.Accepted(), tt.code)
			}
		})
	}
}

func TestParseACKRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         "",
		"not HL7":       "HTTP/1.1 200 OK\r\n\r\nTESTPATIENT",
		"no MSA":        "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rERR||PID^1^3\r",
		"bad code":      "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA|OK|C1|TESTPATIENT\r",
		"empty code":    "MSH|^~\\&|EHR|HOSP|||20240306||ACK|A1|P|2.5.1\rMSA||C1\r",
		"short MSH":     "MSH|^~",
		"MSA in header": "MSA|AA|C1\r",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := ParseACK([]byte(in))
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "TESTPATIENT") || strings.Contains(err.Error(), "C1") {
				t.Errorf("the error quotes the message: %v", err)
			}
			if chartscan.ErrorCode(err) != chartscan.EInvalid {
				t.Errorf("error code %q, want invalid", chartscan.ErrorCode(err))
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		`TESTPATIENT|A^B&C~D\E`:    `TESTPATIENT\F\A\S\B\T\C\R\D\E\E`,
		"two\r\nlines\tand\x00nul": "two  lines and nul",
		"  Example  ":              "Example",
		"Ünïcödé":                  "Ünïcödé",
		"bad \xff byte":            "bad \uFFFD byte",
		`\F\`:                      `\E\F\E\`,
	} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMDMOriginal(t *testing.T) {
	d := testDoc()
	got, err := MDM(d, "CS0001", testNow)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(d.PDF)
	want := "MSH|^~\\&|CHARTSCAN|TESTHOSPITAL^2.999.1^ISO|TESTEHR|TESTHOSPITAL|20240306150000-0500||MDM^T02^MDM_T02|CS0001|P|2.5.1||||||UNICODE UTF-8\r" +
		"EVN|T02|20240306150000-0500\r" +
		"PID|1||TEST900001^^^&2.999.1.1&ISO^MR||TESTPATIENT^Example^^^^^L||19700101|F\r" +
		"PV1|1|N\r" +
		"TXA|1|PR|AP|20240305||20240306143000+0000||||||TESTDOC-0001-v1^CHARTSCAN|||||AU||AV\r" +
		"OBX|1|ED|11506-3^Progress note^LN||^application^pdf^Base64^" + b64 + "||||||F\r"
	if diff := cmp.Diff(strings.Split(want, "\r"), strings.Split(string(got), "\r")); diff != "" {
		t.Errorf("MDM (-want +got):\n%s", diff)
	}
}

func TestMDMEvents(t *testing.T) {
	segment := func(msg []byte, id string) []string {
		for _, s := range strings.Split(string(msg), "\r") {
			if f := strings.Split(s, "|"); f[0] == id {
				return f
			}
		}
		return nil
	}
	field := func(fs []string, i int) string {
		if i < len(fs) {
			return fs[i]
		}
		return ""
	}

	t.Run("replacement is a T10 naming its parent", func(t *testing.T) {
		m, err := MDM(testReplacement(false), "CS0002", testNow)
		if err != nil {
			t.Fatal(err)
		}
		msh, txa := segment(m, "MSH"), segment(m, "TXA")
		if field(msh, 8) != "MDM^T10^MDM_T02" || field(segment(m, "EVN"), 1) != "T10" {
			t.Errorf("MSH-9 %q, EVN-1 %q; want MDM^T10^MDM_T02, T10", field(msh, 8), field(segment(m, "EVN"), 1))
		}
		if field(txa, 12) != "TESTDOC-0001-v2^CHARTSCAN" || field(txa, 13) != "TESTDOC-0001-v1^CHARTSCAN" || field(txa, 2) != "DS" || field(txa, 21) != "Reviewer corrected the type" {
			t.Errorf("TXA %q", txa)
		}
		if segment(m, "OBX") == nil {
			t.Error("no OBX")
		}
	})
	t.Run("a replacement of a document in error is a T02: the old one is cancelled on its own", func(t *testing.T) {
		m, err := MDM(testReplacement(true), "CS0003", testNow)
		if err != nil {
			t.Fatal(err)
		}
		if txa := segment(m, "TXA"); field(segment(m, "MSH"), 8) != "MDM^T02^MDM_T02" || field(txa, 13) != "" || field(txa, 21) != "" {
			t.Errorf("MSH-9 %q, TXA %q", field(segment(m, "MSH"), 8), txa)
		}
	})
	t.Run("cancel is a T11 without content", func(t *testing.T) {
		old := testDoc()
		old.PDF = nil
		m, err := MDMCancel(old, "Filed to the wrong patient", "CS0004", testNow)
		if err != nil {
			t.Fatal(err)
		}
		txa := segment(m, "TXA")
		if field(segment(m, "MSH"), 8) != "MDM^T11^MDM_T01" || field(txa, 12) != "TESTDOC-0001-v1^CHARTSCAN" || field(txa, 19) != "CA" ||
			field(txa, 13) != "" || field(txa, 21) != "Filed to the wrong patient" {
			t.Errorf("MSH-9 %q, TXA %q", field(segment(m, "MSH"), 8), txa)
		}
		if segment(m, "OBX") != nil {
			t.Error("a T11 with an OBX")
		}
		if _, err := MDMCancel(old, "bad\x00reason", "CS0004", testNow); err == nil {
			t.Error("a reason with NUL accepted")
		}
	})
	t.Run("unknown type: local code, no LOINC", func(t *testing.T) {
		d := testDoc()
		d.DocumentType = ""
		d.DateOfService = ""
		m, err := MDM(d, "CS0005", testNow)
		if err != nil {
			t.Fatal(err)
		}
		if txa, obx := segment(m, "TXA"), segment(m, "OBX"); field(txa, 2) != "SCAN" || field(txa, 4) != "" || field(obx, 3) != "SCAN^Scanned document^L" {
			t.Errorf("TXA %q, OBX-3 %q", txa, field(obx, 3))
		}
	})
	t.Run("MRN systems in CX-4", func(t *testing.T) {
		for sys, want := range map[string]string{
			"urn:oid:2.999.1.1":      "TEST900001^^^&2.999.1.1&ISO^MR",
			"2.999.1.1":              "TEST900001^^^&2.999.1.1&ISO^MR",
			"https://ehr.test/mrn":   "TEST900001^^^&https://ehr.test/mrn&URI^MR",
			"TESTMRN":                "TEST900001^^^TESTMRN^MR",
			"TEST^AUTH":              "TEST900001^^^TEST\\S\\AUTH^MR",
			"":                       "TEST900001^^^^MR",
			"urn:oid:not-an-oid.tst": "TEST900001^^^&urn:oid:not-an-oid.tst&URI^MR",
		} {
			d := testDoc()
			d.Patient.MRNSystem = sys
			m, err := MDM(d, "CS0006", testNow)
			if err != nil {
				t.Fatal(err)
			}
			if got := field(segment(m, "PID"), 3); got != want {
				t.Errorf("system %q: PID-3 %q, want %q", sys, got, want)
			}
		}
		d := testDoc()
		d.Patient.MRNSystem = ""
		d.Facility.MRNSystem = "TESTMRN"
		m, _ := MDM(d, "CS0007", testNow)
		if got := field(segment(m, "PID"), 3); got != "TEST900001^^^TESTMRN^MR" {
			t.Errorf("the facility's MRN system: PID-3 %q", got)
		}
	})
	t.Run("partial birth date and sex codes", func(t *testing.T) {
		for _, c := range []struct{ dob, sex, wantDOB, wantSex string }{
			{"1970-01", "male", "197001", "M"}, {"1970", "other", "1970", "O"}, {"", "", "", ""}, {"1970-12-31", "U", "19701231", "U"},
		} {
			d := testDoc()
			d.Patient.BirthDate, d.Patient.Sex = c.dob, c.sex
			m, err := MDM(d, "CS0008", testNow)
			if err != nil {
				t.Fatal(err)
			}
			if pid := segment(m, "PID"); field(pid, 7) != c.wantDOB || field(pid, 8) != c.wantSex {
				t.Errorf("%q %q: PID %q", c.dob, c.sex, pid)
			}
		}
	})
}

// TestInvalidDocuments checks every refusal names the field and never its value.
func TestInvalidDocuments(t *testing.T) {
	phi := []string{"TEST900001", "TESTPATIENT", "Example", "1970", "urn:oid:2.999.1.1", "TESTDOC"}
	tests := map[string]func(*Document){
		"no id":                   func(d *Document) { d.ID = "" },
		"id with a delimiter":     func(d *Document) { d.ID = "TESTDOC|1" },
		"version 0":               func(d *Document) { d.Version = 0 },
		"no MRN":                  func(d *Document) { d.Patient.MRN = " " },
		"MRN with NUL":            func(d *Document) { d.Patient.MRN = "TEST900001\x00" },
		"family not UTF-8":        func(d *Document) { d.Patient.Family = "TESTPATIENT\xff" },
		"birth date":              func(d *Document) { d.Patient.BirthDate = "1970-13-01" },
		"sex":                     func(d *Document) { d.Patient.Sex = "TESTPATIENT" },
		"date of service":         func(d *Document) { d.DateOfService = "03/05/2024" },
		"no creation time":        func(d *Document) { d.Created = time.Time{} },
		"not a PDF":               func(d *Document) { d.PDF = []byte("TESTPATIENT Example") },
		"replaces a later one":    func(d *Document) { d.Replaces = Replaced{ID: d.ID, Version: 2} },
		"replaces without an id":  func(d *Document) { d.Replaces = Replaced{Version: 1} },
		"bad facility OID":        func(d *Document) { d.Facility.OID = "TESTDOC.1" },
		"replacement reason NUL":  func(d *Document) { d.Replaces = Replaced{ID: "TESTDOC-0000", Version: 1, Reason: "TESTPATIENT\x00"} },
		"receiving app not UTF-8": func(d *Document) { d.Facility.ReceivingApp = "\xff" },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			d := testDoc()
			change(&d)
			_, err1 := FHIRBundle(d, true)
			_, err2 := MDM(d, "CS0009", testNow)
			_, err3 := FHIRNDJSON(d, false)
			for _, err := range []error{err1, err2, err3} {
				if err == nil {
					t.Fatal("no error")
				}
				var ce *chartscan.Error
				if !errors.As(err, &ce) || ce.Code != chartscan.EInvalid {
					t.Errorf("%v is not an invalid *chartscan.Error", err)
				}
				for _, v := range phi {
					if strings.Contains(err.Error(), v) {
						t.Errorf("the error %q holds %q", err, v)
					}
				}
			}
		})
	}
	t.Run("HL7 only", func(t *testing.T) {
		d := testDoc()
		for _, id := range []string{"", "C|1", "CONTROL-ID-LONGER-THAN-20", "C 1"} {
			if _, err := MDM(d, id, testNow); err == nil {
				t.Errorf("control id %q accepted", id)
			}
		}
		if _, err := MDM(d, "CS0010", time.Time{}); err == nil {
			t.Error("no message time accepted")
		}
		d.Facility.Name, d.Facility.OID = "", ""
		if _, err := MDM(d, "CS0011", testNow); err == nil {
			t.Error("no sending facility accepted")
		}
	})
	t.Run("FHIR only: an MRN system that is a namespace has no URI", func(t *testing.T) {
		d := testDoc()
		d.Patient.MRNSystem = "TESTMRN"
		if _, err := FHIRBundle(d, true); err == nil || strings.Contains(err.Error(), "TESTMRN") {
			t.Errorf("error %v; want one without the system", err)
		}
		if _, err := MDM(d, "CS0012", testNow); err != nil {
			t.Errorf("HL7 takes a namespace: %v", err)
		}
		d.Patient.MRNSystem = ""
		if _, err := FHIRBundle(d, true); err == nil {
			t.Error("no MRN system accepted")
		}
	})
}

// fhirEntry is a Bundle entry as the tests read it.
type fhirEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  struct {
		Method, URL, IfNoneExist string
	} `json:"request"`
}

func readBundle(t *testing.T, b []byte) []fhirEntry {
	t.Helper()
	var bundle struct {
		ResourceType, Type string
		Entry              []fhirEntry
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	if bundle.ResourceType != "Bundle" || bundle.Type != "transaction" {
		t.Fatalf("a %s of type %s", bundle.ResourceType, bundle.Type)
	}
	return bundle.Entry
}

type testDocRef struct {
	MasterIdentifier struct{ System, Value string }
	Status           string
	Type             struct {
		Coding []struct{ System, Code, Display string }
		Text   string
	}
	Subject struct {
		Type       string
		Identifier struct{ System, Value string }
	}
	Date      string
	RelatesTo []struct {
		Code   string
		Target struct {
			Identifier struct{ System, Value string }
		}
	}
	Content []struct {
		Attachment struct {
			ContentType, Data, URL, Hash, Title string
			Size                                int
		}
	}
	Context struct{ Period struct{ Start, End string } }
}

func TestFHIRBundle(t *testing.T) {
	d := testDoc()
	b, err := FHIRBundle(d, true)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := FHIRBundle(d, true)
	if string(again) != string(b) {
		t.Error("the same document gives another bundle")
	}
	entries := readBundle(t, b)
	if len(entries) != 2 {
		t.Fatalf("%d entries, want Binary and DocumentReference", len(entries))
	}
	bin, doc := entries[0], entries[1]
	var binary struct{ ResourceType, ID, ContentType, Data string }
	json.Unmarshal(bin.Resource, &binary)
	if binary.ResourceType != "Binary" || binary.ContentType != "application/pdf" || bin.Request.Method != "PUT" ||
		bin.Request.URL != "Binary/"+binary.ID || bin.FullURL != "urn:uuid:"+binary.ID {
		t.Errorf("Binary entry %+v %+v", bin.Request, binary)
	}
	if pdf, err := base64.StdEncoding.DecodeString(binary.Data); err != nil || string(pdf) != string(d.PDF) {
		t.Errorf("the Binary's data is not the PDF (%v)", err)
	}
	var dr testDocRef
	json.Unmarshal(doc.Resource, &dr)
	if doc.Request.Method != "POST" || doc.Request.URL != "DocumentReference" ||
		doc.Request.IfNoneExist != "identifier=urn%3Achartscan%3Adocument-number%7CTESTDOC-0001-v1" {
		t.Errorf("DocumentReference request %+v", doc.Request)
	}
	sum := sha1.Sum(d.PDF)
	a := dr.Content[0].Attachment
	if a.URL != bin.FullURL || a.Hash != base64.StdEncoding.EncodeToString(sum[:]) || a.Size != len(d.PDF) ||
		a.ContentType != "application/pdf" || a.Data != "" || a.Title != "Progress note, 2024-03-05" {
		t.Errorf("attachment %+v", a)
	}
	if dr.Status != "current" || dr.MasterIdentifier.System != DocumentSystem || dr.MasterIdentifier.Value != "TESTDOC-0001-v1" ||
		dr.Subject.Type != "Patient" || dr.Subject.Identifier.System != testMRNSystem || dr.Subject.Identifier.Value != "TEST900001" ||
		dr.Date != "2024-03-06T14:30:00Z" || dr.Context.Period.Start != "2024-03-05" || dr.Context.Period.End != "2024-03-05" ||
		len(dr.Type.Coding) != 1 || dr.Type.Coding[0].System != "http://loinc.org" || dr.Type.Coding[0].Code != "11506-3" || len(dr.RelatesTo) != 0 {
		t.Errorf("DocumentReference %+v", dr)
	}
	if strings.Contains(string(doc.Resource), "TESTPATIENT") {
		t.Error("the DocumentReference names the patient: the subject is a reference by MRN")
	}

	t.Run("inline", func(t *testing.T) {
		b, err := FHIRBundle(d, false)
		if err != nil {
			t.Fatal(err)
		}
		entries := readBundle(t, b)
		if len(entries) != 1 {
			t.Fatalf("%d entries, want the DocumentReference alone", len(entries))
		}
		var dr testDocRef
		json.Unmarshal(entries[0].Resource, &dr)
		if a := dr.Content[0].Attachment; a.URL != "" || a.Data != base64.StdEncoding.EncodeToString(d.PDF) {
			t.Errorf("attachment url %q, data %d bytes", a.URL, len(a.Data))
		}
	})
	t.Run("replacement", func(t *testing.T) {
		for _, inError := range []bool{false, true} {
			r := testReplacement(inError)
			b, err := FHIRBundle(r, true)
			if err != nil {
				t.Fatal(err)
			}
			entries := readBundle(t, b)
			if len(entries) != 3 {
				t.Fatalf("%d entries, want PATCH, Binary and DocumentReference", len(entries))
			}
			p := entries[0]
			var patchBin struct{ ResourceType, ContentType, Data string }
			json.Unmarshal(p.Resource, &patchBin)
			raw, _ := base64.StdEncoding.DecodeString(patchBin.Data)
			var patch []map[string]string
			if err := json.Unmarshal(raw, &patch); err != nil {
				t.Fatal(err)
			}
			status := "superseded"
			if inError {
				status = "entered-in-error"
			}
			if p.Request.Method != "PATCH" || p.Request.URL != "DocumentReference?identifier=urn%3Achartscan%3Adocument-number%7CTESTDOC-0001-v1" ||
				patchBin.ContentType != "application/json-patch+json" ||
				!cmp.Equal(patch, []map[string]string{{"op": "replace", "path": "/status", "value": status}}) {
				t.Errorf("PATCH entry %+v, patch %s", p.Request, raw)
			}
			var dr testDocRef
			json.Unmarshal(entries[2].Resource, &dr)
			if len(dr.RelatesTo) != 1 || dr.RelatesTo[0].Code != "replaces" || dr.RelatesTo[0].Target.Identifier.Value != "TESTDOC-0001-v1" ||
				dr.MasterIdentifier.Value != "TESTDOC-0001-v2" || dr.Type.Coding[0].Code != "18842-5" {
				t.Errorf("replacement DocumentReference %+v", dr)
			}
			if entries[2].Request.IfNoneExist != "identifier=urn%3Achartscan%3Adocument-number%7CTESTDOC-0001-v2" {
				t.Errorf("ifNoneExist %q", entries[2].Request.IfNoneExist)
			}
		}
	})
	t.Run("unknown type is text only", func(t *testing.T) {
		d := testDoc()
		d.DocumentType, d.DateOfService = "", ""
		b, err := FHIRBundle(d, true)
		if err != nil {
			t.Fatal(err)
		}
		var dr testDocRef
		json.Unmarshal(readBundle(t, b)[1].Resource, &dr)
		if len(dr.Type.Coding) != 0 || dr.Type.Text != "Scanned document" || dr.Context.Period.Start != "" || dr.Content[0].Attachment.Title != "Scanned document" {
			t.Errorf("DocumentReference %+v", dr)
		}
	})
	t.Run("document system of the facility", func(t *testing.T) {
		d := testDoc()
		d.Facility.DocumentSystem = "2.999.1.2"
		b, _ := FHIRBundle(d, true)
		var dr testDocRef
		entries := readBundle(t, b)
		json.Unmarshal(entries[1].Resource, &dr)
		if dr.MasterIdentifier.System != "urn:oid:2.999.1.2" || entries[1].Request.IfNoneExist != "identifier=urn%3Aoid%3A2.999.1.2%7CTESTDOC-0001-v1" {
			t.Errorf("masterIdentifier %+v, ifNoneExist %q", dr.MasterIdentifier, entries[1].Request.IfNoneExist)
		}
	})
}

func TestFHIRNDJSON(t *testing.T) {
	d := testReplacement(false)
	out, err := FHIRNDJSON(d, true)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want Binary and DocumentReference", len(lines))
	}
	var bin struct{ ResourceType, ID string }
	var dr struct {
		ResourceType, ID string
		Content          []struct{ Attachment struct{ URL string } }
	}
	json.Unmarshal([]byte(lines[0]), &bin)
	json.Unmarshal([]byte(lines[1]), &dr)
	if bin.ResourceType != "Binary" || bin.ID == "" || dr.ResourceType != "DocumentReference" || dr.ID == "" ||
		dr.Content[0].Attachment.URL != "Binary/"+bin.ID {
		t.Errorf("Binary %+v, DocumentReference %+v", bin, dr)
	}
	inline, err := FHIRNDJSON(d, false)
	if err != nil || strings.Count(string(inline), "\n") != 1 || !strings.Contains(string(inline), `"data":"`) {
		t.Errorf("inline export: %v\n%.200s", err, inline)
	}
}

func TestFHIRWithdraw(t *testing.T) {
	b, err := FHIRWithdraw(Replaced{ID: "TESTDOC-0001", Version: 1, EnteredInError: true}, Facility{})
	if err != nil {
		t.Fatal(err)
	}
	entries := readBundle(t, b)
	if len(entries) != 1 || entries[0].Request.Method != "PATCH" ||
		entries[0].Request.URL != "DocumentReference?identifier=urn%3Achartscan%3Adocument-number%7CTESTDOC-0001-v1" {
		t.Errorf("entries %+v", entries)
	}
	if _, err := FHIRWithdraw(Replaced{ID: "TESTDOC-0001"}, Facility{}); err == nil {
		t.Error("no version accepted")
	}
}
