package indexer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chartscan/chartscan"
	"github.com/google/go-cmp/cmp"
)

// cell is text placed at (x, y) on a page, the way Tesseract reports a table cell or a
// corner stamp: a block of its own.
type cell struct {
	x, y int
	text string
}

// cells lays out the cells as OCR words, each cell its own block. Words are split on
// spaces with the spacing of page.
func cells(cs ...cell) []chartscan.Word {
	var words []chartscan.Word
	for i, c := range cs {
		x := c.x
		for j, w := range strings.Split(c.text, " ") {
			if w == "" {
				x += extraGap
				continue
			}
			if j > 0 {
				x += wordGap
			}
			wd := utf8.RuneCountInString(w) * charW
			words = append(words, chartscan.Word{Text: w, Conf: wordConf,
				Box: chartscan.Box{X0: x, Y0: c.y, X1: x + wd, Y1: c.y + wordH}, Block: i + 1, Line: 1})
			x += wd
		}
	}
	return words
}

func TestExtractTableForm(t *testing.T) {
	fixNow(t)
	// A ruled grid: the header row holds the labels, the row under it the values; each
	// cell a block of its own, the rules read as '|'.
	words := cells(
		cell{40, 100, "|"}, cell{60, 100, "Patient Name"}, cell{330, 100, "|"}, cell{350, 100, "MRN"},
		cell{530, 100, "|"}, cell{550, 100, "DOB"}, cell{720, 100, "|"}, cell{740, 100, "Sex"}, cell{820, 100, "Visit"},
		cell{60, 135, "OKAFOR, Adaeze"}, cell{350, 135, "40012345"}, cell{550, 135, "03/14/1962"},
		cell{740, 135, "F"}, cell{820, 135, "2024-05-01"},
		cell{60, 300, "Assessment: stable."},
	)
	got := Extract(words)
	want := kv{name: "OKAFOR, Adaeze", mrn: "40012345", dob: "1962-03-14", sex: "female"}
	if diff := cmp.Diff(want, values(got)); diff != "" {
		t.Fatalf("table form (-want +got):\n%s", diff)
	}
	// Every value keeps the box it was read from: the value row, in its column.
	for _, id := range got {
		if id.Kind == mrn && (id.Box.Y0 != 135 || id.Box.X0 != 350) {
			t.Errorf("MRN box %+v, want the value cell at (350,135)", id.Box)
		}
	}
}

func TestExtractLabelAboveValue(t *testing.T) {
	fixNow(t)
	// A boxed form: small labels at the top of their boxes, values below, all in one
	// Tesseract line per cell.
	words := cells(
		cell{60, 100, "Medical Record Number"}, cell{500, 100, "Date of Birth"},
		cell{60, 130, "7788 1234"}, cell{500, 130, "08-MAY-1978"},
		cell{60, 180, "Last Name"}, cell{300, 180, "First Name"},
		cell{60, 210, "TANAKA"}, cell{300, 210, "Hiro"},
	)
	want := kv{mrn: "77881234", dob: "1978-05-08", name: "TANAKA, Hiro"}
	if diff := cmp.Diff(want, values(Extract(words))); diff != "" {
		t.Fatalf("labels above values (-want +got):\n%s", diff)
	}
}

func TestExtractHeaderRowNotAName(t *testing.T) {
	fixNow(t)
	// The label row misread ("Med Rec No" as "Med Ree No") must not be taken for a name,
	// and a header row with no values under it is an identifier area left unread.
	words := cells(
		cell{60, 100, "Patient Name"}, cell{330, 100, "Med Ree No"}, cell{550, 100, "DOB"},
		cell{60, 400, "Plan: continue current medications."},
	)
	got := allValues(Extract(words))
	if _, ok := got[name]; ok {
		t.Errorf("header row read as a name: %q", got[name])
	}
	if got[chartscan.KindUnread] != "name,dob" {
		t.Errorf("unread = %q, want name,dob", got[chartscan.KindUnread])
	}
}

func TestExtractImprint(t *testing.T) {
	fixNow(t)
	// An addressograph imprint in the top right corner: unlabelled lines, the MRN alone,
	// FAMILY GIVEN in capitals, the birth date with sex and age, a doctor, a clinic. The
	// hospital's name shares the first row on the left.
	words := cells(
		cell{60, 100, "EXAMPLE GENERAL HOSPITAL"},
		cell{900, 100, "40012345"},
		cell{900, 125, "NGUYEN THI"},
		cell{900, 150, "11/02/1957 F 67Y"},
		cell{900, 175, "DR A. EXAMPLE"},
		cell{900, 200, "CARDIOLOGY CLINIC"},
		cell{60, 300, "PROGRESS NOTE"},
		cell{60, 340, "Patient seen today, feeling better."},
	)
	got := Extract(words)
	want := kv{mrn: "40012345", name: "NGUYEN, Thi", dob: "1957-11-02", sex: "female", doct: "progress_note"}
	if diff := cmp.Diff(want, values(got)); diff != "" {
		t.Fatalf("imprint (-want +got):\n%s", diff)
	}
	for _, id := range got {
		if id.Kind == name && (id.Box.X0 != 900 || id.Box.Y0 != 125) {
			t.Errorf("name box %+v, want the imprint's second line", id.Box)
		}
		if id.Kind == mrn && id.Confidence >= 0.9*wordConf/100 {
			t.Errorf("an unlabelled MRN has confidence %.2f, as much as a labelled one", id.Confidence)
		}
	}
}

func TestExtractSticker(t *testing.T) {
	fixNow(t)
	words := cells(
		cell{700, 100, "OKONKWO, Chidi"},
		cell{700, 125, "40099887"},
		cell{700, 150, "1984-07-30 M"},
		cell{700, 175, "ACCT 00123456"},
	)
	want := kv{mrn: "40099887", name: "OKONKWO, Chidi", dob: "1984-07-30", sex: "male"}
	if diff := cmp.Diff(want, values(Extract(words))); diff != "" {
		t.Fatalf("sticker (-want +got):\n%s", diff)
	}
}

func TestExtractLabelledStamp(t *testing.T) {
	fixNow(t)
	// An addressograph stamp that labels the number and the date but not the name; and
	// one without the number, whose ISO birth date must not be read as an MRN.
	words := cells(cell{60, 100, "OKAFOR, Adaeze"}, cell{60, 125, "MR# 40012345"}, cell{60, 150, "DOB 1962-03-14 F"})
	want := kv{mrn: "40012345", name: "OKAFOR, Adaeze", dob: "1962-03-14", sex: "female"}
	if diff := cmp.Diff(want, values(Extract(words))); diff != "" {
		t.Errorf("labelled stamp (-want +got):\n%s", diff)
	}
	words = cells(cell{60, 100, "OKAFOR, Adaeze"}, cell{60, 125, "DOB 1962-03-14"}, cell{60, 150, "SEX F"})
	if got := values(Extract(words)); got[mrn] != "" || got[dob] != "1962-03-14" {
		t.Errorf("stamp without a number: %v", got)
	}
}

func TestExtractNoBlockInProse(t *testing.T) {
	fixNow(t)
	// Body text with a heading, a date and a number is not an identifier block.
	words := page("Blood Pressure", "03/14/2024", "120 80", "Follow up in two weeks.")
	if got := values(Extract(words)); got[name] != "" || got[mrn] != "" {
		t.Errorf("prose read as an identifier block: %v", got)
	}
}

func TestExtractFooterAndLabSystem(t *testing.T) {
	fixNow(t)
	footer := page("Assessment: stable.", "", "SMITH-JONES, Mary  |  MRN 40055555  |  DOB 12/01/1970  |  Page 2 of 3")
	got := allValues(Extract(footer))
	if got[mrn] != "40055555" || got[dob] != "1970-12-01" || got[name] != "SMITH-JONES, Mary" || got[chartscan.KindPageNumber] != "2/3" {
		t.Errorf("footer: %v", got)
	}
	lab := page("NAME: DOE, JANE          DOB: 08-MAY-1978   AGE: 42Y   SEX: F",
		"MRN: 40012345   ACCT: 998877665   LOC: 4W")
	want := kv{name: "DOE, Jane", dob: "1978-05-08", sex: "female", mrn: "40012345"}
	if diff := cmp.Diff(want, values(Extract(lab))); diff != "" {
		t.Errorf("lab-system header (-want +got):\n%s", diff)
	}
}

func TestExtractPageNumber(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{"PROGRESS NOTE", "text", "Page 2 of 3"}, "2/3"},
		{[]string{"PROGRESS NOTE", "text", "Pg 2/3"}, "2/3"},
		{[]string{"PROGRESS NOTE", "text", "Pg. 1/1"}, "1/1"},
		{[]string{"PROGRESS NOTE", "text", "text", "text", "text", "text", "text", "Example Hospital  2 of 3"}, "2/3"},
		{[]string{"PROGRESS NOTE", "text", "Page 4"}, "4"},
		{[]string{"PROGRESS NOTE", "text", "Page l of l"}, "1/1"},
		{[]string{"PROGRESS NOTE", "text", "Page 1 of 1"}, "1/1"},
		{[]string{"Page 3 of 5", "text", "footer"}, "3/5"},
		// Not page numbers.
		{[]string{"header", "Take 1 of 2 tablets daily with food as directed by the clinic.", "line", "line", "line", "line", "line", "line", "footer"}, ""},
		{[]string{"header", "BP 120/80", "footer"}, ""},
	}
	for _, tt := range tests {
		got := allValues(Extract(page(tt.lines...)))[chartscan.KindPageNumber]
		if got != tt.want {
			t.Errorf("Extract(%q) page number = %q, want %q", tt.lines, got, tt.want)
		}
	}
	for _, tt := range []struct {
		lines []string
		want  bool
	}{
		{[]string{"Hospital", "PROGRESS NOTE (continued)", "text", "text", "text", "text", "text", "text"}, true},
		{[]string{"Hospital", "Nursing notes, cont.", "text", "text", "text", "text", "text", "text"}, true},
		{[]string{"Hospital", "NOTE", "text", "text", "text", "text", "text", "Plan to be continued at the next visit as discussed today."}, false},
	} {
		_, got := allValues(Extract(page(tt.lines...)))[chartscan.KindContinued]
		if got != tt.want {
			t.Errorf("Extract(%q) continued = %v, want %v", tt.lines, got, tt.want)
		}
	}
	if p, ok := ParsePageNumber("2/3"); !ok || !p.Follows(PageNumber{1, 3}) || p.Follows(PageNumber{1, 4}) {
		t.Errorf("ParsePageNumber(2/3) = %v, %v; Follows wrong", p, ok)
	}
}

func TestReferentialEvidence(t *testing.T) {
	fixNow(t)
	// A footer line: the name printed without a label. Extract reads the MRN and the birth
	// date; the EMPI record the MRN leads to is supported by the name on the page.
	words := page("Assessment: stable.", "", "SMITH-JONES, Mary  |  MRN 40055555  |  DOB 12/01/1970  |  Page 2 of 3")
	mrns, dates := Probes(words)
	if !slices.Contains(mrns, "40055555") || !slices.Contains(dates, "1970-12-01") {
		t.Fatalf("Probes = %v, %v", mrns, dates)
	}
	mary := chartscan.Patient{MRN: "40055555", Family: "Smith-Jones", Given: "Mary", BirthDate: "1970-12-01"}
	found, ok := Supported(words, mary, "40055555")
	if !ok {
		t.Fatal("the page does not support its own patient")
	}
	got := values(Complete(Extract(words), found))
	want := kv{mrn: "40055555", dob: "1970-12-01", name: "SMITH-JONES, Mary"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("completed identifiers (-want +got):\n%s", diff)
	}
	// Another patient the same number leads to (a misread MRN) is not supported: the
	// page shows neither their name nor their birth date.
	other := chartscan.Patient{MRN: "40055556", Family: "Okafor", Given: "Ada", BirthDate: "1980-02-02"}
	if _, ok := Supported(words, other, "40055555"); ok {
		t.Error("a patient whose name and birth date the page does not show is supported")
	}
	// Found fields never override the page's own reading when it disagrees.
	own := Extract(page("Patient: OKAFOR, Ada  MRN: 40055555"))
	if got := values(Complete(own, found)); got[name] != "OKAFOR, Ada" || got[dob] != "" {
		t.Errorf("Complete over a disagreeing name = %v", got)
	}
	// Without an MRN, name and birth date must both appear, the given name too.
	noMRN := page("Seen today: Mary Smith-Jones, born 12/01/1970.")
	if _, ok := Supported(noMRN, mary, ""); !ok {
		t.Error("name and birth date in prose do not support the patient")
	}
	if _, ok := Supported(page("Seen today: Mr Smith-Jones, born 12/01/1970."), mary, ""); ok {
		t.Error("family name and birth date alone support the patient")
	}
}
