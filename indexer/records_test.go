package indexer

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/chartscan/chartscan"
	"github.com/google/go-cmp/cmp"
)

func readAll(t *testing.T, in string) ([]chartscan.Patient, error) {
	t.Helper()
	var got []chartscan.Patient
	err := ReadRecords(strings.NewReader(in), func(p chartscan.Patient) error {
		got = append(got, p)
		return nil
	})
	return got, err
}

var jane = chartscan.Patient{MRN: "00123456", Family: "Doe", Given: "Jane Marie", BirthDate: "1962-03-14", Sex: "female",
	Street: "1 Main St, Apt 2", City: "Springfield", Postcode: "01101", State: "MA", Phone: "555-0100"}

func TestReadRecords(t *testing.T) {
	john := chartscan.Patient{MRN: "A9988", Family: "Smith", Given: "John", BirthDate: "1950-02-01", Sex: "male"}
	tests := []struct {
		name string
		in   string
		want []chartscan.Patient
	}{
		{
			name: "csv",
			in: "mrn,family,given,birth_date,sex,street,city,postcode,state,phone\n" +
				"00-123-456,Doe,Jane Marie,1962-03-14,F,\"1 Main St, Apt 2\",Springfield,01101,MA,555-0100\n" +
				"a9988,Smith,John,02/01/1950,male,,,,,\n",
			want: []chartscan.Patient{jane, john},
		},
		{
			name: "csv columns in another order, unknown and missing optional columns",
			in: "\ufeffGiven, Family ,ssn,MRN,Birth_Date\n" +
				"John,Smith,000-00-0000,A9988,1 Feb 1950\n",
			want: []chartscan.Patient{{MRN: "A9988", Family: "Smith", Given: "John", BirthDate: "1950-02-01", Sex: "unknown"}},
		},
		{
			name: "csv with semicolons and leading blank lines",
			in:   "\n\nmrn;family;given;birth_date;sex\nA9988;Smith;John;1950-02-01;M\n",
			want: []chartscan.Patient{john},
		},
		{
			name: "csv without a birth date",
			in:   "mrn,family,given,birth_date\nA9988,Smith,John,\n",
			want: []chartscan.Patient{{MRN: "A9988", Family: "Smith", Given: "John", Sex: "unknown"}},
		},
		{
			name: "fhir bundle",
			in: `{
  "resourceType": "Bundle",
  "type": "collection",
  "entry": [
    {"resource": {"resourceType": "Organization", "name": "General Hospital"}},
    {"resource": {
      "resourceType": "Patient",
      "identifier": [
        {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "000-00-0000"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "system": "urn:hospital:ids", "value": "00-123-456"}
      ],
      "name": [{"use": "nickname", "family": "X", "given": ["Janie"]},
               {"use": "official", "family": " Doe ", "given": ["Jane", "Marie"]}],
      "birthDate": "1962-03-14",
      "gender": "female",
      "address": [{"line": ["1 Main St", "Apt 2"], "city": "Springfield", "postalCode": "01101", "state": "MA"}],
      "telecom": [{"system": "email", "value": "jane@example.org"}, {"system": "phone", "value": "555-0100"}]
    }},
    {"resource": {
      "resourceType": "Patient",
      "identifier": [{"system": "urn:ssn", "value": "1"}, {"system": "http://hospital.example/MRN", "value": "a9988"}],
      "name": [{"family": "Smith", "given": ["John"]}],
      "birthDate": "1950-02-01",
      "gender": "male"
    }}
  ]
}`,
			want: []chartscan.Patient{jane, john},
		},
		{
			name: "fhir ndjson",
			in: `{"resourceType":"Patient","identifier":[{"value":"00123456"}],"name":[{"family":"Doe","given":["Jane","Marie"]}],"birthDate":"1962-03-14","gender":"female","address":[{"line":["1 Main St","Apt 2"],"city":"Springfield","postalCode":"01101","state":"MA"}],"telecom":[{"system":"phone","value":"555-0100"}]}
{"resourceType":"Observation","id":"x","code":{"text":"weight"}}

{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"A9988"}],"name":[{"family":"Smith","given":["John"]}],"birthDate":"1950-02-01","gender":"male"}
`,
			want: []chartscan.Patient{jane, john},
		},
		{
			name: "one-line bundle in ndjson",
			in:   `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","identifier":[{"value":"A9988"}],"name":[{"family":"Smith","given":["John"]}],"birthDate":"1950-02-01","gender":"male"}}]}`,
			want: []chartscan.Patient{john},
		},
		{name: "empty", in: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.in)
			if err != nil {
				t.Fatalf("ReadRecords: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadRecords mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadRecordsErrors(t *testing.T) {
	// phi are the patient values in the fixtures; no error message may show them.
	phi := []string{"Doe", "Jane", "1962", "03/14", "00123456", "Smith", "John", "1950", "31/31", "Springfield"}
	tests := []struct {
		name string
		in   string
		want string // the whole user-safe message
	}{
		{
			name: "csv missing column",
			in:   "mrn,family,given,dob\n00123456,Doe,Jane,1962-03-14\n",
			want: `csv header: missing column "birth_date"`,
		},
		{
			name: "csv bad date",
			in:   "mrn,family,given,birth_date\n00123456,Doe,Jane,1962-03-14\nA9988,Smith,John,31/31/1950\n",
			want: "line 3: invalid birth date",
		},
		{
			name: "csv no mrn",
			in:   "mrn,family,given,birth_date\n00123456,Doe,Jane,1962-03-14\n\n , Smith,John,1950-02-01\n",
			want: "line 4: no MRN",
		},
		{
			name: "csv impossible partial birth date",
			in:   "mrn,family,given,birth_date\n00123456,Doe,Jane,1962-13\n",
			want: "line 2: invalid birth date",
		},
		{
			name: "csv wrong number of fields",
			in:   "mrn,family,given,birth_date\n00123456,Doe,Jane\n",
			want: "line 2: wrong number of fields",
		},
		{
			name: "ndjson no mrn",
			in: `{"resourceType":"Patient","identifier":[{"value":"00123456"}],"name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1962-03-14"}
{"resourceType":"Patient","name":[{"family":"Smith","given":["John"]}],"birthDate":"1950-02-01"}
`,
			want: "line 2: no MRN",
		},
		{
			name: "ndjson impossible birth date",
			in:   `{"resourceType":"Patient","identifier":[{"value":"00123456"}],"name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1962-02-30"}`,
			want: "line 1: invalid birth date",
		},
		{
			name: "ndjson line that is no resource",
			in:   `{"resourceType":"Patient","identifier":[{"value":"00123456"}]}` + "\n" + `{"name":"Doe Jane 1962"}` + "\n",
			want: "line 2: not a FHIR resource",
		},
		{
			name: "ndjson bad json",
			in:   `{"resourceType":"Patient","identifier":[{"value":"00123456"}],"name":[{"family":"Doe"}]}` + "\n" + `{"resourceType":"Patient","name":"Doe Jane 1962"` + "\n",
			want: "line 2: not valid JSON",
		},
		{
			name: "ndjson wrong type",
			in:   `{"resourceType":"Patient","identifier":[{"value":"00123456"}],"birthDate":19620314}`,
			want: "line 1: field birthDate has the wrong JSON type",
		},
		{
			name: "bundle no mrn",
			in: `{
 "resourceType": "Bundle",
 "entry": [
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "A9988"}], "name": [{"family": "Smith", "given": ["John"]}]}},
  {"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:mrn"}], "name": [{"given": ["Jane"]}], "birthDate": "1962-03-14"}}
 ]
}`,
			want: "entry[1]: no MRN",
		},
		{
			name: "bundle bad date",
			in: `{
 "resourceType": "Bundle",
 "entry": [{"resource": {"resourceType": "Patient", "identifier": [{"value": "00123456"}], "name": [{"family": "Doe"}], "birthDate": "03/14/1962"}}]
}`,
			want: "entry[0]: invalid birth date",
		},
		{
			name: "a single Patient without an MRN",
			in:   "{\n \"resourceType\": \"Patient\",\n \"name\": [{\"family\": \"Doe\"}]\n}\n",
			want: "resource: no MRN",
		},
		{
			name: "json that is no Patient nor Bundle",
			in:   "{\n \"resourceType\": \"Observation\",\n \"status\": \"final\"\n}\n",
			want: "json: not a FHIR Patient, Bundle or NDJSON",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, tt.in)
			if err == nil {
				t.Fatalf("ReadRecords: got no error, want %q", tt.want)
			}
			if got := chartscan.ErrorMessage(err); got != tt.want {
				t.Errorf("ReadRecords error message = %q, want %q", got, tt.want)
			}
			if got := chartscan.ErrorCode(err); got != chartscan.EInvalid {
				t.Errorf("ReadRecords error code = %q, want %q", got, chartscan.EInvalid)
			}
			for _, v := range phi {
				if strings.Contains(err.Error(), v) {
					t.Errorf("ReadRecords error %q shows patient value %q", err, v)
				}
			}
		})
	}
}

func TestReadRecordsHL7(t *testing.T) {
	for _, in := range []string{
		"MSH|^~\\&|EMPI|HOSP|CHARTSCAN|HOSP|202401011200||ADT^A04|1|P|2.5\rPID|1||00123456^^^HOSP^MR||DOE^JANE||19620314|F\r",
		"\x0bMSH|^~\\&|EMPI\r",
	} {
		err := ReadRecords(strings.NewReader(in), func(chartscan.Patient) error {
			t.Error("ReadRecords called fn for HL7 v2 input")
			return nil
		})
		if !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("ReadRecords(HL7 v2) error = %v, want ErrUnsupportedFormat", err)
		}
		if err == nil || !strings.Contains(err.Error(), "HL7 v2") || strings.Contains(err.Error(), "DOE") {
			t.Errorf("ReadRecords(HL7 v2) error = %v, want it to name HL7 v2 and no patient value", err)
		}
	}
}

func TestReadRecordsStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := ReadRecords(strings.NewReader("mrn,family,given,birth_date\n1234,A,B,\n5678,C,D,\n"), func(chartscan.Patient) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("ReadRecords = %v after %d calls, want the callback's error after 1", err, calls)
	}
}

// TestReadRecordsStreams checks records are handed over before the input is read to its
// end: the reader fails after the records, and they must have reached fn by then.
func TestReadRecordsStreams(t *testing.T) {
	broken := errors.New("connection reset")
	for name, in := range map[string]string{
		"csv":    "mrn,family,given,birth_date\n1234,A,B,\n5678,C,D,\n",
		"ndjson": `{"resourceType":"Patient","identifier":[{"value":"1234"}],"name":[{"family":"A"}]}` + "\n" + `{"resourceType":"Patient","identifier":[{"value":"5678"}],"name":[{"family":"C"}]}` + "\n",
	} {
		calls := 0
		err := ReadRecords(io.MultiReader(strings.NewReader(in), iotest.ErrReader(broken)), func(chartscan.Patient) error {
			calls++
			return nil
		})
		if !errors.Is(err, broken) || calls != 2 {
			t.Errorf("%s: ReadRecords = %v after %d records, want the read error after 2", name, err, calls)
		}
	}
}

func TestReadRecordsIncomplete(t *testing.T) {
	ndjson := func(lines ...string) string { return strings.Join(lines, "\n") + "\n" }
	tests := []struct {
		name string
		in   string
		want []chartscan.Patient
	}{
		{
			name: "csv without a family name, a given name, a birth date, or any of them; partial dates",
			in:   "mrn,family,given,birth_date\n1,,Jane,1975\n2,Doe,,1974-12\n3,,,\n4,Roe,Rich,\n",
			want: []chartscan.Patient{
				{MRN: "1", Given: "Jane", BirthDate: "1975", Sex: "unknown"},
				{MRN: "2", Family: "Doe", BirthDate: "1974-12", Sex: "unknown"},
				{MRN: "3", Sex: "unknown"},
				{MRN: "4", Family: "Roe", Given: "Rich", Sex: "unknown"},
			},
		},
		{
			name: "fhir name.text, partial dates, stubs",
			in: ndjson(
				`{"resourceType":"Patient","identifier":[{"value":"1"}],"name":[{"text":"Jane Q Doe"}],"birthDate":"1975"}`,
				`{"resourceType":"Patient","identifier":[{"value":"2"}],"name":[{"text":"DOE, Jane Q"}],"birthDate":"1974-12"}`,
				`{"resourceType":"Patient","identifier":[{"value":"3"}],"name":[{"text":"山田 太郎"}]}`,
				`{"resourceType":"Patient","identifier":[{"value":"4"}],"name":[{"text":"Baby Boy Doe"}],"birthDate":"2024-05-01"}`,
				`{"resourceType":"Patient","identifier":[{"value":"5"}],"active":false,"link":[{"other":{"reference":"Patient/9"},"type":"replaced-by"}]}`,
				`{"resourceType":"Patient","identifier":[{"value":"6"}],"name":[{"text":"Dr. Maria de la Cruz Jr."}]}`,
				`{"resourceType":"Patient","identifier":[{"value":"7"}],"name":[{"text":"Cher"}]}`,
				`{"resourceType":"Patient","identifier":[{"value":"8"}],"name":[{"family":"Smith","text":"John Smith"}]}`,
			),
			want: []chartscan.Patient{
				{MRN: "1", Family: "Doe", Given: "Jane Q", BirthDate: "1975", Sex: "unknown"},
				{MRN: "2", Family: "DOE", Given: "Jane Q", BirthDate: "1974-12", Sex: "unknown"},
				{MRN: "3", Family: "山田 太郎", Sex: "unknown"},
				{MRN: "4", Family: "Doe", Given: "Baby Boy", BirthDate: "2024-05-01", Sex: "unknown"},
				{MRN: "5", Sex: "unknown"},
				{MRN: "6", Family: "de la Cruz", Given: "Maria", Sex: "unknown"},
				{MRN: "7", Family: "Cher", Sex: "unknown"},
				{MRN: "8", Family: "Smith", Sex: "unknown"},
			},
		},
		{
			name: "fhir name preference: official, then usual, then one without a use; old and nicknames last",
			in: ndjson(
				`{"resourceType":"Patient","identifier":[{"value":"1"}],"name":[{"use":"old","family":"Roe"},{"use":"nickname","given":["Jo"]},{"use":"usual","text":"Joanna Doe"},{"family":"Poe"}]}`,
				`{"resourceType":"Patient","identifier":[{"value":"2"}],"name":[{"use":"maiden","family":"Roe"},{"family":"Poe","given":["Ann"]}]}`,
				`{"resourceType":"Patient","identifier":[{"value":"3"}],"name":[{"use":"official"},{"use":"usual","family":"Doe","given":["Jo"]},{"use":"official","family":"Doe","given":["Joanna"]}]}`,
				`{"resourceType":"Patient","identifier":[{"value":"4"}],"name":[{"use":"old","family":"Roe","given":["Ann"]}]}`,
			),
			want: []chartscan.Patient{
				{MRN: "1", Family: "Doe", Given: "Joanna", Sex: "unknown"},
				{MRN: "2", Family: "Poe", Given: "Ann", Sex: "unknown"},
				{MRN: "3", Family: "Doe", Given: "Joanna", Sex: "unknown"},
				{MRN: "4", Family: "Roe", Given: "Ann", Sex: "unknown"},
			},
		},
		{
			name: "bundle entry without a family name",
			in: `{"resourceType": "Bundle", "entry": [
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "00123456"}], "name": [{"given": ["Jane"]}], "birthDate": "1962-03-14"}}
]}`,
			want: []chartscan.Patient{{MRN: "00123456", Given: "Jane", BirthDate: "1962-03-14", Sex: "unknown"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.in)
			if err != nil {
				t.Fatalf("ReadRecords: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadRecords mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitNameText(t *testing.T) {
	tests := []struct{ text, family, given string }{
		{"Jane Q Doe", "Doe", "Jane Q"},
		{"DOE, Jane Q", "DOE", "Jane Q"},
		{"Doe,Jane", "Doe", "Jane"},
		{"Ludwig van Beethoven", "van Beethoven", "Ludwig"},
		{"Van Morrison", "Morrison", "Van"},
		{"Mrs. Jane Doe III", "Doe", "Jane"},
		{"Doe", "Doe", ""},
		{"王小明", "王小明", ""},
		{"김 민준", "김 민준", ""},
		{"  ", "", ""},
	}
	for _, tt := range tests {
		if f, g := splitNameText(tt.text); f != tt.family || g != tt.given {
			t.Errorf("splitNameText(%q) = %q, %q; want %q, %q", tt.text, f, g, tt.family, tt.given)
		}
	}
}

// TestReadRecordsSkipping reads files in each format with bad records among good ones:
// every good record is read, every bad one is reported by line or entry with its reason,
// and no report shows a value of the record.
func TestReadRecordsSkipping(t *testing.T) {
	phi := []string{"Doe", "Jane", "Roe", "Rich", "Poe", "1962", "1970", "02-30", "Moe", "Zoe"}
	tests := []struct {
		name     string
		in       string
		wantMRNs []string
		wantBad  []BadRecord
	}{
		{
			name: "csv",
			in: "mrn,family,given,birth_date\n1,Doe,Jane,1962-03-14\n,Roe,Rich,1970-01-01\n2,Poe,Jane,1962-02-30\n" +
				"3,Moe,,\n4,Roe\n5,Ro\"e,Rich,1970\n6,Zoe,Jane,1975\n",
			wantMRNs: []string{"1", "3", "6"},
			wantBad: []BadRecord{{"line 3", "no MRN"}, {"line 4", "invalid birth date"},
				{"line 6", "wrong number of fields"}, {"line 7", `bare " in non-quoted-field`}},
		},
		{
			name: "ndjson",
			in: "{broken Doe\n" +
				`{"resourceType":"Patient","identifier":[{"value":"1"}],"name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1962-03-14"}` + "\n" +
				`{"resourceType":"Patient","name":[{"family":"Roe","given":["Rich"]}],"birthDate":"1970-01-01"}` + "\n" +
				`{"resourceType":"Observation","id":"Doe"}` + "\n" +
				`{"family":"Poe"}` + "\n" +
				`["Moe"]` + "\n" +
				`{"resourceType":"Patient","identifier":[{"value":"2"}],"birthDate":"1962-02-30"}` + "\n" +
				`{"resourceType":"Patient","identifier":[{"value":"3"}],"name":"Zoe"}` + "\n" +
				`{"resourceType":"Patient","identifier":[{"value":"4"}],"birthDate":"1970"}` + "\n",
			wantMRNs: []string{"1", "4"},
			wantBad: []BadRecord{{"line 1", "not valid JSON"}, {"line 3", "no MRN"}, {"line 5", "not a FHIR resource"},
				{"line 6", "not a FHIR resource"}, {"line 7", "invalid birth date"}, {"line 8", "field name has the wrong JSON type"}},
		},
		{
			name: "bundle",
			in: `{
 "resourceType": "Bundle",
 "entry": [
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "1"}], "name": [{"family": "Doe"}]}},
  {"resource": {"resourceType": "Organization", "name": "Roe Clinic"}},
  {"resource": {"resourceType": "Patient", "name": [{"family": "Roe", "given": ["Rich"]}], "birthDate": "1970-01-01"}},
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "2"}], "birthDate": "1962-02-30"}},
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "3"}], "name": [{"family": ["Poe"]}]}},
  {"resource": "Moe"},
  {"request": {"method": "DELETE", "url": "Patient/9"}},
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "4"}], "name": [{"text": "Zoe"}], "birthDate": "1974-12"}}
 ]
}`,
			wantMRNs: []string{"1", "4"},
			wantBad: []BadRecord{{"entry[2]", "no MRN"}, {"entry[3]", "invalid birth date"},
				{"entry[4]", "field name.family has the wrong JSON type"}, {"entry[5]", "not a FHIR resource"}},
		},
		{
			name:     "bundle on an ndjson line",
			in:       `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","identifier":[{"value":"1"}]}},{"resource":{"resourceType":"Patient"}}]}` + "\n",
			wantMRNs: []string{"1"},
			wantBad:  []BadRecord{{"line 1 entry[1]", "no MRN"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mrns []string
			var bad []BadRecord
			err := ReadRecordsSkipping(strings.NewReader(tt.in), func(p chartscan.Patient) error {
				mrns = append(mrns, p.MRN)
				return nil
			}, func(b BadRecord) error {
				bad = append(bad, b)
				return nil
			})
			if err != nil {
				t.Fatalf("ReadRecordsSkipping: %v", err)
			}
			if diff := cmp.Diff(tt.wantMRNs, mrns); diff != "" {
				t.Errorf("records read (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBad, bad); diff != "" {
				t.Errorf("records skipped (-want +got):\n%s", diff)
			}
			for _, b := range bad {
				for _, v := range phi {
					if strings.Contains(b.String(), v) {
						t.Errorf("skipped record %q shows patient value %q", b, v)
					}
				}
			}
		})
	}
}

func TestReadRecordsSkippingStopsOnSkipError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := ReadRecordsSkipping(strings.NewReader("mrn,family,given,birth_date\n,A,B,\n,C,D,\n5,E,F,\n"),
		func(chartscan.Patient) error { t.Error("a record after the skip's error was read"); return nil },
		func(BadRecord) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("ReadRecordsSkipping = %v after %d skips, want the skip's error after 1", err, calls)
	}
}
