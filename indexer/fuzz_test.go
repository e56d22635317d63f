package indexer

import (
	"strings"
	"testing"

	"github.com/chartscan/chartscan"
)

func FuzzExtract(f *testing.F) {
	f.Add("Patient: DOE, Jane   DOB: 03/14/1962\nMRN:123456 Sex: F\nDISCHARGE SUMMARY")
	f.Add("Name: Mr. John van der Berg Jr.\nDate: March 14, 1962")
	f.Add("MR# ,,, : # DOB")
	f.Add("Last Name: ,\nFirst Name: '-")
	f.Fuzz(func(t *testing.T, s string) {
		ids := Extract(page(strings.Split(s, "\n")...))
		seen := map[chartscan.IdentifierKind]bool{}
		for _, id := range ids {
			if seen[id.Kind] {
				t.Errorf("Extract(%q): two identifiers of kind %s", s, id.Kind)
			}
			seen[id.Kind] = true
			if id.Confidence < 0 || id.Confidence > 1 {
				t.Errorf("Extract(%q): %s confidence %v out of [0,1]", s, id.Kind, id.Confidence)
			}
			if (id.Kind == chartscan.KindDOB || id.Kind == chartscan.KindDateOfService) && !isISODate(id.Value) {
				t.Errorf("Extract(%q): %s value %q is not YYYY-MM-DD", s, id.Kind, id.Value)
			}
		}
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"03/14/1962", "14.03.62", "March 14, 1962", "14-Mar-1962", "1962-03-14", "2/30/2000", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseDate(s)
		if !ok {
			return
		}
		if !isISODate(got) {
			t.Fatalf("ParseDate(%q) = %q, not YYYY-MM-DD", s, got)
		}
		if again, ok := ParseDate(got); !ok || again != got {
			t.Errorf("ParseDate(%q) = %q, %v; want it unchanged", got, again, ok)
		}
	})
}
