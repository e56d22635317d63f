package assemble

import (
	"strings"
	"testing"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/deliver"
)

func TestFHIRSystem(t *testing.T) {
	for in, want := range map[string]string{
		"2.16.840.1.113883.19.5":         "urn:oid:2.16.840.1.113883.19.5",
		"urn:oid:2.16.840.1.113883.19.5": "urn:oid:2.16.840.1.113883.19.5",
		"https://ehr.test/mrn":           "https://ehr.test/mrn",
		" http://ehr.test/mrn ":          "http://ehr.test/mrn",
		"EXAMPLE":                        "",
		"":                               "",
		"urn:":                           "",
		"https://ehr.test/a b":           "",
		"2.16.08":                        "",
	} {
		got, ok := FHIRSystem(in)
		if got != want || ok != (want != "") {
			t.Errorf("FHIRSystem(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// FHIR names the MRN's system by URI: the patient's own when it is one, the facility's
// URI for the facility's namespace or none; another authority's namespace is refused.
func TestBuilderFHIRSystems(t *testing.T) {
	b := &Builder{Facility: deliver.Facility{Name: "TESTHOSPITAL", MRNSystem: "EXAMPLE"}, MRNSystemURI: "urn:oid:2.16.840.1.113883.19.5"}
	for own, want := range map[string]string{
		"":                     "",
		"EXAMPLE":              "",
		"example":              "",
		"https://ehr.test/mrn": "https://ehr.test/mrn",
		"1.2.3":                "urn:oid:1.2.3",
		"OTHER":                "error",
	} {
		d, err := b.FHIR(deliver.Document{Patient: deliver.Patient{MRN: "TEST900001", MRNSystem: own}})
		switch {
		case want == "error":
			if chartscan.ErrorCode(err) != chartscan.EInvalid || strings.Contains(err.Error(), "TEST900001") {
				t.Errorf("patient system %q: %v, want a refusal naming no MRN", own, err)
			}
		case err != nil || d.Patient.MRNSystem != want || d.Facility.MRNSystem != b.MRNSystemURI:
			t.Errorf("patient system %q: patient %q, facility %q, %v; want %q", own, d.Patient.MRNSystem, d.Facility.MRNSystem, err, want)
		}
	}
	// Without a URI setting, the facility's own system serves if it is one.
	b.MRNSystemURI, b.Facility.MRNSystem = "", "https://ehr.test/mrn"
	if d, err := b.FHIR(deliver.Document{}); err != nil || d.Facility.MRNSystem != "https://ehr.test/mrn" {
		t.Errorf("facility system a URI: %q, %v", d.Facility.MRNSystem, err)
	}
	b.Facility.MRNSystem = "EXAMPLE"
	if _, err := b.FHIR(deliver.Document{}); err == nil || !strings.Contains(err.Error(), "CHARTSCAN_MRN_SYSTEM_URI") {
		t.Errorf("no URI anywhere: %v, want the setting named", err)
	}
}

func TestControlIDAndTitle(t *testing.T) {
	a, b := ControlID("doc-v1", "mdm"), ControlID("doc-v1", "cancel")
	if len(a) != 20 || a == b || a != ControlID("doc-v1", "mdm") || strings.ContainsAny(a, `|^~\&`) {
		t.Errorf("control ids %q, %q", a, b)
	}
	if got := Title(chartscan.DocTypeDischargeSummary, "2024-03-05"); got != "Discharge summary, 2024-03-05" {
		t.Errorf("title %q", got)
	}
	if got := Title("", ""); got != "Scanned document" {
		t.Errorf("title of an unknown type %q", got)
	}
	if Number("abc", 2) != "abc-v2" {
		t.Errorf("number %q", Number("abc", 2))
	}
}
