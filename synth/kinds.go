package synth

import (
	"math/rand/v2"

	"github.com/chartscan/chartscan"
)

// confusable lists, for each digit, the digits a tired clerk or a poor scan turns it
// into. Every digit has at least one, so every MRN has a substitution slip.
var confusable = [10]string{
	0: "8",
	1: "7",
	2: "7",
	3: "8",
	4: "9",
	5: "6",
	6: "58",
	7: "12",
	8: "306",
	9: "4",
}

// digitSlips returns every string one slip away from s: one digit swapped with its
// differing neighbour and, if subst, one digit replaced by a confusable one. Non-digits
// are left alone.
func digitSlips(s string, subst bool) []string {
	var out []string
	b := []byte(s)
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := range b {
		if !isDigit(b[i]) {
			continue
		}
		if i+1 < len(b) && isDigit(b[i+1]) && b[i] != b[i+1] {
			b[i], b[i+1] = b[i+1], b[i]
			out = append(out, string(b))
			b[i], b[i+1] = b[i+1], b[i]
		}
		if subst {
			d := b[i]
			for _, r := range []byte(confusable[d-'0']) {
				b[i] = r
				out = append(out, string(b))
			}
			b[i] = d
		}
	}
	return out
}

// slipMRN returns mrn with one digit slip (a confusable substitution or an adjacent
// transposition) that taken(slip) reports free, and false if there is none.
func slipMRN(mrn string, rng *rand.Rand, taken func(string) bool) (string, bool) {
	slips := digitSlips(mrn, true)
	for _, i := range rng.Perm(len(slips)) {
		if !taken(slips[i]) {
			return slips[i], true
		}
	}
	return "", false
}

// nearTwin returns a twin of p for the EMPI: the same surname, birth date and address
// (so the same phone), a different first name from fake_1000 and a new MRN not in used,
// which it adds to used.
func nearTwin(p chartscan.Patient, rng *rand.Rand, used map[string]bool) chartscan.Patient {
	t := p
	names := femaleGiven
	if rng.IntN(2) == 0 {
		names = maleGiven
	}
	for t.Given == "" || t.Given == p.Given || p.Given != "" && t.Given[0] == p.Given[0] {
		t.Given = names[rng.IntN(len(names))]
	}
	t.Sex = sexOf(t.Given)
	t.MRN = newMRN(rng, used)
	return t
}
