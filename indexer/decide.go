package indexer

import (
	"cmp"
	"slices"

	"github.com/chartscan/chartscan"
)

// Reasons Decide and FileSegments give, written for the reviewer who reads them.
const (
	reasonImplausible    = "no candidate scores high enough to be plausible"
	reasonTwins          = "two candidates close: possible twins (same surname and date of birth)"
	reasonMRNOther       = "the MRN on the page belongs to another candidate"
	reasonMRNConflict    = "the MRN on the page disagrees with the record"
	reasonDOBDisagree    = "the date of birth disagrees with the record"
	reasonNameDisagree   = "the name disagrees with the record"
	reasonSexDisagree    = "the sex disagrees with the record"
	reasonAddrDisagree   = "the address disagrees with the record"
	reasonBelowAuto      = "score below auto threshold"
	reasonOneIdentifier  = "only one identifier agrees with the record: two are needed"
	reasonClose          = "two candidates close"
	reasonSegContinue    = "continuation"
	reasonBoundary       = "uncertain boundary between patients"
	reasonCover          = "cover sheet"
	reasonCoverFiled     = "filed by its cover sheet"
	reasonConfirmedFiled = "continues a page a reviewer filed"
	reasonFailedPage     = "the page could not be read"
	reasonLeadingNoIDs   = "no identifiers on this page or before it"
	reasonSegmentNoIDs   = "no patient identifiers on these pages"
	reasonSplitNoIDs     = "a reviewer split the document here: a new patient starts on this page"
	reasonUnanchored     = "no identifiers on this page, and nothing on it says it continues the page before"
	reasonUnread         = "the page shows patient identifiers that could not be read"
)

// Decide files one segment given its scored candidates. It ranks them by score (the same
// MRN listed twice counts once) and files automatically only when all of these hold:
//
//   - the best scores at least AutoWeight and leads the runner-up by at least Margin;
//   - no field of the best disagrees outright on the family or given name (a name that
//     only sounds alike counts as different: NYSIIS codes "Jane" and "John" alike), the
//     date of birth or sex, and its address does not disagree as a whole (street, city and
//     postcode, of those both sides have, at least two): each is a sign of another
//     person as much as of a typo or a move — an "overlay", two people under one MRN,
//     shows exactly this;
//   - its MRN does not disagree with the page's, unless it scores MRNConflictWeight,
//     which name and birth date alone cannot reach;
//   - no other candidate holds the page's MRN exactly;
//   - no other candidate is a possible twin (see below);
//   - at least two independent identifiers agree (agreeingIdentifiers).
//
// A possible twin is another candidate whose family name agrees and whose birth date is
// exactly the page's: twins and near-twins (same surname and birth date, different given
// name and MRN) get nearly the same score from everything but the given name, and a
// one-letter OCR slip in the given name moves a page from one to the other. The best may
// still be filed over a possible twin only when the page's MRN is the best's — read
// exactly, or one OCR confusion off and repaired by its check digit to the best's — and
// disagrees with the twin's, the given name agrees exactly with the best's, and it
// disagrees outright with the twin's: then the MRN and the given name, read
// independently, both point at the same twin. A
// twin whose given name is only similar (a Jaro–Winkler band, phonetic, an initial) or
// absent sends the page to review.
//
// When nothing scores ReviewWeight the segment is unmatched; otherwise anything short of
// auto goes to review with the ranked candidates (at most five) and the first reason
// found. Filing.MRN is the filed or proposed MRN, empty when unmatched.
func (m Model) Decide(cands []chartscan.Candidate) chartscan.Filing {
	ranked := rank(cands)
	if len(ranked) == 0 {
		return chartscan.Filing{Status: chartscan.StatusUnmatched, Reason: reasonNoCandidates}
	}
	best := ranked[0]
	f := chartscan.Filing{Status: chartscan.StatusReview, MRN: best.MRN, Score: best.Score,
		Candidates: slices.Clone(ranked[:min(len(ranked), maxCandidates)])}
	if best.Score < m.ReviewWeight {
		f.Status, f.MRN, f.Reason = chartscan.StatusUnmatched, "", reasonImplausible
		return f
	}
	f.Reason = m.reviewReason(ranked)
	if f.Reason == "" {
		f.Status = chartscan.StatusAuto
	}
	return f
}

// reviewReason returns why the best of ranked may not be filed automatically, or "".
func (m Model) reviewReason(ranked []chartscan.Candidate) string {
	best := ranked[0]
	lv := func(field string) string { return levelOf(best, field) }
	mrnStrong := mrnAgrees(lv(FieldMRN))
	for _, c := range ranked[1:] {
		if !nameAgrees(levelOf(c, FieldFamily)) || levelOf(c, FieldDOB) != LevelExact {
			continue
		}
		twinMRN := levelOf(c, FieldMRN) // the page's MRN against the twin's: missing if it fails the check digit
		distinct := mrnStrong && (twinMRN == LevelDisagree || twinMRN == LevelMissing) && lv(FieldGiven) == LevelExact && nameAgrees(lv(FieldFamily)) &&
			lv(FieldDOB) == LevelExact && levelOf(c, FieldGiven) == LevelDisagree
		if !distinct {
			return reasonTwins
		}
	}
	for _, c := range ranked[1:] {
		if levelOf(c, FieldMRN) == LevelExact {
			return reasonMRNOther
		}
	}
	// The MRN (read exactly, or repaired to one that passes its check and exists) and
	// both names agree: a birth date that disagrees is then a slip on the page or in the
	// record — registration errors in birth dates are the commonest EMPI defect — not
	// another patient, who would need the same MRN and name.
	namesAgree := nameAgrees(lv(FieldFamily)) && nameAgrees(lv(FieldGiven))
	switch {
	case lv(FieldDOB) == LevelDisagree && !(mrnStrong && namesAgree):
		return reasonDOBDisagree
	case nameDiffers(lv(FieldFamily)) || nameDiffers(lv(FieldGiven)):
		// Even with the MRN, the birth date and the given name agreeing: AIRA's
		// deduplication test set holds exactly such pairs (a shared MRN, another
		// surname) as different people (TestAIRA, MRN_SHARED_MRN).
		return reasonNameDisagree
	case lv(FieldSex) == LevelDisagree:
		return reasonSexDisagree
	case addressDisagrees(best):
		return reasonAddrDisagree
	case lv(FieldMRN) == LevelDisagree && best.Score < m.MRNConflictWeight:
		return reasonMRNConflict
	case best.Score < m.AutoWeight:
		return reasonBelowAuto
	case agreeingIdentifiers(best) < 2:
		return reasonOneIdentifier
	case len(ranked) > 1 && best.Score-ranked[1].Score < m.Margin:
		return reasonClose
	}
	return ""
}

// mrnAgrees reports whether an MRN level names the record: read exactly, or repaired to
// it under the check digit (the record exists and is the one repair that passes).
func mrnAgrees(level string) bool {
	return level == LevelExact || level == LevelCheckDigitRepaired
}

// agreeingIdentifiers counts the independent identifiers on which a candidate agrees
// with the page: the MRN (read exactly, or repaired under its check digit), the name
// (the family name, to the Jaro–Winkler 0.85 band, with the given name not differing)
// and the birth date (exactly, or by a slip: a digit, a day, day and month swapped). A
// page is filed automatically only on two of them, as The Joint Commission's first
// National Patient Safety Goal asks of everyone who treats a patient: an MRN alone, read
// well and with the sex agreeing, may score high and still be a misread that exists.
func agreeingIdentifiers(c chartscan.Candidate) int {
	n := 0
	if mrnAgrees(levelOf(c, FieldMRN)) {
		n++
	}
	if f := levelOf(c, FieldFamily); (nameAgrees(f) || f == LevelJW85) && !nameDiffers(levelOf(c, FieldGiven)) {
		n++
	}
	switch levelOf(c, FieldDOB) {
	case LevelExact, LevelOneDigit, LevelOneDay, LevelDayMonthSwapped:
		n++
	}
	return n
}

// rank sorts candidates best first (ties by MRN, so the order is stable) and keeps the
// best-scored entry of each MRN.
func rank(cands []chartscan.Candidate) []chartscan.Candidate {
	out := slices.Clone(cands)
	slices.SortStableFunc(out, func(a, b chartscan.Candidate) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(NormalizeMRN(a.MRN), NormalizeMRN(b.MRN)))
	})
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(c chartscan.Candidate) bool {
		k := NormalizeMRN(c.MRN)
		if seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
}

// addressDisagrees reports whether every part of the address both sides carry
// disagrees, and at least two parts were compared: a whole other address. One part alone
// (a new street in the same town) is a move as often as another person.
func addressDisagrees(c chartscan.Candidate) bool {
	compared := 0
	for _, f := range []string{FieldStreet, FieldCity, FieldPostcode} {
		switch levelOf(c, f) {
		case LevelMissing:
		case LevelDisagree:
			compared++
		default:
			return false
		}
	}
	return compared >= 2
}

// nameDiffers reports whether a name level tells of another name rather than a misread
// of the same one. Phonetic agreement below the Jaro–Winkler bands is coarse for short
// names (Jane and John, Carl and Karl), so it cannot vouch for an automatic filing.
func nameDiffers(level string) bool { return level == LevelDisagree || level == LevelPhonetic }
