package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/synth"
)

func newBenchEMPICmd() *cobra.Command {
	var patients, queries int
	var seed int64
	cmd := &cobra.Command{
		Use:   "bench-empi",
		Short: "Scale benchmark: import a synthetic EMPI with COPY, then time candidate search + scoring per page",
		Long: "Imports --patients synthetic patients into the configured database (use an empty one: " +
			"deploy/bench-empi.sh makes one), then runs --queries look-ups built from perturbed EMPI records " +
			"(typos, digit slips, transposed MRNs, as OCR leaves them) and prints the import rate and p50/p99 latency.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), needDB, func(a *app) error {
				return benchEMPI(cmd.Context(), a, cmd.OutOrStdout(), patients, queries, seed)
			})
		},
	}
	cmd.Flags().IntVar(&patients, "patients", 1_000_000, "EMPI size")
	cmd.Flags().IntVar(&queries, "queries", 2000, "look-ups to time")
	cmd.Flags().Int64Var(&seed, "seed", 1, "random seed")
	return cmd
}

func benchEMPI(ctx context.Context, a *app, w io.Writer, patients, queries int, seed int64) error {
	if n, err := a.db.PatientCount(ctx); err != nil {
		return err
	} else if n > 0 {
		return chartscan.Errorf(chartscan.EInvalid, "the database already holds %d patients; bench-empi needs an empty one", n)
	}
	// Keep a reservoir of the generated patients to query for afterwards.
	rng := rand.New(rand.NewPCG(uint64(seed), 99))
	sample := make([]chartscan.Patient, 0, queries)
	i := 0
	start := time.Now()
	st, err := a.db.ImportPatients(ctx, func(yield func(chartscan.Patient) error) error {
		return synth.Population(patients, seed, func(p chartscan.Patient) error {
			if len(sample) < queries {
				sample = append(sample, p)
			} else if j := rng.IntN(i + 1); j < queries {
				sample[j] = p
			}
			i++
			return yield(p)
		})
	})
	if err != nil {
		return err
	}
	importTime := time.Since(start)

	model := a.cfg.Model
	outcome := map[chartscan.PageStatus]int{}
	wrong := 0
	lat := make([]time.Duration, 0, len(sample))
	var searchLat []time.Duration
	prng := rand.New(rand.NewPCG(uint64(seed), 7))
	found := 0
	for _, p := range sample {
		e := pageEvidence(synth.Perturb(p, prng))
		t0 := time.Now()
		cands, shares, err := a.db.CandidatesWithShares(ctx, model.Query(e), 20)
		if err != nil {
			return err
		}
		searchLat = append(searchLat, time.Since(t0))
		freqs := indexer.SurnameShares{}
		scored := make([]chartscan.Candidate, len(cands))
		for _, c := range cands {
			freqs[indexer.NormalizeName(c.Family)] = shares[strings.ToLower(c.Family)]
		}
		for i, c := range cands {
			scored[i] = model.Score(e, c, freqs)
		}
		f := model.Decide(scored)
		lat = append(lat, time.Since(t0))
		outcome[f.Status]++
		if len(f.Candidates) > 0 && f.Candidates[0].MRN == p.MRN {
			found++
		}
		if f.Status == chartscan.StatusAuto && f.MRN != p.MRN {
			wrong++
		}
	}
	slices.Sort(lat)
	slices.Sort(searchLat)
	pctOf := func(l []time.Duration, f float64) time.Duration { return l[min(len(l)-1, int(f*float64(len(l))))] }
	pct := func(f float64) time.Duration { return pctOf(lat, f) }
	fmt.Fprintf(w, "EMPI scale benchmark (%d patients, %d look-ups)\n", patients, len(lat))
	fmt.Fprintf(w, "  import (COPY + merge):  %d patients in %.1fs = %.0f patients/s\n",
		st.Inserted, importTime.Seconds(), float64(st.Inserted)/importTime.Seconds())
	fmt.Fprintf(w, "  candidate search + scoring per page: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		ms(pct(0.50)), ms(pct(0.99)), ms(lat[len(lat)-1]))
	fmt.Fprintf(w, "    of which the blocking query: p50 %.2f ms, p99 %.2f ms\n", ms(pctOf(searchLat, 0.5)), ms(pctOf(searchLat, 0.99)))
	fmt.Fprintf(w, "  true patient ranked first: %d of %d (%.1f%%); auto %d, review %d, unmatched %d; auto-filed to a wrong patient: %d\n",
		found, len(lat), 100*float64(found)/float64(len(lat)),
		outcome[chartscan.StatusAuto], outcome[chartscan.StatusReview], outcome[chartscan.StatusUnmatched], wrong)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pageEvidence is what a page showing q's identifiers, read cleanly, offers.
func pageEvidence(q chartscan.Patient) indexer.Evidence {
	return indexer.EvidenceFrom([]chartscan.Identifier{
		{Kind: chartscan.KindMRN, Value: q.MRN, Confidence: 0.9},
		{Kind: chartscan.KindName, Value: strings.ToUpper(q.Family) + ", " + q.Given, Confidence: 0.9},
		{Kind: chartscan.KindDOB, Value: q.BirthDate, Confidence: 0.9},
		{Kind: chartscan.KindSex, Value: q.Sex, Confidence: 0.9},
	})
}
