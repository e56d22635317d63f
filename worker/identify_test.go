package worker

import (
	"context"
	"strings"
	"testing"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
)

// prose lays out lines of text as OCR words, 10 px a character, 40 px a line.
func prose(lines ...string) []chartscan.Word {
	var words []chartscan.Word
	for i, ln := range lines {
		x := 100
		for _, w := range strings.Fields(ln) {
			words = append(words, chartscan.Word{Text: w, Conf: 92,
				Box: chartscan.Box{X0: x, Y0: 100 + 40*i, X1: x + 10*len(w), Y1: 120 + 40*i}, Block: 1, Line: i + 1})
			x += 10*len(w) + 8
		}
	}
	return words
}

// TestIdentifyFromTheEMPI: a page that prints its patient's MRN, name and birth date in a
// layout no label reads is identified by the EMPI record the MRN leads to, when the page
// also shows that record's name and birth date; a page whose MRN leads to a patient it
// does not otherwise show gains nothing.
func TestIdentifyFromTheEMPI(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	pats := []chartscan.Patient{
		{MRN: "400555554", Family: "Smith-Jones", Given: "Mary", BirthDate: "1970-12-01", Sex: "female"},
		{MRN: "400555562", Family: "Okafor", Given: "Ada", BirthDate: "1980-02-02", Sex: "female"},
	}
	if _, err := h.db.ImportPatients(ctx, func(yield func(chartscan.Patient) error) error {
		for _, p := range pats {
			if err := yield(p); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	page := prose("EXAMPLE CLINIC (synthetic)", "Seen today in clinic: Mary Smith-Jones, 12/01/1970.",
		"Reference 400555554 on file.", "Plan: review in two weeks.")
	ids, err := h.w.identify(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	e := indexer.EvidenceFrom(ids)
	if e.MRN.Value != "400555554" || e.Family.Value != "smithjones" || e.DOB.Value != "1970-12-01" {
		t.Errorf("identify = %+v, want Mary Smith-Jones's MRN, name and birth date", e)
	}
	for _, id := range ids {
		if id.Kind == chartscan.KindMRN && (id.Box.Y0 != 180 || id.Confidence >= 0.92) {
			t.Errorf("the MRN found by the EMPI's lead: box %+v confidence %.2f, want the page's token at a label's discount", id.Box, id.Confidence)
		}
	}

	// Ada's MRN on a page that shows neither her name nor her birth date.
	other := prose("Seen today in clinic: Mary Smith-Jones.", "Reference 400555562 on file.")
	ids, err = h.w.identify(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if e := indexer.EvidenceFrom(ids); e.MRN.Value != "" || e.DOB.Value != "" {
		t.Errorf("identify filled in %+v from a patient the page does not show", e)
	}
}
