package indexer

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/chartscan/chartscan"
)

// PageNumber is what a page prints about its place in its document: "Page 2 of 3"
// (K 2, N 3), "Pg 2/3", "2 of 3", or "Page 2" (N 0, the total not printed).
type PageNumber struct {
	K, N int
}

// String is the value of a KindPageNumber identifier: "2/3", or "2" without a total.
func (p PageNumber) String() string {
	if p.N == 0 {
		return strconv.Itoa(p.K)
	}
	return fmt.Sprintf("%d/%d", p.K, p.N)
}

// ParsePageNumber reads a KindPageNumber value.
func ParsePageNumber(v string) (PageNumber, bool) {
	ks, ns, hasN := strings.Cut(v, "/")
	k, err := strconv.Atoi(ks)
	if err != nil || k < 1 {
		return PageNumber{}, false
	}
	p := PageNumber{K: k}
	if hasN {
		if p.N, err = strconv.Atoi(ns); err != nil || p.N < k {
			return PageNumber{}, false
		}
	}
	return p, true
}

// Follows reports whether p is the page after prev in one document: its number is one
// more and both print the same total (or neither prints one).
func (p PageNumber) Follows(prev PageNumber) bool {
	return p.K > 1 && p.K == prev.K+1 && p.N == prev.N
}

// pageNumberSure is the confidence a page number must be read with to tie pages
// together or apart: digits are where OCR slips ("Page 1" read as "Page 2").
const pageNumberSure = 0.7

// pageNumberOf returns the page number among a page's identifiers, when it was read
// with confidence.
func pageNumberOf(ids []chartscan.Identifier) (PageNumber, bool) {
	for _, id := range ids {
		if id.Kind == chartscan.KindPageNumber && id.Confidence >= pageNumberSure {
			return ParsePageNumber(id.Value)
		}
	}
	return PageNumber{}, false
}

// valueOf returns the value of the first identifier of kind k, "" if none.
func valueOf(ids []chartscan.Identifier, k chartscan.IdentifierKind) string {
	for _, id := range ids {
		if id.Kind == k {
			return id.Value
		}
	}
	return ""
}

// continuedMarker finds a heading that says the page continues a document: "continued",
// "cont.", "cont'd" or "continuation" on a short line or a line naming a document type,
// in the top third of the page's text.
func continuedMarker(lines []line) (chartscan.Identifier, bool) {
	top, bottom := textExtent(lines)
	for _, ln := range lines {
		if ln.box.Y0 > top+(bottom-top)/3 {
			continue
		}
		for i, t := range ln.toks {
			marker := false
			switch t.key {
			case "continued", "contd", "continuation":
				marker = true
			case "cont":
				marker = strings.HasSuffix(t.text, ".") || strings.HasSuffix(t.text, ")")
			}
			if !marker {
				continue
			}
			_, _, _, named := findPhrase(ln.toks)
			if len(ln.toks) > 6 && !named {
				continue
			}
			raw, box, conf := span(ln.toks[i : i+1])
			return chartscan.Identifier{Kind: chartscan.KindContinued, Value: "continued", Raw: raw, Confidence: clamp01(conf), Box: box}, true
		}
	}
	return chartscan.Identifier{}, false
}

// pageNumber finds the page's number. "Page k of N" and its variants are read anywhere
// on the page; a bare "k of N" only on a short line, or in the top or bottom sixth of
// the page, where forms print it ("3 of 5 tablets" in the text is not a page number).
// A reading with a total beats one without; among equals the one nearest the bottom.
func pageNumber(lines []line) (chartscan.Identifier, bool) {
	top, bottom := textExtent(lines)
	margin := (bottom - top) / 6
	var best chartscan.Identifier
	bestScore := 0
	for _, ln := range lines {
		edge := ln.box.Y1 <= top+margin || ln.box.Y0 >= bottom-margin || len(ln.toks) <= 4
		for i := range ln.toks {
			p, n, worded, ok := pageNumberAt(ln.toks, i)
			if !ok || (!worded && !edge) {
				continue
			}
			score := 1
			if p.N > 0 {
				score += 2
			}
			if worded {
				score++
			}
			if score > bestScore || score == bestScore && ln.box.Y0 > best.Box.Y0 {
				raw, box, conf := span(ln.toks[i : i+n])
				best = chartscan.Identifier{Kind: chartscan.KindPageNumber, Value: p.String(), Raw: raw,
					Confidence: clamp01(conf), Box: box}
				bestScore = score
			}
		}
	}
	return best, bestScore > 0
}

// pageNumberAt reads a page number starting at toks[i]: "Page 2 of 3", "Page 2/3",
// "Pg. 2 of 3", "p. 2/3", "Page 2", "2 of 3", "2/3 pages". worded reports that a word
// such as "Page" introduced it.
func pageNumberAt(toks []token, i int) (p PageNumber, n int, worded, ok bool) {
	j := i
	switch toks[i].key {
	case "page", "pg", "pag", "p":
		worded = true
		j++
	default:
		// "Page2" or "Pg.2/3" glued.
		for _, w := range []string{"page", "pg"} {
			if rest, cut := strings.CutPrefix(strings.ToLower(toks[i].text), w); cut && rest != "" {
				rest = strings.TrimLeft(rest, ".:# ")
				if k, tot, ok := fraction(rest); ok {
					return PageNumber{k, tot}, 1, true, true
				}
				if k, ok := pageDigits(rest); ok && i+1 < len(toks) {
					if tot, m, ok := ofTotal(toks, i+1); ok && tot >= k {
						return PageNumber{k, tot}, 1 + m, true, true
					}
					return PageNumber{K: k}, 1, true, true
				}
			}
		}
	}
	if toks[i].key == "p" && !strings.HasSuffix(toks[i].text, ".") {
		return PageNumber{}, 0, false, false // a lone "p" is not "p."
	}
	if j >= len(toks) {
		return PageNumber{}, 0, false, false
	}
	t := strings.Trim(toks[j].text, ".:#,;")
	if k, tot, ok := fraction(t); ok {
		if !worded && !(j+1 < len(toks) && strings.HasPrefix(toks[j+1].key, "page")) {
			return PageNumber{}, 0, false, false // "2/3" alone is as likely a dose or a date
		}
		return PageNumber{k, tot}, j + 1 - i, worded, true
	}
	k, okK := pageDigits(t)
	if !okK {
		return PageNumber{}, 0, false, false
	}
	if tot, m, ok := ofTotal(toks, j+1); ok && tot >= k {
		return PageNumber{k, tot}, j + 1 + m - i, worded, true
	}
	if worded {
		return PageNumber{K: k}, j + 1 - i, true, true
	}
	return PageNumber{}, 0, false, false
}

// ofTotal reads "of N" at toks[i:], returning N and the tokens used.
func ofTotal(toks []token, i int) (int, int, bool) {
	if i+1 < len(toks) && toks[i].key == "of" {
		if tot, ok := pageDigits(strings.Trim(toks[i+1].text, ".:#,;")); ok {
			return tot, 2, true
		}
	}
	// "of3" glued.
	if i < len(toks) {
		if rest, ok := strings.CutPrefix(strings.ToLower(toks[i].text), "of"); ok {
			if tot, ok := pageDigits(strings.Trim(rest, ".:#,;")); ok {
				return tot, 1, true
			}
		}
	}
	return 0, 0, false
}

// fraction reads "2/3".
func fraction(s string) (k, n int, ok bool) {
	a, b, cut := strings.Cut(s, "/")
	if !cut {
		return 0, 0, false
	}
	k, okK := pageDigits(a)
	n, okN := pageDigits(b)
	if !okK || !okN || n < k {
		return 0, 0, false
	}
	return k, n, true
}

// pageDigits reads a page number of one to three digits, forgiving the OCR confusions of
// a digit with a letter (l, I, | for 1; O for 0; S for 5).
func pageDigits(s string) (int, bool) {
	if s == "" || len(s) > 3 {
		return 0, false
	}
	digits := 0
	b := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
			b = append(b, byte(r))
		case r == 'l' || r == 'I' || r == '|' || r == 'i':
			b = append(b, '1')
		case r == 'O' || r == 'o':
			b = append(b, '0')
		case r == 'S':
			b = append(b, '5')
		default:
			return 0, false
		}
	}
	// A word of letters only ("I", "lO") is a word, not a misread number, unless it is
	// the single character a "1" is most often misread as.
	if digits == 0 && s != "l" && s != "I" && s != "|" {
		return 0, false
	}
	k, err := strconv.Atoi(string(b))
	if err != nil || k < 1 || k > 999 {
		return 0, false
	}
	return k, true
}
