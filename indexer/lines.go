package indexer

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chartscan/chartscan"
)

// gapFactor is how many line heights of blank space between two words mark a field
// boundary: forms separate "label: value" pairs with wide gaps, words with narrow ones.
const gapFactor = 1.5

// token is one OCR word as the extractor sees it. key is its letters and digits in lower
// case: labels are matched on keys so that OCR noise in punctuation does not matter.
type token struct {
	text      string
	key       string
	conf      float64
	box       chartscan.Box
	gapBefore bool // a wide gap separates it from the token before it
	// ruleBefore reports that a ruled line ('|' as OCR reads a table's vertical rule)
	// stood between it and the token before it: a cell boundary, as good as a wide gap.
	ruleBefore bool
}

// line is one rebuilt line of text.
type line struct {
	toks []token
	box  chartscan.Box
}

// Lines returns the text of the page rebuilt line by line: words grouped by Block and
// Line, in Tesseract's reading order, each line's words ordered left to right.
func Lines(words []chartscan.Word) []string {
	groups := groupLines(words)
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		parts := make([]string, 0, len(g))
		for _, w := range g {
			parts = append(parts, strings.Join(strings.Fields(w.Text), " "))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

// groupLines groups the words by (Block, Line), orders the lines by those numbers and the
// words of each line by X. Blank words are dropped.
func groupLines(words []chartscan.Word) [][]chartscan.Word {
	type lineKey struct{ block, line int }
	index := map[lineKey]int{}
	var keys []lineKey
	var groups [][]chartscan.Word
	for _, w := range words {
		if strings.TrimSpace(w.Text) == "" {
			continue
		}
		k := lineKey{w.Block, w.Line}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			keys = append(keys, k)
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], w)
	}
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(keys[a].block, keys[b].block), cmp.Compare(keys[a].line, keys[b].line))
	})
	out := make([][]chartscan.Word, 0, len(groups))
	for _, i := range order {
		g := groups[i]
		slices.SortStableFunc(g, func(a, b chartscan.Word) int { return cmp.Compare(a.Box.X0, b.Box.X0) })
		out = append(out, g)
	}
	return out
}

// buildLines rebuilds the page's lines as tokens.
func buildLines(words []chartscan.Word) []line {
	groups := groupLines(words)
	out := make([]line, 0, len(groups))
	for _, g := range groups {
		var ln line
		rule := false
		for _, w := range g {
			toks, lead, trail := splitWord(w)
			if len(toks) > 0 {
				toks[0].ruleBefore = rule || lead
				ln.toks = append(ln.toks, toks...)
				rule = trail
			} else {
				rule = rule || lead || trail
			}
			ln.box = ln.box.Union(w.Box)
		}
		markGaps(ln.toks)
		out = append(out, ln)
	}
	return out
}

// splitWord turns one OCR word into tokens. A word normally is one token, but text with
// spaces in it is split, and so is a label glued to its value ("MRN:12345",
// "DOB:03/14/1962"), because OCR drops the space after a colon often enough to matter.
// The vertical rules of a table, which OCR reads as '|' (alone or glued to a word), are
// not text: lead and trail report a rule before and after the tokens.
func splitWord(w chartscan.Word) (out []token, lead, trail bool) {
	conf := min(max(w.Conf, 0), 100)
	runes := []rune(w.Text)
	from, to := 0, len(runes)
	for from < to && isRule(runes[from]) {
		from, lead = from+1, true
	}
	for to > from && isRule(runes[to-1]) {
		to, trail = to-1, true
	}
	if from == to {
		return nil, lead, trail
	}
	if from > 0 || to < len(runes) {
		w.Box = subBox(w.Box, from, to, len(runes))
		runes = runes[from:to]
	}
	n := len(runes)
	start := -1
	emit := func(from, to int) {
		if from >= to {
			return
		}
		out = append(out, newToken(string(runes[from:to]), conf, subBox(w.Box, from, to, n)))
	}
	for i := 0; i <= n; i++ {
		if i == n || unicode.IsSpace(runes[i]) {
			if start >= 0 {
				from := start
				for _, cut := range labelCuts(runes[start:i]) {
					emit(from, start+cut)
					from = start + cut
				}
				emit(from, i)
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return out, lead, trail
}

// isRule reports whether r is how OCR reads a ruled line.
func isRule(r rune) bool { return r == '|' || r == '¦' || r == '│' }

// labelCuts returns where to cut a glued "label:value" word: after the run of ':', ';' or
// '#' that follows a label made of letters and dots. Times such as "10:30" are not cut.
func labelCuts(rs []rune) []int {
	i := 0
	letters := 0
	for i < len(rs) && (unicode.IsLetter(rs[i]) || rs[i] == '.') {
		if unicode.IsLetter(rs[i]) {
			letters++
		}
		i++
	}
	if letters == 0 || i == len(rs) {
		return nil
	}
	if rs[i] == '-' && i+1 < len(rs) && unicode.IsDigit(rs[i+1]) && mrnPrefixes[keyOf(string(rs[:i]))] {
		return []int{i + 1} // "MRN-40012345", as stickers print it
	}
	if !isLabelPunct(rs[i]) {
		return nil
	}
	for i < len(rs) && isLabelPunct(rs[i]) {
		i++
	}
	if i == len(rs) {
		return nil
	}
	return []int{i}
}

// mrnPrefixes are the MRN labels a sticker glues to the number with a hyphen.
var mrnPrefixes = map[string]bool{"mrn": true, "mr": true, "mrno": true, "urn": true}

func isLabelPunct(r rune) bool { return r == ':' || r == ';' || r == '#' }

// subBox estimates the box of runes [from,to) of a word of n runes, assuming even widths.
func subBox(b chartscan.Box, from, to, n int) chartscan.Box {
	if n == 0 || (from == 0 && to == n) {
		return b
	}
	w := b.X1 - b.X0
	return chartscan.Box{X0: b.X0 + w*from/n, Y0: b.Y0, X1: b.X0 + w*to/n, Y1: b.Y1}
}

func newToken(text string, conf float64, box chartscan.Box) token {
	return token{text: text, key: keyOf(text), conf: conf, box: box}
}

// keyOf returns the letters and digits of s in lower case.
func keyOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// markGaps flags the tokens that follow a gap wider than gapFactor line heights.
func markGaps(toks []token) {
	var heights []int
	for _, t := range toks {
		if h := t.box.Y1 - t.box.Y0; h > 0 {
			heights = append(heights, h)
		}
	}
	if len(heights) == 0 {
		return
	}
	slices.Sort(heights)
	h := float64(heights[len(heights)/2])
	for i := 1; i < len(toks); i++ {
		prev, cur := toks[i-1].box, toks[i].box
		if prev == (chartscan.Box{}) || cur == (chartscan.Box{}) {
			continue
		}
		if toks[i].ruleBefore || float64(cur.X0-prev.X1) > gapFactor*h {
			toks[i].gapBefore = true
		}
	}
}

// span returns the raw text, box and mean confidence (0–1) of toks.
func span(toks []token) (raw string, box chartscan.Box, conf float64) {
	parts := make([]string, 0, len(toks))
	for _, t := range toks {
		parts = append(parts, t.text)
		box = box.Union(t.box)
		conf += t.conf
	}
	if len(toks) > 0 {
		conf /= float64(len(toks)) * 100
	}
	return strings.Join(parts, " "), box, conf
}

// firstRuneUpper reports whether s starts with an upper-case letter.
func firstRuneUpper(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsUpper(r)
}
