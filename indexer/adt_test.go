package indexer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/chartscan/chartscan"
)

func parse(t *testing.T, msg string, opts HL7Options) (*HL7Message, error) {
	t.Helper()
	return ParseHL7([]byte(msg), opts)
}

// TestParseHL7Merges reads every merge kind: the survivor from PID-3 (else PID-2), the
// merged identifier from MRG-1 (else MRG-4), and a PID with nothing but its identifier.
func TestParseHL7Merges(t *testing.T) {
	const msh = "MSH|^~\\&|SIM|HOSP|CS|HOSP|20240101||ADT^%s|%s|P|2.5\r"
	hdr := func(ev string) string { return strings.Replace(strings.Replace(msh, "%s", ev, 1), "%s", "c"+ev, 1) }
	tests := []struct {
		name string
		msg  string
		want []ADTEvent
	}{
		{"A34 merge patient id only, survivor without a name", hdr("A34") + "EVN|A34\rPID|1||100^^^HOSP^MR\rMRG|200^^^HOSP^MR\r",
			[]ADTEvent{{Type: "A34", Kind: ADTMerge, Patient: chartscan.Patient{MRN: "100", Sex: "unknown"}, MergedMRN: "200", PID: 1}}},
		{"A39 merge person: PID-2 and MRG-4", hdr("A39") + "PID|1|300|||||19700101\rMRG||||400\r",
			[]ADTEvent{{Type: "A39", Kind: ADTMerge, Patient: chartscan.Patient{MRN: "300", BirthDate: "1970-01-01", Sex: "unknown"}, MergedMRN: "400", Demographics: true, PID: 1}}},
		{"A18 with the survivor's name", hdr("A18") + "PID|1||5^^^H^MR||KEATS^JOHN||17951031|M\rMRG|6^^^H^MR\r",
			[]ADTEvent{{Type: "A18", Kind: ADTMerge, Patient: chartscan.Patient{MRN: "5", Family: "KEATS", Given: "JOHN", BirthDate: "1795-10-31", Sex: "male"}, MergedMRN: "6", Demographics: true, PID: 1}}},
		{"A30", hdr("A30") + "PID|1||7\rMRG|8\r",
			[]ADTEvent{{Type: "A30", Kind: ADTMerge, Patient: chartscan.Patient{MRN: "7", Sex: "unknown"}, MergedMRN: "8", PID: 1}}},
		{"A47 change of identifier", hdr("A47") + "PID|1||NEW1^^^H^MR\rMRG|OLD1^^^H^MR\r",
			[]ADTEvent{{Type: "A47", Kind: ADTMerge, Patient: chartscan.Patient{MRN: "NEW1", Sex: "unknown"}, MergedMRN: "OLD1", PID: 1}}},
		{"A37 unlink is an unmerge", hdr("A37") + "PID|1||9\rMRG|10\r",
			[]ADTEvent{{Type: "A37", Kind: ADTUnmerge, Patient: chartscan.Patient{MRN: "9", Sex: "unknown"}, MergedMRN: "10", PID: 1}}},
		{"event in EVN-1 only", "MSH|^~\\&|A|B|C|D|2024||ADT|1|P|2.3\rEVN|A40\rPID|1||1\rMRG|2\r",
			[]ADTEvent{{Type: "A40", Kind: ADTMerge, Patient: chartscan.Patient{MRN: "1", Sex: "unknown"}, MergedMRN: "2", PID: 1}}},
		{"A05 pre-admit registers", hdr("A05") + "PID|1||11^^^H^MR||ROE^ANN\r",
			[]ADTEvent{{Type: "A05", Kind: ADTUpsert, Patient: chartscan.Patient{MRN: "11", Family: "ROE", Given: "ANN", Sex: "unknown"}, Demographics: true, PID: 1}}},
		{"A02 transfer changes nothing", hdr("A02") + "PID|1||12^^^H^MR||ROE^ANN\r", nil},
		{"a lab result is no ADT", strings.Replace(hdr("R01"), "ADT", "ORU", 1) + "PID|1||12\r", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(t, tt.msg, HL7Options{})
			if err != nil {
				t.Fatalf("ParseHL7: %v", err)
			}
			if diff := cmp.Diff(tt.want, m.Events, cmpopts.IgnoreFields(ADTEvent{}, "MRNSystem", "IDs")); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseHL7MRNSystem picks the facility's MRN by its assigning authority, in PID-3
// and MRG-1: the same number from another facility is not the MRN.
func TestParseHL7MRNSystem(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|2024||ADT^A40|1|P|2.5\r" +
		"PID|1||12345^^^OTHERHOSP^MR~555^^^SSA^SS~777^^^MAIN&1.2.3.4&ISO^MR||DOE^JANE\r" +
		"MRG|12345^^^MAIN^MR~999^^^OTHERHOSP^MR\r"
	tests := []struct {
		system           string
		survivor, merged string
		wantErr          string
	}{
		{"", "12345", "12345", "MRG-1: the merged identifier is the survivor's"},
		{"MAIN", "777", "12345", ""},
		{"1.2.3.4", "777", "", "MRG-1: no identifier of the merged patient"},
		{"otherhosp", "12345", "999", ""},
		{"NOWHERE", "", "", "PID-3: no identifier of the facility's MRN system"},
	}
	for _, tt := range tests {
		m, err := parse(t, msg, HL7Options{MRNSystem: tt.system})
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("system %q: error %v, want %q", tt.system, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("system %q: %v", tt.system, err)
		}
		if got := m.Events[0]; got.Patient.MRN != tt.survivor || got.MergedMRN != tt.merged {
			t.Errorf("system %q: survivor %q merged %q, want %q and %q", tt.system, got.Patient.MRN, got.MergedMRN, tt.survivor, tt.merged)
		}
	}
	// An upsert carries the MRN's authority and the other identifiers by theirs.
	m, err := parse(t, "MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5\r"+
		"PID|1||12345^^^OTHERHOSP^MR~555-12^^^SSA^SS~777^^^MAIN&1.2.3.4&ISO^MR~88^^^^PI||DOE^JANE\r", HL7Options{MRNSystem: "MAIN"})
	if err != nil {
		t.Fatal(err)
	}
	e := m.Events[0]
	want := []SystemID{{System: "OTHERHOSP", Value: "12345"}, {System: "SSA", Value: "55512"}, {System: "PI", Value: "88"}}
	if e.Patient.MRN != "777" || e.MRNSystem != "MAIN" || !cmp.Equal(want, e.IDs) {
		t.Errorf("upsert: MRN %q of %q, others %v; want 777 of MAIN and %v", e.Patient.MRN, e.MRNSystem, e.IDs, want)
	}
}

// TestParseHL7CharacterSets reads the name Ëntë in every way a feed sends it.
func TestParseHL7CharacterSets(t *testing.T) {
	pid := func(name string) string { return "PID|1||42^^^H^MR||" + name + "^Zoë\r" }
	msh := func(charset string) string {
		return "MSH|^~\\&|A|B|C|D|2024||ADT^A28|1|P|2.5||||||" + charset + "\r"
	}
	tests := []struct {
		name, msg, family, given string
	}{
		{"8859/1", msh("8859/1") + "PID|1||42^^^H^MR||\xcbnt\xeb^Zo\xeb\r", "Ëntë", "Zoë"},
		{"8859/15", msh("8859/15") + "PID|1||42^^^H^MR||\xcbnt\xeb^Zo\xeb\r", "Ëntë", "Zoë"},
		{"UNICODE UTF-8", msh("UNICODE UTF-8") + pid("Ëntë"), "Ëntë", "Zoë"},
		{"ASCII with UTF-8 in it", msh("ASCII") + pid("Ëntë"), "Ëntë", "Zoë"},
		{"undeclared Windows-1252", msh("") + "PID|1||42^^^H^MR||\xcbnt\xeb\x92s^Zo\xeb\r", "Ëntë’s", "Zoë"},
		{"a byte-order mark", "\xef\xbb\xbf" + msh("UNICODE UTF-8") + pid("Ëntë"), "Ëntë", "Zoë"},
		{"hex escapes in 8859/1", msh("8859/1") + "PID|1||42^^^H^MR||\\XCB\\nt\\XEB\\^Zo\\XEB\\\r", "Ëntë", "Zoë"},
		{"hex escapes in UTF-8", msh("UNICODE UTF-8") + "PID|1||42^^^H^MR||\\XC38B\\nt\\XC3AB\\^Zo\\XC3AB\\\r", "Ëntë", "Zoë"},
		{"line break and highlight escapes", msh("") + "PID|1||42^^^H^MR||\\H\\Ëntë\\N\\^Zoë\\.br\\Ann\r", "Ëntë", "Zoë Ann"},
		{"explicit null", msh("") + "PID|1||42^^^H^MR||\"\"^Zoë\r", "", "Zoë"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(t, tt.msg, HL7Options{})
			if err != nil {
				t.Fatalf("ParseHL7: %v", err)
			}
			if p := m.Events[0].Patient; p.Family != tt.family || p.Given != tt.given {
				t.Errorf("name %q, %q; want %q, %q", p.Family, p.Given, tt.family, tt.given)
			}
		})
	}
}

// TestReadHL7SkipsBadMessages reads a file whose second message cannot be read: it is
// reported by its number and reason, and the messages around it are read.
func TestReadHL7SkipsBadMessages(t *testing.T) {
	in := "# exported from the test feed\r\n// another comment\r\n" +
		"MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5\rPID|1||1^^^H^MR||DOE^JANE\r" +
		"MSH|^~\\&|A|B|C|D|2024||ADT^A04|2|P|2.5\rPID|1||2^^^H^MR||SECRET^NAME||19621399\r" +
		"MSH|^~\\&|A|B|C|D|2024||ADT^A40|3|P|2.5\rPID|1||1^^^H^MR\rMRG|3^^^H^MR\r"
	var ids []string
	var bad []BadRecord
	err := ReadHL7(strings.NewReader(in), HL7Options{}, func(m *HL7Message) error {
		ids = append(ids, m.ControlID)
		return nil
	}, func(b BadRecord) error { bad = append(bad, b); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1", "3"}, ids); diff != "" {
		t.Errorf("messages read (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]BadRecord{{Where: "message 2", Reason: "PID-7: invalid birth date"}}, bad); diff != "" {
		t.Errorf("bad messages (-want +got):\n%s", diff)
	}
	if !looksLikeHL7([]byte(in)) {
		t.Error("a file of HL7 messages after comment lines does not look like HL7")
	}
}

func TestParseHL7DigestIgnoresSendTime(t *testing.T) {
	a, _ := parse(t, "MSH|^~\\&|A|B|C|D|20240101120000||ADT^A04|1|P|2.5\rPID|1||1||DOE^JANE\r", HL7Options{})
	b, _ := parse(t, "MSH|^~\\&|A|B|C|D|20240102130000||ADT^A04|1|P|2.5\rPID|1||1||DOE^JANE\r", HL7Options{})
	c, _ := parse(t, "MSH|^~\\&|A|B|C|D|20240101120000||ADT^A04|1|P|2.5\rPID|1||1||DOE^JANET\r", HL7Options{})
	if a.Digest != b.Digest {
		t.Error("a resend at another time has another digest")
	}
	if a.Digest == c.Digest {
		t.Error("another content has the same digest")
	}
}

func TestHL7Ack(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m, err := parse(t, "MSH|^~\\&|EPIC|NORTH|CHARTSCAN|MAIN|2024||ADT^A04^ADT_A01|MSG77|P|2.5.1||||||8859/1\rPID|1||^^^H^MR||DOE^JANE\r", HL7Options{})
	if err == nil {
		t.Fatal("no error for a PID without an MRN")
	}
	got := string(HL7Ack(m, AckError, err, "ACK1", now))
	want := "MSH|^~\\&|CHARTSCAN|MAIN|EPIC|NORTH|20260102030405+0000||ACK^A04^ACK|ACK1|P|2.5.1||||||8859/1\r" +
		"MSA|AE|MSG77|PID-3: no MRN\r" +
		"ERR|PID^1^3^101&no MRN&HL70357|PID^1^3|101^no MRN^HL70357|E\r"
	if got != want {
		t.Errorf("AE:\n got %q\nwant %q", got, want)
	}
	ok, _ := parse(t, "MSH|^~\\&|EPIC|NORTH|CHARTSCAN|MAIN|2024||ADT^A08|MSG78|T|2.3\rPID|1||5||DOE^JANE\r", HL7Options{})
	got = string(HL7Ack(ok, AckAccept, nil, "ACK2", now))
	want = "MSH|^~\\&|CHARTSCAN|MAIN|EPIC|NORTH|20260102030405+0000||ACK^A08^ACK|ACK2|T|2.3\rMSA|AA|MSG78\r"
	if got != want {
		t.Errorf("AA:\n got %q\nwant %q", got, want)
	}
	// Not even an MSH: the reject still answers in HL7.
	_, err = ParseHL7([]byte("hello"), HL7Options{})
	got = string(HL7Ack(nil, AckReject, err, "ACK3", now))
	if !strings.HasPrefix(got, "MSH|^~\\&|") || !strings.Contains(got, "\rMSA|AR|\r") && !strings.Contains(got, "\rMSA|AR||") {
		t.Errorf("AR without a message: %q", got)
	}
	var he *HL7Error
	if !errors.As(err, &he) || !he.Reject {
		t.Errorf("no MSH: %v is not a reject", err)
	}
}
