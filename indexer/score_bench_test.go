package indexer

import (
	"testing"

	"github.com/chartscan/chartscan"
)

// BenchmarkScore measures scoring one candidate: the per-page cost is this times the
// candidates the blocking queries return (up to a few dozen).
func BenchmarkScore(b *testing.B) {
	m := DefaultModel()
	e := EvidenceFrom([]chartscan.Identifier{
		{Kind: chartscan.KindMRN, Value: "208031716", Confidence: 0.9},
		{Kind: chartscan.KindName, Value: "MILLS, Heidi", Confidence: 0.8},
		{Kind: chartscan.KindDOB, Value: "1980-12-06", Confidence: 0.9},
		{Kind: chartscan.KindSex, Value: "female", Confidence: 0.9},
	})
	p := chartscan.Patient{MRN: "208031724", Family: "Milles", Given: "Heidy", BirthDate: "1980-06-12", Sex: "female"}
	f := SurnameShares{"milles": 0.001}
	for b.Loop() {
		m.Score(e, p, f)
	}
}
