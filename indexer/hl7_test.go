package indexer

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chartscan/chartscan"
	"github.com/google/go-cmp/cmp"
)

func readHL7All(in string) ([]ADTEvent, error) {
	var got []ADTEvent
	err := ReadHL7(strings.NewReader(in), HL7Options{}, func(m *HL7Message) error {
		for _, e := range m.Events {
			e.PID, e.Demographics = 0, false // told apart by TestParseHL7Merges
			e.MRNSystem, e.IDs = "", nil     // and by TestParseHL7MRNSystem
			got = append(got, e)
		}
		return nil
	}, nil)
	return got, err
}

func TestReadHL7(t *testing.T) {
	a04 := "MSH|^~\\&|EMPI|HOSP|CHARTSCAN|HOSP|202401011200||ADT^A04^ADT_A01|1|P|2.5\r" +
		"EVN|A04|202401011200\r" +
		"PID|1||999-99^^^SSA^SS~00-123-456^^^HOSP^MR||DOE^JANE^MARIE^^^^L~DOE^JANIE^^^^^N||19620314|F|||1 Main St^Apt 2^Springfield^MA^01101||555-0100\r"
	janeHL7 := chartscan.Patient{MRN: "00123456", Family: "DOE", Given: "JANE MARIE", BirthDate: "1962-03-14", Sex: "female",
		Street: "1 Main St, Apt 2", City: "Springfield", Postcode: "01101", State: "MA", Phone: "555-0100"}
	tests := []struct {
		name string
		in   string
		want []ADTEvent
	}{
		{"A04 upsert", a04, []ADTEvent{{Type: "A04", Kind: ADTUpsert, Patient: janeHL7}}},
		{"MLLP framing and \\r\\n", "\x0b" + strings.ReplaceAll(a04, "\r", "\r\n") + "\x1c\r",
			[]ADTEvent{{Type: "A04", Kind: ADTUpsert, Patient: janeHL7}}},
		{"two messages, \\n, first identifier when none is MR",
			"MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5\nPID|1||X1^^^HOSP~X2^^^HOSP^PI||ROE^RICHARD||19700101120000+0100|M\n" +
				"MSH|^~\\&|A|B|C|D|2024||ADT^A31|2|P|2.5\nPID|1||A9988^^^HOSP^MR||SMITH^JOHN||1950|U\n",
			[]ADTEvent{
				{Type: "A08", Kind: ADTUpsert, Patient: chartscan.Patient{MRN: "X1", Family: "ROE", Given: "RICHARD", BirthDate: "1970-01-01", Sex: "male"}},
				{Type: "A31", Kind: ADTUpsert, Patient: chartscan.Patient{MRN: "A9988", Family: "SMITH", Given: "JOHN", BirthDate: "1950", Sex: "unknown"}},
			}},
		{"escapes", "MSH|^~\\&|A|B|C|D|2024||ADT^A28|1|P|2.5\rPID|1||7\\F\\7^^^H^MR||O\\E\\BRIEN\\S\\X^ANN\\T\\E\\R\\Z\\X41\\\\.br\\||20000229|F\r",
			[]ADTEvent{{Type: "A28", Kind: ADTUpsert, Patient: chartscan.Patient{MRN: "7|7", Family: "O\\BRIEN^X", Given: "ANN&E~ZA", BirthDate: "2000-02-29", Sex: "female"}}}},
		{"other separators", "MSH#*@!%#A#B#C#D#2024##ADT*A01#1#P#2.5\rPID#1##55*!*!H*MR##NUNEZ%X*JOSE##19700101#M\r",
			[]ADTEvent{{Type: "A01", Kind: ADTUpsert, Patient: chartscan.Patient{MRN: "55", Family: "NUNEZ", Given: "JOSE", BirthDate: "1970-01-01", Sex: "male"}}}},
		{"A40 merge with two pairs", "MSH|^~\\&|A|B|C|D|2024||ADT^A40^ADT_A39|9|P|2.5\rEVN|A40|2024\r" +
			"PID|1||100^^^H^MR||DOE^JANE||19620314|F\rMRG|200^^^H^MR\r" +
			"PID|1||300^^^H^MR||ROE^RICH||19700101|M\rMRG|400^^^H^PI~401^^^H^MR\r",
			[]ADTEvent{
				{Type: "A40", Kind: ADTMerge, Patient: chartscan.Patient{MRN: "100", Family: "DOE", Given: "JANE", BirthDate: "1962-03-14", Sex: "female"}, MergedMRN: "200"},
				{Type: "A40", Kind: ADTMerge, Patient: chartscan.Patient{MRN: "300", Family: "ROE", Given: "RICH", BirthDate: "1970-01-01", Sex: "male"}, MergedMRN: "401"},
			}},
		{"events that change nothing are skipped", "MSH|^~\\&|A|B|C|D|2024||ADT^A03|1|P|2.5\rPID|1||1^^^H^MR||X^Y\r" +
			"MSH|^~\\&|A|B|C|D|2024||ORU^R01|2|P|2.5\rPID|1||1^^^H^MR||X^Y\r", nil},
		{"batch headers", "FHS|^~\\&\rBHS|^~\\&\r" + a04 + "BTS|1\rFTS|1\r", []ADTEvent{{Type: "A04", Kind: ADTUpsert, Patient: janeHL7}}},
		{"empty", "\r\n", nil},
		{"no name, a birth date known to the month", "MSH|^~\\&|A|B|C|D|2024||ADT^A28|1|P|2.5\rPID|1||77^^^H^MR||||197412|F\r",
			[]ADTEvent{{Type: "A28", Kind: ADTUpsert, Patient: chartscan.Patient{MRN: "77", BirthDate: "1974-12", Sex: "female"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readHL7All(tt.in)
			if err != nil {
				t.Fatalf("ReadHL7: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadHL7 mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadHL7Errors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"PID|1||1\r", "message 1: segment before MSH"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5\rPID|1||^^^H^MR||DOE^JANE||19620314\r", "message 1: PID-3: no MRN"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5\rPID|1||1^^^H^MR||DOE^JANE||19621314\r", "message 1: PID-7: invalid birth date"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5\rEVN|A04\r", "message 1: PID: no PID segment"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A40|1|P|2.5\rMRG|2^^^H^MR\r", "message 1: MRG: MRG segment without a PID segment before it"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A40|1|P|2.5\rPID|1||1^^^H^MR||DOE^JANE\rMRG|\r", "message 1: MRG-1: no identifier of the merged patient"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5\rPID|1||1^^^H^MR||DOE^JANE\rMSH|^~\\&|A|B|C|D|2024||ADT^A40|2|P|2.5\rEVN|A40\r",
			"message 2: PID: no PID segment"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A40|1|P|2.5\rPID|1||1^^^H^MR||DOE^JANE\r", "message 1: MRG: no MRG segment"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5||||||ISO IR87\rPID|1||1^^^H^MR||DOE^JANE\r", "message 1: MSH-18: character set not supported"},
		{"MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5||||||UNICODE UTF-8\rPID|1||1^^^H^MR||D\xf6E^JANE\r", "message 1: MSH-18: text is not valid in the declared character set"},
	}
	for _, tt := range tests {
		_, err := readHL7All(tt.in)
		if err == nil || chartscan.ErrorMessage(err) != tt.want {
			t.Errorf("ReadHL7(%q) error = %v, want %q", tt.in, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "DOE") || strings.Contains(err.Error(), "19621314")) {
			t.Errorf("ReadHL7 error %q shows patient data", err)
		}
	}
}

func TestReadHL7StopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	in := "MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5\rPID|1||1^^^H^MR||A^B\rMSH|^~\\&|A|B|C|D|2024||ADT^A04|2|P|2.5\rPID|1||2^^^H^MR||C^D\r"
	calls := 0
	err := ReadHL7(strings.NewReader(in), HL7Options{}, func(*HL7Message) error { calls++; return stop }, nil)
	if err != stop || calls != 1 {
		t.Errorf("ReadHL7 = %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestReadRecordsPointsToHL7(t *testing.T) {
	err := ReadRecords(strings.NewReader("MSH|^~\\&|A\rPID|1||1||DOE^JANE\r"), func(chartscan.Patient) error { return nil })
	if !errors.Is(err, ErrHL7) || !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("ReadRecords(HL7) error = %v, want ErrHL7 and ErrUnsupportedFormat", err)
	}
}

func FuzzReadHL7(f *testing.F) {
	f.Add("MSH|^~\\&|A|B|C|D|2024||ADT^A04|1|P|2.5\rPID|1||00-123-456^^^HOSP^MR||DOE^JANE^M||19620314|F|||1 Main^^X^MA^01101||555\r")
	f.Add("\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A40|1|P|2.5\rPID|1||1^^^H^MR||D\\E\\^J\\X4142\\||2000\rMRG|2~3^^^H^MR\r\x1c\r")
	f.Add("MSH#*@!%#A\nPID#1##5*!*!H*MR##X%Y*Z\n")
	f.Add("MSH|")
	f.Fuzz(func(t *testing.T, s string) {
		_ = ReadHL7(strings.NewReader(s), HL7Options{}, func(m *HL7Message) error {
			for _, e := range m.Events {
				if e.Patient.MRN == "" {
					t.Errorf("ReadHL7(%q) reported an event without MRN", s)
				}
				if e.Kind == ADTMerge && e.MergedMRN == "" {
					t.Errorf("ReadHL7(%q) reported a merge without the merged MRN", s)
				}
				if b := e.Patient.BirthDate; b != "" && !isISODate(b) && !isPartialDate(b) {
					t.Errorf("ReadHL7(%q) birth date %q is not YYYY-MM-DD, YYYY-MM or YYYY", s, b)
				}
				if !utf8.ValidString(e.Patient.Family + e.Patient.Given + e.Patient.Street) {
					t.Errorf("ReadHL7(%q) read text that is not UTF-8", s)
				}
			}
			return nil
		}, func(BadRecord) error { return nil })
	})
}
