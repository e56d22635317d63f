package indexer

import (
	"fmt"
	"slices"

	"github.com/chartscan/chartscan"
)

// PageKind says whether a page is chart content or a sheet that only organizes the scan.
type PageKind string

// Page kinds. The zero value is content, so callers that know nothing more need not set it.
const (
	PageContent   PageKind = ""
	PageCover     PageKind = "cover"     // a barcode cover sheet: CoverMRN names the patient of the pages that follow
	PageConfirmed PageKind = "confirmed" // a page a reviewer filed to CoverMRN: like a cover sheet, it names the patient of the pages that follow
	PageSeparator PageKind = "separator" // a separator sheet: the pages after it are a new segment
	PageBlank     PageKind = "blank"     // an empty page such as a duplex back: belongs to no segment, breaks none
	PageFailed    PageKind = "failed"    // could not be read: belongs to no segment, breaks none
)

// Segment is a run of pages of one upload that belong to one patient, as far as the
// pages say. Pages index the slice given to Segments, in order (a cover sheet first);
// separator, blank and failed pages belong to no segment.
type Segment struct {
	Pages []int
	// Evidence is merged over the content pages: per field the value with the most
	// confidence summed over pages, at the confidence of its best reading scaled by its
	// share of all readings of that field. A cover sheet's MRN is certain (confidence 1).
	Evidence Evidence
	// Cover reports that a cover sheet started the segment.
	Cover bool
	// Uncertain lists the pages around an uncertain boundary (one that agrees on one field
	// and conflicts on another). FileSegments files them automatically only when the
	// boundary does not matter: see there.
	Uncertain []int
	// UncertainStart reports that the boundary before this segment is uncertain: the
	// segment may be the same patient's as the one before.
	UncertainStart bool
	// Unanchored lists the pages without identifiers that nothing ties to the segment:
	// neither a page number that follows the page before ("Page 2 of 3" after "Page 1 of
	// 3") nor a cover sheet. They are likely the segment's, so its candidates are
	// proposed, but they are never filed automatically. A page whose identifier area
	// could not be read (KindUnread) is one of them whatever its page number says.
	Unanchored []int
}

// Segments groups the pages of one upload into patient segments. A page with identifiers
// (MRN, name or birth date) starts or continues a segment; a page without continues the
// current one (a continuation page) — anchored when its page number follows the page
// before's ("Page 2 of 3" after "Page 1 of 3"), when it is page 2 after an identifying
// page of the same document type whose number could not be read, when its heading says
// "continued" and its type is the page before's, or when a cover sheet started the
// segment; otherwise Unanchored. A page numbered 1 ("Page 1 of 1") starts a new document and so
// a new segment, except behind a cover sheet. A page that conflicts with the current segment — a
// different MRN (more than one OCR confusion away), a different birth date (more than a
// slip: a day, one digit, day and month swapped), or a clearly different name (family
// name, or given name with the family name agreeing) — starts a new segment. When it
// also agrees on another of those fields the boundary itself is uncertain (twins filed
// one after the other look exactly like this), and the last page before it, the page and
// the continuation pages after it are marked Uncertain. A page whose identifiers share no
// field with the segment's (a birth date alone after pages with MRN and name only), and
// that nothing ties to the page before, starts a segment of its own: nothing on it says
// it is the same patient's. Inside a segment started by a cover sheet, whose MRN is
// known, any conflict is uncertain. A page a reviewer filed
// starts a segment as a cover sheet does (its MRN known), but a page that conflicts with
// it simply starts the next patient's. A separator sheet ends the current segment, and a
// page a reviewer split the document at starts a new one; blank and failed pages leave
// it open, but nothing ties a page to the page before a failed page: a page after one
// joins only by identifiers of its own.
func Segments(pages []PageEvidence) []Segment { return segments(pages, "none") }

// segments is Segments under a facility's check-digit scheme. Under a scheme that
// detects every single-character error (Luhn does), two MRNs one OCR confusion or one
// transposition apart cannot both be real: one is a misread of the other, so they are the
// same patient's.
func segments(pages []PageEvidence, scheme string) []Segment {
	var segs []Segment
	var ev []Evidence // the content pages' evidence of the current segment
	cur := -1
	uncertainRun := false // the current segment began at an uncertain boundary, and only continuation pages followed
	// The page number of the last content page of the current segment, and whether that
	// page was anchored (had identifiers, or was a continuation tied to one).
	var lastNum PageNumber
	lastNumbered, lastAnchored, lastIdentifying := false, false, false
	lastType := ""
	start := func(i int, cover bool) {
		segs = append(segs, Segment{Pages: []int{i}, Cover: cover})
		cur, ev, uncertainRun = len(segs)-1, nil, false
	}
	for i, pg := range pages {
		switch pg.Kind {
		case PageSeparator:
			cur = -1
			continue
		case PageBlank:
			continue
		case PageFailed:
			// What it showed is unknown — the next patient's first page, perhaps — so the
			// page after it cannot be tied to the page before it: only its own identifiers
			// place it.
			lastAnchored, lastNumbered, lastIdentifying, lastType = false, false, false, ""
			continue
		case PageCover, PageConfirmed:
			start(i, true)
			segs[cur].Evidence = mergeEvidence(nil, NormalizeMRN(pg.CoverMRN))
			lastNum, lastNumbered = pageNumberOf(pg.Identifiers)
			lastAnchored, lastIdentifying = true, pg.Kind == PageConfirmed
			lastType = valueOf(pg.Identifiers, chartscan.KindDocType)
			continue
		}
		if pg.SplitBefore {
			cur = -1 // a reviewer said a new patient starts here
		}
		num, numbered := pageNumberOf(pg.Identifiers)
		behindCover := cur >= 0 && segs[cur].Cover && pages[segs[cur].Pages[0]].Kind == PageCover
		if numbered && num.K == 1 && !behindCover {
			cur = -1 // "Page 1 of N": a new document starts here
		}
		docType := valueOf(pg.Identifiers, chartscan.KindDocType)
		sameType := docType != "" && docType == lastType
		// What ties a page to the page before it: its number follows that page's; it is
		// page 2 of a document whose first page (the page before, with identifiers and of
		// the same type) printed no number that could be read; or its heading says it is
		// continued, it is of the same type, and no page number says otherwise.
		follows := lastAnchored && (numbered && lastNumbered && num.Follows(lastNum) ||
			numbered && num.K == 2 && !lastNumbered && lastIdentifying && sameType ||
			hasKind(pg.Identifiers, chartscan.KindContinued) && sameType &&
				!(numbered && (num.K == 1 || lastNumbered && !num.Follows(lastNum))))
		lastNum, lastNumbered, lastType = num, numbered, docType
		e := EvidenceFrom(pg.Identifiers)
		lastIdentifying = e.Identifying()
		unread := hasKind(pg.Identifiers, chartscan.KindUnread)
		if cur < 0 {
			start(i, false)
			ev = appendIdentifying(ev, e)
			segs[cur].Evidence = mergeEvidence(ev, "")
			lastAnchored = e.Identifying()
			continue
		}
		s := &segs[cur]
		if !e.Identifying() {
			s.Pages = append(s.Pages, i)
			if uncertainRun {
				s.Uncertain = append(s.Uncertain, i)
			}
			lastAnchored = !unread && (follows || behindCover)
			if !lastAnchored {
				s.Unanchored = append(s.Unanchored, i)
			}
			continue
		}
		lastAnchored = true
		agree, conflict := relate(s.Evidence, e, scheme)
		if agree == 0 && conflict == 0 && !follows && !s.Cover && s.Evidence.Identifying() {
			// Nothing the page shows can be compared with the segment (a birth date
			// where the segment has none), and nothing ties it to the page before: it
			// is not evidence of the same patient, so it is decided on its own.
			start(i, false)
			ev = append(ev, e)
			segs[cur].Evidence = mergeEvidence(ev, "")
			continue
		}
		// The same MRN — read exactly, or one misread away under a check digit — with no
		// name that says otherwise is the same patient even when a page prints another
		// birth date: charts carry such slips, and a patient boundary never looks like
		// this (twins have MRNs of their own).
		a, b := s.Evidence.MRN.Value, e.MRN.Value
		sameMRN := a != "" && (a == b || (scheme != "none" && scheme != "" && isMRNVariant(a, b) &&
			CheckDigitValid(scheme, a) != CheckDigitValid(scheme, b)))
		if conflict == 0 || (sameMRN && conflict == 1 && !namesConflict(s.Evidence, e)) {
			s.Pages = append(s.Pages, i)
			ev = append(ev, e)
			s.Evidence = mergeEvidence(ev, coverMRN(*s, pages))
			uncertainRun = false
			continue
		}
		// A cover sheet says every page behind it is its patient's, so a page that
		// conflicts contradicts it; a page a reviewer filed says that of itself only.
		uncertain := agree > 0 || (s.Cover && pages[s.Pages[0]].Kind == PageCover)
		if uncertain {
			s.Uncertain = appendOnce(s.Uncertain, s.Pages[len(s.Pages)-1])
		}
		start(i, false)
		ev = append(ev, e)
		segs[cur].Evidence = mergeEvidence(ev, "")
		if uncertain {
			segs[cur].Uncertain = []int{i}
			segs[cur].UncertainStart = true
			uncertainRun = true
		}
	}
	return segs
}

func appendIdentifying(ev []Evidence, e Evidence) []Evidence {
	if e.Identifying() {
		return append(ev, e)
	}
	return ev
}

func appendOnce(s []int, i int) []int {
	if slices.Contains(s, i) {
		return s
	}
	return append(s, i)
}

// coverMRN returns the MRN of the cover sheet that started s, "" if none did.
func coverMRN(s Segment, pages []PageEvidence) string {
	if !s.Cover {
		return ""
	}
	return NormalizeMRN(pages[s.Pages[0]].CoverMRN)
}

// unsureDOB is the confidence below which a birth date reading does not decide a
// segment boundary.
const unsureDOB = 0.6

// relate counts the identifying fields (MRN, name, birth date) on which a page agrees
// with a segment and those on which it conflicts; fields missing on either side count
// for neither.
func relate(seg, page Evidence, scheme string) (agree, conflict int) {
	count := func(ok bool) {
		if ok {
			agree++
		} else {
			conflict++
		}
	}
	// A birth date OCR read with low confidence says too little to split a patient's
	// pages on (dates are where digit slips land): it neither agrees nor conflicts.
	if seg.DOB.Value != "" && page.DOB.Value != "" && min(seg.DOB.Confidence, page.DOB.Confidence) >= unsureDOB {
		l := compareDOB(seg.DOB.Value, page.DOB.Value)
		count(l != LevelDisagree && l != LevelYearOnly)
	}
	if seg.Family.Value != "" && page.Family.Value != "" {
		fam, giv := compareNames(page.Family.Value, page.Given.Value, seg.Family.Value, seg.Given.Value)
		count(fam != LevelDisagree && fam != LevelInitial && giv != LevelDisagree)
	}
	if a, b := seg.MRN.Value, page.MRN.Value; a != "" && b != "" {
		switch {
		case a == b || isMRNVariant(a, b):
			count(true)
		case conflict == 0 && agree >= 2 && (!CheckDigitValid(scheme, a) || !CheckDigitValid(scheme, b)):
			// A reading that fails its check digit is a misread. With the name and the
			// birth date both agreeing it does not make the page another patient's; alone
			// it still does — a misread MRN is all a stray page may carry.
		default:
			count(false)
		}
	}
	return agree, conflict
}

// namesConflict reports whether a page's name is clearly another than the segment's —
// the one conflict the same MRN does not outweigh: a wrong patient's label on a page
// looks exactly like that.
func namesConflict(seg, page Evidence) bool {
	if seg.Family.Value == "" || page.Family.Value == "" {
		return false
	}
	fam, giv := compareNames(page.Family.Value, page.Given.Value, seg.Family.Value, seg.Given.Value)
	return fam == LevelDisagree || fam == LevelInitial || giv == LevelDisagree
}

// mergeEvidence merges pages' evidence field by field; a non-empty cover MRN overrides
// the pages' MRN readings with certainty.
func mergeEvidence(ev []Evidence, cover string) Evidence {
	var out Evidence
	outs := out.readings()
	for f := range outs {
		sum := map[string]float64{}
		top := map[string]float64{}
		var order []string
		total := 0.0
		for k := range ev {
			r := *ev[k].readings()[f]
			if r.Value == "" {
				continue
			}
			if _, ok := sum[r.Value]; !ok {
				order = append(order, r.Value)
			}
			// A reading at confidence 0 still counts a little, so it can win when alone.
			c := max(r.Confidence, 1e-6)
			sum[r.Value] += c
			top[r.Value] = max(top[r.Value], r.Confidence)
			total += c
		}
		best := ""
		for _, v := range order {
			if best == "" || sum[v] > sum[best] {
				best = v
			}
		}
		if best != "" {
			*outs[f] = Reading{best, top[best] * sum[best] / total}
		}
	}
	if cover != "" {
		out.MRN = Reading{cover, 1}
	}
	return out
}

// FileSegments files every page of one upload: it splits the pages into segments
// (Segments), looks each segment's candidates up with lookup, scores them (Model.Score
// with the term frequencies f, which may be nil), decides (Model.Decide), and returns one
// Filing per page, in order. Every content page of a segment carries its segment's
// decision and candidates; continuation pages (no identifiers of their own) have the
// Reason "continuation"; pages without identifiers that open a segment go to review.
//
// The pages at an uncertain boundary go to review unless where the boundary lies cannot
// change where they go. That holds when the segments on both sides are each filed
// automatically to the same patient (a misread MRN on one side, a birth-date slip on the
// other), or when this side is filed automatically to P, the other side to nobody, and
// this side's identifying page nearest the boundary, decided on its own evidence alone,
// is filed automatically to P as well: that page is P's whatever the pages across the
// boundary are, and the pages it leads are filed as its continuation either way. When the
// other side is filed automatically to another patient Q (twins one after the other,
// or two patients whose names look alike), a side keeps its filing only if its page at
// the boundary, alone, is filed to P by the MRN it carries as well — read exactly or
// repaired under the check digit — and Decide's twin rule, which that lone decision
// passed, holds it back whenever the two could be confused. A page without identifiers
// at the boundary goes to review either way. Cover and separator sheets are StatusSeparator,
// blank pages StatusBlank, failed pages StatusFailed. A lookup error stops the filing and
// is returned wrapped.
//
// lookup receives the segment's merged Evidence and returns the EMPI patients its
// blocking queries find: the exact MRN, the MRNs of MRNVariants(MRN, m.CheckDigit), the
// NYSIIS code of the family name with the birth year, the exact birth date, and similar
// names; the more it finds of the people a page could be confused with, the safer the
// decision, since a twin that is not looked up cannot hold the page back.
func FileSegments(pages []PageEvidence, m Model, lookup func(Evidence) ([]chartscan.Patient, error), f Frequencies) ([]chartscan.Filing, error) {
	out := make([]chartscan.Filing, len(pages))
	for i, pg := range pages {
		switch pg.Kind {
		case PageCover:
			out[i] = chartscan.Filing{Status: chartscan.StatusSeparator, Reason: reasonCover}
		case PageConfirmed:
			out[i] = chartscan.Filing{Status: chartscan.StatusConfirmed, MRN: pg.CoverMRN}
		case PageSeparator:
			out[i] = chartscan.Filing{Status: chartscan.StatusSeparator}
		case PageBlank:
			out[i] = chartscan.Filing{Status: chartscan.StatusBlank}
		case PageFailed:
			out[i] = chartscan.Filing{Status: chartscan.StatusFailed, Reason: reasonFailedPage}
		}
	}
	segs := segments(pages, m.CheckDigit)
	decide := func(s Segment) (chartscan.Filing, error) {
		if !s.Evidence.Identifying() {
			if pages[s.Pages[0]].SplitBefore {
				// The reviewer who split here still owes these pages a patient.
				return chartscan.Filing{Status: chartscan.StatusReview, Reason: reasonSplitNoIDs}, nil
			}
			return chartscan.Filing{Status: chartscan.StatusUnmatched, Reason: reasonSegmentNoIDs}, nil
		}
		pats, err := lookup(s.Evidence)
		if err != nil {
			return chartscan.Filing{}, fmt.Errorf("look up candidates: %w", err)
		}
		dec := m.Decide(m.scoreAll(s.Evidence, pats, f))
		// A cover sheet's barcode names the patient with certainty: the sheet is
		// printed from the EMPI and its symbology carries its own checksum. When that
		// patient exists and nothing in the pages disagrees (the only objection is too
		// little evidence), the pages behind it are filed to them.
		// A page a reviewer filed names its patient as surely, for the pages after it.
		if s.Cover && dec.Status == chartscan.StatusReview && (dec.Reason == reasonBelowAuto || dec.Reason == reasonOneIdentifier) &&
			len(dec.Candidates) > 0 && NormalizeMRN(dec.Candidates[0].MRN) == s.Evidence.MRN.Value {
			dec.Status, dec.MRN, dec.Reason = chartscan.StatusAuto, dec.Candidates[0].MRN, reasonCoverFiled
			if pages[s.Pages[0]].Kind == PageConfirmed {
				dec.Reason = reasonConfirmedFiled
			}
		}
		return dec, nil
	}
	decs := make([]chartscan.Filing, len(segs))
	for k, s := range segs {
		var err error
		if decs[k], err = decide(s); err != nil {
			return nil, err
		}
	}
	// alone decides one page on its own evidence.
	alone := func(i int) (chartscan.Filing, error) {
		e := EvidenceFrom(pages[i].Identifiers)
		return decide(Segment{Pages: []int{i}, Evidence: mergeEvidence([]Evidence{e}, "")})
	}
	// moot reports whether the uncertain boundary between segment k and its neighbour j
	// (k-1 or k+1) leaves the filing of k's pages at it unchanged; anchor is k's
	// identifying page nearest the boundary, -1 if none.
	moot := func(k, j, anchor int) (bool, error) {
		switch {
		case sameAuto(decs[k], decs[j]):
			return true, nil
		case decs[k].Status != chartscan.StatusAuto || anchor < 0:
			return false, nil
		}
		a, err := alone(anchor)
		if err != nil || !sameAuto(decs[k], a) {
			return false, err
		}
		// The other side filed to another patient: this side's page at the boundary
		// must name its own by the MRN it carries, not by name and birth date alone.
		return decs[j].Status != chartscan.StatusAuto || mrnNames(a), nil
	}
	for k, s := range segs {
		dec := decs[k]
		boundaryMoot := dec.Status == chartscan.StatusAuto
		if boundaryMoot && k > 0 && s.UncertainStart {
			ok, err := moot(k, k-1, identifyingPage(s, pages, true))
			if err != nil {
				return nil, err
			}
			boundaryMoot = ok
		}
		if boundaryMoot && k+1 < len(segs) && segs[k+1].UncertainStart {
			ok, err := moot(k, k+1, identifyingPage(s, pages, false))
			if err != nil {
				return nil, err
			}
			boundaryMoot = ok
		}
		identified := s.Cover
		for _, i := range s.Pages {
			if pages[i].Kind == PageCover || pages[i].Kind == PageConfirmed {
				continue
			}
			fl := dec
			fl.Candidates = slices.Clone(dec.Candidates)
			switch {
			case EvidenceFrom(pages[i].Identifiers).Identifying():
				identified = true
			case !identified && s.Evidence.Identifying():
				// Likely the patient of the page that follows, but nothing on or
				// before it says so: propose, never file.
				fl.Reason = reasonLeadingNoIDs
				if fl.Status == chartscan.StatusAuto {
					fl.Status = chartscan.StatusReview
				}
			case slices.Contains(s.Unanchored, i) && s.Evidence.Identifying():
				// Likely the patient of the page before, but nothing on it says so.
				fl.Reason = reasonUnanchored
				if hasKind(pages[i].Identifiers, chartscan.KindUnread) {
					fl.Reason = reasonUnread
				}
				if fl.Status == chartscan.StatusAuto || fl.Status == chartscan.StatusUnmatched {
					fl.Status = chartscan.StatusReview
				}
			case s.Evidence.Identifying():
				fl.Reason = reasonSegContinue
			}
			if hasKind(pages[i].Identifiers, chartscan.KindUnread) && !EvidenceFrom(pages[i].Identifiers).Identifying() &&
				fl.Status != chartscan.StatusReview {
				// Identifiers are printed but could not be read: a person reads them.
				fl.Status, fl.Reason = chartscan.StatusReview, reasonUnread
			}
			if slices.Contains(s.Uncertain, i) && !(boundaryMoot && fl.Status == chartscan.StatusAuto) {
				fl.Status, fl.Reason = chartscan.StatusReview, reasonBoundary
			}
			out[i] = fl
		}
	}
	return out, nil
}

// mrnNames reports whether an automatic filing rests on the page's MRN: read exactly, or
// repaired to one that passes its check digit.
func mrnNames(f chartscan.Filing) bool {
	if len(f.Candidates) == 0 {
		return false
	}
	return mrnAgrees(levelOf(f.Candidates[0], FieldMRN))
}

// sameAuto reports whether two decisions both file automatically, to the same patient.
func sameAuto(a, b chartscan.Filing) bool {
	return a.Status == chartscan.StatusAuto && b.Status == chartscan.StatusAuto && NormalizeMRN(a.MRN) == NormalizeMRN(b.MRN)
}

// identifyingPage returns the first (or last) content page of s with identifiers of its
// own, -1 if none.
func identifyingPage(s Segment, pages []PageEvidence, first bool) int {
	found := -1
	for _, i := range s.Pages {
		if pages[i].Kind == PageContent && EvidenceFrom(pages[i].Identifiers).Identifying() {
			if first {
				return i
			}
			found = i
		}
	}
	return found
}

// scoreAll scores each distinct patient (by MRN) against the evidence.
func (m Model) scoreAll(e Evidence, pats []chartscan.Patient, f Frequencies) []chartscan.Candidate {
	var out []chartscan.Candidate
	seen := map[string]bool{}
	for _, p := range pats {
		k := NormalizeMRN(p.MRN)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, m.Score(e, p, f))
	}
	return out
}
