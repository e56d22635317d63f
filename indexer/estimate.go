package indexer

import (
	"math"
	"math/rand/v2"

	"github.com/chartscan/chartscan"
)

// minEstimateCount is how many comparisons of a field an estimate needs before it
// replaces the model's value; fewer leave the field as it was.
const minEstimateCount = 100

// evidenceOf turns an EMPI record into evidence read with certainty, for comparing
// records with records.
func evidenceOf(r recordValues) Evidence {
	c := func(v string) Reading {
		if v == "" {
			return Reading{}
		}
		return Reading{v, 1}
	}
	return Evidence{MRN: c(r.mrn), Family: c(r.family), Given: c(r.given), DOB: c(r.dob), Sex: c(r.sex),
		Street: c(r.street), City: c(r.city), Postcode: c(r.postcode), Phone: c(r.phone)}
}

// EstimateU returns a copy of m whose u probabilities are measured on the EMPI itself:
// the share of each agreement level among `pairs` random pairs of distinct patients of
// sample, drawn with the seed (so the estimate is reproducible). Random pairs are almost
// all non-matches, which is what u describes. The MRN keeps its u: an EMPI's MRNs are
// unique, so random pairs never agree and only the combinatorics of DefaultModel say how
// often an OCR slip lands on another patient's MRN. A field compared fewer than 100
// times keeps its u too.
func (m Model) EstimateU(sample []chartscan.Patient, pairs int, seed int64) Model {
	out := m.clone()
	if len(sample) < 2 || pairs <= 0 {
		return out
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	recs := make([]recordValues, len(sample))
	evs := make([]Evidence, len(sample))
	for i, p := range sample {
		recs[i] = recordOf(p)
		evs[i] = evidenceOf(recs[i])
	}
	counts := map[string]map[string]float64{}
	for range pairs {
		i := rng.IntN(len(sample))
		j := rng.IntN(len(sample) - 1)
		if j >= i {
			j++
		}
		for field, level := range compareRecord(evs[i], recs[j], m.CheckDigit) {
			if level == LevelMissing {
				continue
			}
			if counts[field] == nil {
				counts[field] = map[string]float64{}
			}
			counts[field][level]++
		}
	}
	for field, c := range counts {
		if field == FieldMRN {
			continue
		}
		out.setProbs(field, c, false)
	}
	return out
}

// setProbs replaces a field's u (or m) by the shares of weighted counts per level,
// smoothed by half an observation spread over the levels so no level gets probability 0
// (a weight of ±infinity).
func (m *Model) setProbs(field string, counts map[string]float64, setM bool) {
	levels := fieldLevels[field]
	n := 0.0
	for _, l := range levels {
		n += counts[l]
	}
	if n < minEstimateCount {
		return
	}
	if m.Fields[field] == nil {
		m.Fields[field] = map[string]Probs{}
	}
	const alpha = 0.5
	for _, l := range levels {
		p := m.Fields[field][l]
		v := (counts[l] + alpha/float64(len(levels))) / (n + alpha)
		if setM {
			p.M = v
		} else {
			p.U = v
		}
		m.Fields[field][l] = p
	}
}

// EstimateM returns a copy of m whose m probabilities are fitted by expectation
// maximization to comparison vectors of candidate pairs (Compare of a page's evidence
// with each patient a lookup found), and the share of those pairs that are matches. The
// u probabilities are held fixed, as EstimateU measures them better than EM can. Pairs
// confirmed by reviewers can be given too; EM then simply finds them matches. Run
// EstimateU first: EM only separates matches from non-matches when u is about right.
func (m Model) EstimateM(vectors []Vector, iterations int) (Model, float64) {
	out := m.clone()
	lambda := 0.5
	if len(vectors) == 0 {
		return out, 0
	}
	for range iterations {
		mCounts := map[string]map[string]float64{}
		sumG := 0.0
		for _, v := range vectors {
			logit := math.Log(lambda) - math.Log(1-lambda)
			for field, level := range v {
				p, ok := out.Fields[field][level]
				if !ok || level == LevelMissing {
					continue
				}
				logit += math.Log(max(p.M, 1e-12)) - math.Log(max(p.U, 1e-12))
			}
			g := 1 / (1 + math.Exp(-logit))
			sumG += g
			for field, level := range v {
				if level == LevelMissing {
					continue
				}
				if mCounts[field] == nil {
					mCounts[field] = map[string]float64{}
				}
				mCounts[field][level] += g
			}
		}
		for field, c := range mCounts {
			out.setProbs(field, c, true)
		}
		lambda = min(max(sumG/float64(len(vectors)), 1e-6), 1-1e-6)
	}
	return out, lambda
}
