package indexer

import (
	"github.com/chartscan/chartscan"
)

// maxCandidates is how many candidates a filing lists for a reviewer.
const maxCandidates = 5

// reasonNoCandidates is the unmatched reason a clerk reads when the EMPI has nobody
// plausible.
const reasonNoCandidates = "no matching patient in the EMPI"

// PageEvidence is what the filing decision knows of one page.
type PageEvidence struct {
	Identifiers []chartscan.Identifier
	// Kind says whether the page is content (the zero value) or a cover, separator, blank
	// or failed page, which Segments and FileSegments do not read as content.
	Kind PageKind
	// CoverMRN is the MRN a cover sheet's barcode names, for Kind PageCover, or the MRN a
	// reviewer filed the page to, for Kind PageConfirmed.
	CoverMRN string
	// SplitBefore records a reviewer's word that a new patient starts on this page: it
	// starts a segment whatever its identifiers say.
	SplitBefore bool
}
