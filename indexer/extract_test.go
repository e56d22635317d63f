package indexer

import (
	"testing"

	"github.com/chartscan/chartscan"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

type kv = map[chartscan.IdentifierKind]string

const (
	mrn  = chartscan.KindMRN
	name = chartscan.KindName
	dob  = chartscan.KindDOB
	sex  = chartscan.KindSex
	doct = chartscan.KindDocType
	dos  = chartscan.KindDateOfService
)

func TestExtractMRN(t *testing.T) {
	tests := []struct {
		line string
		want kv
	}{
		{"MRN: 00123456", kv{mrn: "00123456"}},
		{"mrn 12-345-678", kv{mrn: "12345678"}},
		{"MR# a12345", kv{mrn: "A12345"}},
		{"MR # 1234567", kv{mrn: "1234567"}},
		{"Med Rec #: 556677", kv{mrn: "556677"}},
		{"Med. Rec. No. 556677", kv{mrn: "556677"}},
		{"Medical Record Number: 12.34.56", kv{mrn: "123456"}},
		{"Medical Record # 998877", kv{mrn: "998877"}},
		{"Patient ID: 4455667", kv{mrn: "4455667"}},
		{"Pt ID 4455667", kv{mrn: "4455667"}},
		{"Unit No. 778899", kv{mrn: "778899"}},
		{"Unit Number: 778899", kv{mrn: "778899"}},
		{"Chart # 5544", kv{mrn: "5544"}},
		{"MR Number: 823160361", kv{mrn: "823160361"}},
		{"Hospital No: 637324682", kv{mrn: "637324682"}},
		{"UR No. 637324", kv{mrn: "637324"}},
		{"MRN: 123 456 789", kv{mrn: "123456789"}},
		{"MRN: #123456,", kv{mrn: "123456"}},
		// OCR noise in the label.
		{"MRN:: 123456", kv{mrn: "123456"}},
		{"MRN:123456", kv{mrn: "123456"}},
		{"MRN:.100941616°", kv{mrn: "100941616"}}, // a speck each side of the number
		{"MR#123456", kv{mrn: "123456"}},
		{"M.R.N. 123456", kv{mrn: "123456"}},
		{"MRN ; 123456", kv{mrn: "123456"}},
		{"MEDICAL REC0RD NUMBER 123456", kv{mrn: "123456"}},
		{"Med Rec ## 123456", kv{mrn: "123456"}},
		// Not MRNs.
		{"MRN: ABCDEF", kv{}},
		{"MRN: 12", kv{}},
		{"Mr. Smith 12345 was seen", kv{}},
		{"Chart reviewed 12345", kv{}},
		// A long number is not extended by the age that follows it.
		{"MRN: 12345678 45", kv{mrn: "12345678"}},
	}
	for _, tt := range tests {
		got := values(Extract(page(tt.line)))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Extract(%q) mismatch (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestExtractName(t *testing.T) {
	tests := []struct {
		lines []string
		want  kv
	}{
		{[]string{"Patient: DOE, Jane"}, kv{name: "DOE, Jane"}},
		{[]string{"Patient Name: Jane Doe"}, kv{name: "DOE, Jane"}},
		{[]string{"Patient Name Jane Marie Doe"}, kv{name: "DOE, Jane"}},
		{[]string{"Name: O'BRIEN, mary-ann"}, kv{name: "O'BRIEN, Mary-Ann"}},
		{[]string{"Pt Name: Smith-Jones, JOHN Q."}, kv{name: "SMITH-JONES, John"}},
		{[]string{"Pt. Name: DOE,JANE"}, kv{name: "DOE, Jane"}},
		{[]string{"Patient: DOE , Jane"}, kv{name: "DOE, Jane"}},
		{[]string{"Name: Mr. John van der Berg"}, kv{name: "VAN DER BERG, John"}},
		{[]string{"Patient: DOE JR, John"}, kv{name: "DOE, John"}},
		{[]string{"Patient: NÚÑEZ, josé"}, kv{name: "NÚÑEZ, José"}},
		{[]string{"Patlent Name: DOE, Jane"}, kv{name: "DOE, Jane"}},
		{[]string{"Patient: Maria Dos Santos"}, kv{name: "DOS SANTOS, Maria"}},
		{[]string{"Last Name: Doe   First Name: Jane"}, kv{name: "DOE, Jane"}},
		// Stops at the next label, a "Something:" word or a wide gap.
		{[]string{"Patient: DOE, Jane Room: 12"}, kv{name: "DOE, Jane"}},
		{[]string{"Patient: Jane Doe   Attending Smith"}, kv{name: "DOE, Jane"}},
		// Someone else's name, or no name at all.
		{[]string{"Physician Name: Gregory House"}, kv{}},
		{[]string{"Mother's Name: Mary Doe"}, kv{}},
		{[]string{"Patient tolerated the procedure well."}, kv{}},
		{[]string{"Patient: 12345"}, kv{}},
		{[]string{"Name: Anna Maria Louisa Schmidt Berg"}, kv{}},
	}
	for _, tt := range tests {
		got := values(Extract(page(tt.lines...)))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Extract(%q) mismatch (-want +got):\n%s", tt.lines, diff)
		}
	}
}

func TestExtractDates(t *testing.T) {
	fixNow(t)
	tests := []struct {
		line string
		want kv
	}{
		{"DOB: 03/14/1962", kv{dob: "1962-03-14"}},
		{"DOB 3/4/1962", kv{dob: "1962-03-04"}},
		{"DOB: 03-14-1962", kv{dob: "1962-03-14"}},
		{"DOB: 1962-03-14", kv{dob: "1962-03-14"}},
		{"DOB: 14.03.1962", kv{dob: "1962-03-14"}},
		{"DOB: 14-Mar-1962", kv{dob: "1962-03-14"}},
		{"DOB: 14 Mar 1962", kv{dob: "1962-03-14"}},
		{"DOB: March 14, 1962", kv{dob: "1962-03-14"}},
		{"DOB: Mar 14 1962", kv{dob: "1962-03-14"}},
		{"DOB: 03/14/62", kv{dob: "1962-03-14"}},
		{"DOB: 03/14/05", kv{dob: "2005-03-14"}},
		{"D.O.B.: 03/14/1962", kv{dob: "1962-03-14"}},
		{"D. O. B. 03/14/1962", kv{dob: "1962-03-14"}},
		{"DOB:03/14/1962", kv{dob: "1962-03-14"}},
		{"Date of Birth: 03/14/1962", kv{dob: "1962-03-14"}},
		{"Birth Date: 03/14/1962", kv{dob: "1962-03-14"}},
		{"Birthdate 03/14/1962", kv{dob: "1962-03-14"}},
		{"Born: 03/14/1962", kv{dob: "1962-03-14"}},
		// A footer: "Born" right before a date, no colon and no wide gap before it.
		{"DAVIS, JOSEPH Born 2019-10-14", kv{name: "DAVIS, Joseph", dob: "2019-10-14"}},
		{"She was born in the spring", kv{}},
		{"Patient Name: Gerge Wilson Date of Bith. March 27, 1985", kv{name: "WILSON, Gerge", dob: "1985-03-27"}},
		{"DOB: 02/30/1962", kv{}},
		{"DOB: 13/13/1962", kv{}},
		{"DOB: 03/14/2027", kv{}}, // in the future
		{"Date of Service: 04/01/2024", kv{dos: "2024-04-01"}},
		{"DOS 04/01/2024", kv{dos: "2024-04-01"}},
		{"MRN: 123456 DOS: 04/01/2024", kv{mrn: "123456", dos: "2024-04-01"}},
		{"Service Date: 2024-04-01", kv{dos: "2024-04-01"}},
		{"Visit Date: 1 Apr 2024", kv{dos: "2024-04-01"}},
		{"Encounter Date: April 1, 2024", kv{dos: "2024-04-01"}},
		{"Admission Date: 04/01/24", kv{dos: "2024-04-01"}},
		{"Admit Date: 04/01/2024", kv{dos: "2024-04-01"}},
		{"Date of Admission: 04/01/2024", kv{dos: "2024-04-01"}},
		{"Procedure Date: 04/01/2024", kv{dos: "2024-04-01"}},
		{"Collected: 04/01/2024 08:30", kv{dos: "2024-04-01"}},
		{"Report Date: 04/01/2024", kv{dos: "2024-04-01"}},
		{"Date: 04/01/2024", kv{dos: "2024-04-01"}},
		{"Date: pending", kv{}},
	}
	for _, tt := range tests {
		got := values(Extract(page(tt.line)))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Extract(%q) mismatch (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestExtractSex(t *testing.T) {
	tests := []struct {
		line string
		want kv
	}{
		{"Sex: M", kv{sex: "male"}},
		{"Sex: Female", kv{sex: "female"}},
		{"Gender: F", kv{sex: "female"}},
		{"Gender: Other", kv{sex: "other"}},
		{"Sex: U", kv{sex: "unknown"}},
		{"Sex/Gender: M", kv{sex: "male"}},
		{"Sex: pending", kv{}},
	}
	for _, tt := range tests {
		got := values(Extract(page(tt.line)))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Extract(%q) mismatch (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestExtractDocType(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{"PROGRESS NOTE", "Patient seen today."}, chartscan.DocTypeProgressNote},
		{[]string{"Discharge Summary"}, chartscan.DocTypeDischargeSummary},
		{[]string{"LABORATORY REPORT"}, chartscan.DocTypeLab},
		{[]string{"Lab Results"}, chartscan.DocTypeLab},
		{[]string{"Radiology Report"}, chartscan.DocTypeRadiology},
		{[]string{"X-Ray Chest 2 Views"}, chartscan.DocTypeRadiology},
		{[]string{"CT SCAN OF THE ABDOMEN"}, chartscan.DocTypeRadiology},
		{[]string{"MRI Report"}, chartscan.DocTypeRadiology},
		{[]string{"OPERATIVE REPORT"}, chartscan.DocTypeOperative},
		{[]string{"Brief Op Note"}, chartscan.DocTypeOperative},
		{[]string{"Informed Consent for Surgery"}, chartscan.DocTypeConsent},
		{[]string{"Consent Form"}, chartscan.DocTypeConsent},
		{[]string{"Nursing Assessment"}, chartscan.DocTypeNursing},
		{[]string{"Nursing Flowsheet"}, chartscan.DocTypeNursing},
		// The heading wins over a mention in the body, even a later, longer one.
		{[]string{"PROGRESS NOTE", "MRN: 123456", "Will review the MRI report with the patient and family tomorrow."},
			chartscan.DocTypeProgressNote},
		{[]string{"Patient seen and examined at bedside this morning by the team.", "Nothing else.", "Plan: x", "More text",
			"The discharge summary was sent to the primary care physician last week."}, chartscan.DocTypeDischargeSummary},
	}
	for _, tt := range tests {
		got := values(Extract(page(tt.lines...)))[doct]
		if got != tt.want {
			t.Errorf("Extract(%q) doc type = %q, want %q", tt.lines, got, tt.want)
		}
	}
}

func TestExtractDocTypeConfidence(t *testing.T) {
	heading := Extract(page("DISCHARGE SUMMARY"))
	body := Extract(page("a", "b", "c", "d", "e", "f", "g", "h", "The discharge summary was sent to the physician last week."))
	if len(heading) != 1 || len(body) != 1 {
		t.Fatalf("Extract: got %v and %v, want one doc type each", heading, body)
	}
	if heading[0].Confidence <= body[0].Confidence {
		t.Errorf("heading confidence %v, body mention %v: want the heading higher", heading[0].Confidence, body[0].Confidence)
	}
}

func TestExtractSeveralFieldsOnOneLine(t *testing.T) {
	fixNow(t)
	tests := []struct {
		lines []string
		want  kv
	}{
		{[]string{"Patient: DOE, Jane   DOB: 03/14/1962"}, kv{name: "DOE, Jane", dob: "1962-03-14"}},
		{[]string{"Patient: DOE, Jane DOB: 03/14/1962 MRN: 123456 Sex: F"},
			kv{name: "DOE, Jane", dob: "1962-03-14", mrn: "123456", sex: "female"}},
		{[]string{"MRN 123456   Name Jane Doe   DOB 3/14/1962   Sex F"},
			kv{name: "DOE, Jane", dob: "1962-03-14", mrn: "123456", sex: "female"}},
		{[]string{"Name:DOE,JANE DOB:03/14/1962 MRN:123456"},
			kv{name: "DOE, Jane", dob: "1962-03-14", mrn: "123456"}},
		{[]string{"OPERATIVE REPORT", "Patient: SMITH-JONES, Ann   MRN: 00-778-899", "Date of Birth: 1 Feb 1950   Date of Service: 2024-04-01"},
			kv{doct: chartscan.DocTypeOperative, name: "SMITH-JONES, Ann", mrn: "00778899", dob: "1950-02-01", dos: "2024-04-01"}},
	}
	for _, tt := range tests {
		got := values(Extract(page(tt.lines...)))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Extract(%q) mismatch (-want +got):\n%s", tt.lines, diff)
		}
	}
}

func TestExtractIdentifierDetail(t *testing.T) {
	fixNow(t)
	// "Patient: DOE, Jane   MRN: 12 34 56" laid out by page: x positions below.
	words := page("Patient: DOE, Jane   MRN: 12 34 56")
	words[2].Conf = 60 // "Jane"
	got := Extract(words)
	want := []chartscan.Identifier{
		{
			Kind: mrn, Value: "123456", Raw: "12 34 56",
			Confidence: 0.9 * 0.9, // OCR 90, joined groups 0.9
			Box:        chartscan.Box{X0: words[4].Box.X0, Y0: firstLine, X1: words[6].Box.X1, Y1: firstLine + wordH},
		},
		{
			Kind: name, Value: "DOE, Jane", Raw: "DOE, Jane",
			Confidence: 0.75 * 0.9, // mean OCR (90+60)/2, weak label "Patient" 0.9
			Box:        chartscan.Box{X0: words[1].Box.X0, Y0: firstLine, X1: words[2].Box.X1, Y1: firstLine + wordH},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("Extract mismatch (-want +got):\n%s", diff)
	}
}

func TestExtractBest(t *testing.T) {
	fixNow(t)
	// The labelled visit date beats the bare "Date:".
	got := values(Extract(page("Date: 01/02/2024", "Visit Date: 04/01/2024")))
	if got[dos] != "2024-04-01" {
		t.Errorf("date of service = %q, want the visit date 2024-04-01", got[dos])
	}
	// Two different MRNs on one page: the better reading is kept at half confidence.
	ids := Extract(page("MRN: 123456", "Pt ID 654321"))
	if len(ids) != 1 || ids[0].Value != "123456" {
		t.Fatalf("Extract = %v, want one MRN 123456", ids)
	}
	if want := 0.9 * 0.5; ids[0].Confidence != want {
		t.Errorf("conflicting MRN confidence = %v, want %v", ids[0].Confidence, want)
	}
}

func TestExtractGlueBox(t *testing.T) {
	words := []chartscan.Word{{Text: "MRN:123456", Conf: 80, Box: chartscan.Box{X0: 0, Y0: 0, X1: 100, Y1: 20}}}
	got := Extract(words)
	want := []chartscan.Identifier{{Kind: mrn, Value: "123456", Raw: "123456", Confidence: 0.8,
		Box: chartscan.Box{X0: 40, Y0: 0, X1: 100, Y1: 20}}}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("Extract mismatch (-want +got):\n%s", diff)
	}
}

func TestLines(t *testing.T) {
	words := []chartscan.Word{
		{Text: "Jane", Box: chartscan.Box{X0: 200}, Block: 1, Line: 2},
		{Text: "MRN:", Box: chartscan.Box{X0: 10}, Block: 1, Line: 1},
		{Text: "Patient:", Box: chartscan.Box{X0: 10}, Block: 1, Line: 2},
		{Text: "footer", Box: chartscan.Box{X0: 10}, Block: 2, Line: 1},
		{Text: "123456", Box: chartscan.Box{X0: 100}, Block: 1, Line: 1},
		{Text: "  ", Box: chartscan.Box{X0: 150}, Block: 1, Line: 1},
		{Text: "DOE,", Box: chartscan.Box{X0: 100}, Block: 1, Line: 2},
	}
	got := Lines(words)
	want := []string{"MRN: 123456", "Patient: DOE, Jane", "footer"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Lines mismatch (-want +got):\n%s", diff)
	}
}
