package synth

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
	"github.com/google/go-cmp/cmp"
)

// population returns the first n patients of the population for seed.
func population(t testing.TB, n int, seed int64) []chartscan.Patient {
	t.Helper()
	var ps []chartscan.Patient
	if err := Population(n, seed, func(p chartscan.Patient) error {
		ps = append(ps, p)
		return nil
	}); err != nil {
		t.Fatalf("Population: %v", err)
	}
	return ps
}

func TestPopulation(t *testing.T) {
	const n = 200_000
	ps := population(t, n, 7)
	if len(ps) != n {
		t.Fatalf("got %d patients, want %d", len(ps), n)
	}
	if diff := cmp.Diff(ps[:1000], population(t, 1000, 7)); diff != "" {
		t.Errorf("a smaller population of one seed is not a prefix (-big +small):\n%s", diff)
	}
	if other := population(t, 10, 8); cmp.Equal(other, ps[:10]) {
		t.Error("seeds 7 and 8 gave the same patients")
	}

	mrns := make(map[string]bool, n)
	family, given := map[string]int{}, map[string]int{}
	sexes := map[string]int{}
	lo, hi := "9999", "0000"
	for _, p := range ps {
		if !ValidMRN(p.MRN) || p.MRN[0] == '0' {
			t.Fatalf("invalid MRN %q", p.MRN)
		}
		if mrns[p.MRN] {
			t.Fatalf("MRN %s twice", p.MRN)
		}
		mrns[p.MRN] = true
		if _, err := time.Parse(time.DateOnly, p.BirthDate); err != nil {
			t.Fatalf("birth date %q: %v", p.BirthDate, err)
		}
		lo, hi = min(lo, p.BirthDate), max(hi, p.BirthDate)
		for _, f := range []string{p.Family, p.Given, p.Sex, p.Street, p.City, p.Postcode, p.State, p.Phone} {
			if f == "" {
				t.Fatalf("patient with an empty field: %+v", p)
			}
		}
		if femaleNames[p.Given] && p.Sex == "male" || maleNames[p.Given] && p.Sex == "female" {
			t.Errorf("%s is %s", p.Given, p.Sex)
		}
		family[p.Family]++
		given[p.Given]++
		sexes[p.Sex]++
	}
	if lo > "1920-12-31" || hi < "2024-01-01" || lo < "1920-01-01" || hi > "2024-12-31" {
		t.Errorf("birth dates span %s to %s, want 1920 to 2024", lo, hi)
	}
	for _, s := range []string{"female", "male", "unknown", "other"} {
		if sexes[s] == 0 {
			t.Errorf("no %s patient in %v", s, sexes)
		}
	}

	// Term frequencies must vary: a head near 2%, a tail of names seen once.
	counts := make([]int, 0, len(family))
	for _, c := range family {
		counts = append(counts, c)
	}
	slices.Sort(counts)
	top, median := counts[len(counts)-1], counts[len(counts)/2]
	if top < n/100 || top > n/20 || counts[0] > 2 || top < 100*median {
		t.Errorf("surname counts: top %d, median %d, lowest %d of %d names; want a Zipf-like spread", top, median, counts[0], len(counts))
	}
	if len(family) < 5000 {
		t.Errorf("%d distinct surnames in %d patients, want thousands", len(family), n)
	}

	stop := errors.New("stop")
	calls := 0
	if err := Population(10, 1, func(chartscan.Patient) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Population with a failing fn: err %v after %d calls, want stop after 1", err, calls)
	}
	if err := Population(-1, 1, func(chartscan.Patient) error { return nil }); !errors.Is(err, ErrOptions) {
		t.Errorf("Population(-1): err %v, want ErrOptions", err)
	}
}

func TestAppendDate(t *testing.T) {
	for d := firstBirth - 800; d <= lastBirth+800; d++ {
		want := time.Unix(d*86400, 0).UTC().Format(time.DateOnly)
		if got := string(appendDate(nil, d)); got != want {
			t.Fatalf("appendDate(%d) = %s, want %s", d, got, want)
		}
	}
}

func TestPerturb(t *testing.T) {
	ps := population(t, 20_000, 3)
	rng := rand.New(rand.NewPCG(3, 4))
	changed := map[string]int{}
	for _, p := range ps {
		q := Perturb(p, rng)
		if q.Street != "" || q.Phone != "" || q.City != "" {
			t.Fatalf("Perturb kept the address: %+v", q)
		}
		if q.Sex != p.Sex || q.Family == "" || q.Given == "" {
			t.Fatalf("Perturb(%+v) = %+v", p, q)
		}
		if _, err := time.Parse(time.DateOnly, q.BirthDate); err != nil {
			t.Fatalf("Perturb birth date %q: %v", q.BirthDate, err)
		}
		if q.MRN != p.MRN {
			changed["mrn"]++
			if d := slipDiff(p.MRN, q.MRN); len(d) != 2 || !oneSlip(p.MRN, q.MRN) {
				t.Errorf("MRN %s -> %s is not one transposition", p.MRN, q.MRN)
			}
		}
		if q.BirthDate != p.BirthDate {
			changed["dob"]++
		}
		if q.Family != p.Family {
			changed["family"]++
		}
		if q.Given != p.Given {
			changed["given"]++
		}
	}
	want := map[string]float64{"family": perturbFamily, "given": perturbGiven, "dob": perturbDOB, "mrn": perturbMRN}
	for k, share := range want {
		// Typos and slips change the field nearly always; allow for the odd no-op.
		if got := float64(changed[k]) / float64(len(ps)); got < share*0.85 || got > share*1.15 {
			t.Errorf("%s changed in %.3f of queries, want about %.2f", k, got, share)
		}
	}
}

func BenchmarkPopulation(b *testing.B) {
	const n = 100_000
	total := 0
	for b.Loop() {
		if err := Population(n, 1, func(p chartscan.Patient) error {
			total += len(p.MRN)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total/9)/b.Elapsed().Seconds(), "patients/s")
}
