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
			name: "csv no family name",
			in:   "mrn,family,given,birth_date\n00123456,,Jane,1962-03-14\n",
			want: "line 2: no family name",
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
			name: "ndjson partial birth date",
			in:   `{"resourceType":"Patient","identifier":[{"value":"00123456"}],"name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1962-03"}`,
			want: "line 1: invalid birth date",
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
			name: "bundle no family name",
			in: `{
 "resourceType": "Bundle",
 "entry": [
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "A9988"}], "name": [{"family": "Smith", "given": ["John"]}]}},
  {"resource": {"resourceType": "Patient", "identifier": [{"value": "00123456"}], "name": [{"given": ["Jane"]}], "birthDate": "1962-03-14"}}
 ]
}`,
			want: "entry[1]: no family name",
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
			name: "json that is not a bundle",
			in:   "{\n \"resourceType\": \"Patient\",\n \"name\": [{\"family\": \"Doe\"}]\n}\n",
			want: "json: not a FHIR Bundle or NDJSON",
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
