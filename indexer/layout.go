package indexer

import (
	"cmp"
	"slices"
	"strings"

	"github.com/chartscan/chartscan"
)

// Fields read in two dimensions. Forms do not always print a value to the right of its
// label: a table form prints a header row of labels and a row of values under it, a boxed
// form prints the label small at the top of its box and the value below, and Tesseract
// often cuts such a page into one block per cell, so the label and its value are not on
// one of its lines. These functions look at the page's geometry instead: the rows of
// words by their height on the page, and the value of a label in the column it heads.

// row is one geometric row of the page: tokens whose vertical centres lie together,
// whatever block Tesseract put them in, ordered left to right.
type row struct {
	toks []token
	box  chartscan.Box
	h    int // the median token height
}

// pageRows groups the tokens of every line into geometric rows, top to bottom.
func pageRows(lines []line) []row {
	var all []token
	for _, ln := range lines {
		for _, t := range ln.toks {
			// Specks and marks ("=", "}", a stamp's corner) would pull rows together.
			if t.box != (chartscan.Box{}) && (t.key != "" || strings.Contains(t.text, ",")) {
				all = append(all, t)
			}
		}
	}
	slices.SortStableFunc(all, func(a, b token) int { return cmp.Compare(a.box.Y0+a.box.Y1, b.box.Y0+b.box.Y1) })
	var rows []row
	var sumCY []int // per row, the sum of its tokens' centres: rows are compared by their mean
	for _, t := range all {
		cy := (t.box.Y0 + t.box.Y1) / 2
		if n := len(rows); n > 0 {
			r := &rows[n-1]
			rcy := sumCY[n-1] / len(r.toks)
			h := max(r.h, t.box.Y1-t.box.Y0, 1)
			if abs(cy-rcy)*2 < h {
				r.toks = append(r.toks, t)
				r.box = r.box.Union(t.box)
				sumCY[n-1] += cy
				continue
			}
		}
		rows = append(rows, row{toks: []token{t}, box: t.box, h: t.box.Y1 - t.box.Y0})
		sumCY = append(sumCY, cy)
	}
	for i := range rows {
		r := &rows[i]
		slices.SortStableFunc(r.toks, func(a, b token) int { return cmp.Compare(a.box.X0, b.box.X0) })
		hs := make([]int, 0, len(r.toks))
		for j := range r.toks {
			r.toks[j].gapBefore = false
			hs = append(hs, r.toks[j].box.Y1-r.toks[j].box.Y0)
		}
		slices.Sort(hs)
		r.h = max(hs[len(hs)/2], 1)
		markGaps(r.toks)
	}
	return rows
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// column returns the horizontal extent a label heads: from halfway to the word before it
// on its line (or a little left of it) to just before the next word after it (or far to
// the right when nothing follows).
func (f field) column() (x0, x1 int) {
	h := max(f.label.Y1-f.label.Y0, 1)
	x0 = f.label.X0 - 2*h
	if f.prevX > 0 {
		x0 = max(x0, (f.prevX+f.label.X0)/2)
	}
	x1 = f.label.X1 + 30*h
	if f.nextX > 0 {
		x1 = f.nextX - h/2
	}
	return x0, x1
}

// below returns the value under a label that has none beside it: the tokens of the
// first row below the label, within three label heights, whose centres lie in the
// column the label heads, up to a wide gap. A row that starts with another label (a
// second row of headers, a stacked form) holds no value of this one.
func below(f field, rows []row) []token {
	h := max(f.label.Y1-f.label.Y0, 1)
	x0, x1 := f.column()
	top := (f.label.Y0 + f.label.Y1) / 2
	for _, r := range rows {
		cy := (r.box.Y0 + r.box.Y1) / 2
		if cy <= top+h/2 || r.box.Y0 <= f.label.Y1-h/3 {
			continue
		}
		if r.box.Y0 > f.label.Y1+3*h {
			break
		}
		var v []token
		for _, t := range r.toks {
			c := (t.box.X0 + t.box.X1) / 2
			if c >= x0 && c < x1 {
				v = append(v, t)
			}
		}
		if len(v) == 0 {
			continue
		}
		if d, _, _, ok := matchLabel(v, 0); ok && !d.weak {
			return nil
		}
		for j := 1; j < len(v); j++ {
			if v[j].gapBefore {
				return v[:j]
			}
		}
		return v
	}
	return nil
}

// beside returns the value to the right of a label in its geometric row, when the line
// Tesseract built ends at the label (the value was read as a block of its own): the
// tokens after the label up to the next label or wide gap, the first of them within six
// label heights.
func beside(f field, rows []row) []token {
	h := max(f.label.Y1-f.label.Y0, 1)
	cy := (f.label.Y0 + f.label.Y1) / 2
	for _, r := range rows {
		if cy < r.box.Y0 || cy > r.box.Y1 {
			continue
		}
		var v []token
		for _, t := range r.toks {
			if t.box.X0 < f.label.X1 {
				continue
			}
			if len(v) == 0 && t.box.X0-f.label.X1 > 6*h {
				return nil
			}
			if len(v) > 0 && t.gapBefore {
				break
			}
			if _, _, _, ok := matchLabel([]token{t}, 0); ok && len(v) > 0 || isColonWord(t) {
				break
			}
			v = append(v, t)
		}
		return v
	}
	return nil
}
