package indexer

import (
	"slices"

	"github.com/chartscan/chartscan"
)

// maxCandidates is how many candidates a filing lists for a reviewer.
const maxCandidates = 5

// Review and unmatched reasons, written for the clerk who reads them.
const (
	reasonContinuation  = "continuation of previous page"
	reasonNoCandidates  = "no matching patient in the EMPI"
	reasonDisagree      = "identifiers disagree with the EMPI record"
	reasonUnconfirmed   = "the MRN is not confirmed by a name or date of birth on the page"
	reasonNoMRN         = "no MRN on the page"
	reasonMRNNotFound   = "the MRN on the page matches no candidate"
	reasonSeveralMRNs   = "the page shows more than one MRN"
	reasonDuplicates    = "more than one EMPI record qualifies"
	reasonOtherMatch    = "another EMPI record matches the name and date of birth"
	reasonLeading       = "no identifiers on this page or before it"
	reasonNoIdentifiers = "no patient identifiers in the document"
)

// PageEvidence is what the filing decision knows of one page.
type PageEvidence struct {
	Identifiers []chartscan.Identifier
	// Candidates are the EMPI patients found by the page's MRN, or by its name+DOB. Only
	// FileDocument reads them; FileSegments looks candidates up per segment instead.
	Candidates []chartscan.Patient
	// Kind says whether the page is content (the zero value) or a cover, separator, blank
	// or failed page, which Segments and FileSegments do not read as content.
	Kind PageKind
	// CoverMRN is the MRN a cover sheet's barcode names, for Kind PageCover.
	CoverMRN string
}

// FileDocument decides, for each page of one document in order, which patient it is
// filed to. A page is filed automatically only when its MRN names exactly one candidate
// and its name or birth date confirms it; anything less goes to review, because a page
// filed to the wrong patient is worse than a page a clerk has to look at. Pages without
// an MRN, name or birth date follow the page before them.
//
// Deprecated: FileDocument is the first version's per-page rule set, kept until the
// worker calls FileSegments, which segments the pages, scores candidates with a
// Fellegi–Sunter Model and decides per segment.
func FileDocument(pages []PageEvidence) []chartscan.Filing {
	out := make([]chartscan.Filing, len(pages))
	firstIdentified := -1
	for i, pg := range pages {
		f := factsOf(pg.Identifiers)
		if !f.hasAnyFileID {
			continue
		}
		out[i] = filePage(f, pg.Candidates)
		if firstIdentified < 0 {
			firstIdentified = i
		}
	}
	for i, pg := range pages {
		if factsOf(pg.Identifiers).hasAnyFileID {
			continue
		}
		switch {
		case firstIdentified < 0:
			out[i] = chartscan.Filing{Status: chartscan.StatusUnmatched, Reason: reasonNoIdentifiers}
		case i < firstIdentified:
			// Likely the same patient as the page that follows, but nothing on or before
			// it says so: propose, never file.
			next := out[firstIdentified]
			out[i] = chartscan.Filing{Status: chartscan.StatusReview, MRN: next.MRN, Score: next.Score,
				Reason: reasonLeading, Candidates: slices.Clone(next.Candidates)}
		default:
			prev := out[i-1]
			out[i] = chartscan.Filing{Status: prev.Status, MRN: prev.MRN, Score: prev.Score,
				Reason: reasonContinuation, Candidates: slices.Clone(prev.Candidates)}
		}
	}
	return out
}

// filePage decides one page that carries identifiers.
func filePage(f pageFacts, patients []chartscan.Patient) chartscan.Filing {
	ranked := scoreAll(f, patients)
	if len(ranked) == 0 {
		return chartscan.Filing{Status: chartscan.StatusUnmatched, Reason: reasonNoCandidates}
	}
	filing := chartscan.Filing{Status: chartscan.StatusReview, MRN: ranked[0].cand.MRN, Score: ranked[0].cand.Score}
	for _, s := range ranked[:min(len(ranked), maxCandidates)] {
		filing.Candidates = append(filing.Candidates, s.cand)
	}
	var qualifying []scored
	mrnMatch, disagree := false, false
	for _, s := range ranked {
		if s.qualifies() {
			qualifying = append(qualifying, s)
		}
		if s.mrn == levelExact {
			mrnMatch = true
			disagree = disagree || !s.qualifies() && (s.name == levelDisagree || s.name == levelFamily || s.dob == levelDisagree)
		}
	}
	switch {
	case f.mrnConflict:
		filing.Reason = reasonSeveralMRNs
	case len(qualifying) > 1:
		filing.Reason = reasonDuplicates
	case len(qualifying) == 1:
		q := qualifying[0]
		// The MRN and the name or birth date point to q, but another record with a
		// different MRN fits the name and birth date as well: one of the two is a misread
		// or a mix-up, and a clerk must say which.
		if slices.ContainsFunc(ranked, func(s scored) bool {
			return NormalizeMRN(s.patient.MRN) != NormalizeMRN(q.patient.MRN) && s.nameAgrees() && s.dob == levelExact
		}) {
			filing.Reason = reasonOtherMatch
			break
		}
		filing.Status, filing.MRN, filing.Score = chartscan.StatusAuto, q.cand.MRN, q.cand.Score
	case mrnMatch && disagree:
		filing.Reason = reasonDisagree
	case mrnMatch:
		filing.Reason = reasonUnconfirmed
	case f.mrn == "":
		filing.Reason = reasonNoMRN
	default:
		filing.Reason = reasonMRNNotFound
	}
	return filing
}
