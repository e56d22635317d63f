package worker

import (
	"context"
	"strings"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
)

// Rescore scores one page's identifiers against the EMPI as filing does — the blocking
// look-up, the term-frequency adjustment, the model's weights and decision — and returns
// the decision with its ranked candidates (at most five). The patients with the MRNs in
// also (the candidates the page had) are scored too, so a correction that moves the
// look-up elsewhere still ranks them. Nothing is saved. The review desk runs it on the
// fields a reviewer corrected, before deciding.
func (w *Worker) Rescore(ctx context.Context, ids []chartscan.Identifier, also []string) (chartscan.Filing, error) {
	e := indexer.EvidenceFrom(ids)
	freqs := indexer.SurnameShares{}
	pats, err := w.lookup(ctx, e, freqs)
	if err != nil {
		return chartscan.Filing{}, err
	}
	if len(also) > 0 {
		more, shares, err := w.store.CandidatesWithShares(ctx, chartscan.CandidateQuery{MRNs: also}, len(also))
		if err != nil {
			return chartscan.Filing{}, err
		}
		for _, p := range more {
			if k := indexer.NormalizeName(p.Family); freqs[k] == 0 {
				freqs[k] = shares[strings.ToLower(p.Family)]
			}
		}
		pats = append(pats, more...)
	}
	seen := map[string]bool{}
	var scored []chartscan.Candidate
	for _, p := range pats {
		if k := indexer.NormalizeMRN(p.MRN); !seen[k] {
			seen[k] = true
			scored = append(scored, w.model.Score(e, p, freqs))
		}
	}
	return w.model.Decide(scored), nil
}
