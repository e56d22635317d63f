package indexer

import (
	"slices"
	"strings"

	"github.com/chartscan/chartscan"
)

// docPhrase is a heading or keyword that names a document type.
type docPhrase struct {
	keys  []string // consecutive token keys
	value string
}

func phrases(value string, ps ...string) []docPhrase {
	out := make([]docPhrase, 0, len(ps))
	for _, p := range ps {
		var keys []string
		for _, w := range strings.Fields(p) {
			keys = append(keys, keyOf(w))
		}
		out = append(out, docPhrase{keys: keys, value: value})
	}
	return out
}

// docPhrases are checked in order; the first phrase found on a line names its type, so
// longer, more specific phrases come first.
var docPhrases = slices.Concat(
	phrases(chartscan.DocTypeDischargeSummary, "discharge summary", "discharge summaries"),
	phrases(chartscan.DocTypeOperative, "operative report", "operative note", "operation report",
		"op note", "op report", "brief op note", "operative notes"),
	phrases(chartscan.DocTypeConsent, "informed consent", "consent form", "consent for", "consent to"),
	phrases(chartscan.DocTypeNursing, "nursing note", "nursing notes", "nursing assessment",
		"nursing flowsheet", "nursing flow sheet", "flowsheet", "flow sheet"),
	phrases(chartscan.DocTypeLab, "laboratory report", "laboratory results", "laboratory result",
		"lab report", "lab results", "lab result", "laboratory"),
	phrases(chartscan.DocTypeRadiology, "radiology report", "imaging report", "diagnostic imaging",
		"radiology", "x-ray", "xray", "x ray", "ct report", "ct scan", "mri report", "mri"),
	phrases(chartscan.DocTypeProgressNote, "progress note", "progress notes"),
	phrases(chartscan.DocTypeConsent, "consent"),
)

// textExtent returns the top of the page's first line of text and the bottom of its last.
func textExtent(lines []line) (top, bottom int) {
	for i, ln := range lines {
		if i == 0 || ln.box.Y0 < top {
			top = ln.box.Y0
		}
		bottom = max(bottom, ln.box.Y1)
	}
	return top, bottom
}

// docType finds the document type. A heading (a short line naming the type) near the top
// of the page is what a chart uses to say what it is; the same words in the body are
// often just mentions ("MRI ordered"), so they count for less.
func docType(lines []line) (chartscan.Identifier, bool) {
	top, bottom := textExtent(lines)
	nearTop := top + (bottom-top)/5

	var best chartscan.Identifier
	bestFactor := 0.0
	bestY := 0
	for i, ln := range lines {
		start, n, value, ok := findPhrase(ln.toks)
		if !ok {
			continue
		}
		heading := len(ln.toks) <= n+3 || allCaps(ln.toks)
		atTop := ln.box.Y0 <= nearTop || i < 3
		factor := 0.5
		switch {
		case heading && atTop:
			factor = 1
		case heading:
			factor = 0.85
		case atTop:
			factor = 0.6
		}
		if factor > bestFactor || factor == bestFactor && ln.box.Y0 < bestY {
			raw, box, conf := span(ln.toks[start : start+n])
			best = chartscan.Identifier{Kind: chartscan.KindDocType, Value: value, Raw: raw, Confidence: clamp01(conf * factor), Box: box}
			bestFactor, bestY = factor, ln.box.Y0
		}
	}
	return best, bestFactor > 0
}

// findPhrase returns the first document-type phrase on a line: where it starts, how many
// tokens it spans and the type it names.
func findPhrase(toks []token) (start, n int, value string, ok bool) {
	for _, p := range docPhrases {
		for i := 0; i+len(p.keys) <= len(toks); i++ {
			match := true
			for j, k := range p.keys {
				if toks[i+j].key != k {
					match = false
					break
				}
			}
			if match {
				return i, len(p.keys), p.value, true
			}
		}
	}
	return 0, 0, "", false
}

// allCaps reports whether the line is written in capitals, as headings often are.
func allCaps(toks []token) bool {
	letters := 0
	for _, t := range toks {
		for _, r := range t.text {
			if r >= 'a' && r <= 'z' {
				return false
			}
			if r >= 'A' && r <= 'Z' {
				letters++
			}
		}
	}
	return letters >= 4
}
