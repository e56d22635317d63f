package indexer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestAIRA scores the AIRA pairs. No "Not a Match" pair may be filed automatically unless
// the page and the record agree exactly on every field both carry: such a pair (an EMPI
// "overlay", two people under one MRN and one name and birth date) is indistinguishable
// from the true patient's own page, and no filer can reject it without rejecting those.
// The test lists them, so a new one is seen.
func TestAIRA(t *testing.T) {
	wantIndistinguishable := map[string][]string{"MIIS-B.txt": {"D-1124"}, "Dev-Test-2015-01-01.txt": nil}
	for name, want := range wantIndistinguishable {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "testdata", "aira", name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rep, err := RunAIRA(f, DefaultModel())
			if err != nil {
				t.Fatalf("RunAIRA: %v", err)
			}
			t.Logf("%s\n%s", name, rep.Table())
			var got []string
			for _, p := range rep.NotAMatchAuto {
				for _, e := range p.Candidate.Evidence {
					if e.Level != LevelExact && e.Level != LevelMissing {
						t.Errorf("%s: \"Not a Match\" pair filed automatically although %s is %s", p.ID, e.Field, e.Level)
					}
				}
				got = append(got, p.ID)
			}
			if len(got) != len(want) || len(got) > 0 && got[0] != want[0] {
				t.Errorf("\"Not a Match\" pairs filed automatically = %v, want %v", got, want)
			}
			t.Logf("\"Match\" pairs rejected outright (unmatched): %d of %d", len(rep.MatchUnmatched), total(rep.Counts[AIRAMatch]))
			if len(rep.MatchUnmatched) > 0 {
				t.Errorf("\"Match\" pairs rejected outright: %v", rep.MatchUnmatched)
			}
			if rep.Cases < 2800 {
				t.Errorf("RunAIRA read %d cases, want the whole file", rep.Cases)
			}
		})
	}
}

func total[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// BenchmarkAIRA scores the MIIS-B pairs and prints the report once.
func BenchmarkAIRA(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "testdata", "aira", "MIIS-B.txt"))
	if err != nil {
		b.Fatal(err)
	}
	var rep AIRAReport
	for b.Loop() {
		if rep, err = RunAIRA(bytes.NewReader(data), DefaultModel()); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("\n%s", rep.Table())
}
