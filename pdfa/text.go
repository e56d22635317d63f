package pdfa

import (
	"strconv"

	"github.com/chartscan/chartscan"
)

// pageContent is a page's content stream: the scan filling the page, then the OCR words
// as invisible text (render mode 3) over it.
//
// Words are laid out a line at a time, as Tesseract's own PDF renderer does: every word
// of a line (same Block and Line, overlapping vertically) shares one font size, the
// line's height, and one baseline, the line's bottom. A viewer then reads the line as a
// line — pdftotext and PDF.js join words into lines only when baselines and sizes agree —
// and a selection covers the line's full height. Horizontally each word is stretched
// with Tz to exactly its box, and a space glyph stretched over the gap to the next word,
// so copied text has its spaces and a search hit highlights the word where it is printed.
func pageContent(b []byte, words []chartscan.Word, wPt, hPt, scale float64) []byte {
	b = append(b, "q\n"...)
	b = appendNum(b, wPt)
	b = append(b, " 0 0 "...)
	b = appendNum(b, hPt)
	b = append(b, " 0 0 cm\n/Im0 Do\nQ\n"...)
	ws := drawable(words)
	if len(ws) == 0 {
		return b
	}
	b = append(b, "BT\n3 Tr\n"...)
	for start := 0; start < len(ws); {
		end := start + 1
		line := ws[start].Box
		for end < len(ws) && sameLine(ws[end], ws[start], line) {
			line = line.Union(ws[end].Box)
			end++
		}
		size := max(float64(line.Y1-line.Y0)*scale, 1)
		base := hPt - float64(line.Y1)*scale
		b = append(b, "/F0 "...)
		b = appendNum(b, size)
		b = append(b, " Tf\n"...)
		for i := start; i < end; i++ {
			w := ws[i]
			x := float64(w.Box.X0) * scale
			width := float64(w.Box.X1-w.Box.X0) * scale
			b = append(b, "1 0 0 1 "...)
			b = appendNum(b, x)
			b = append(b, ' ')
			b = appendNum(b, base)
			b = append(b, " Tm "...)
			b = appendNum(b, stretch(width, cidCount(w.Text), size))
			b = append(b, " Tz "...)
			b = appendCIDs(b, w.Text)
			b = append(b, " Tj"...)
			if i+1 < end {
				gap := float64(ws[i+1].Box.X0-w.Box.X1) * scale
				b = append(b, ' ')
				b = appendNum(b, stretch(max(gap, size/20), 1, size))
				b = append(b, " Tz <0020> Tj"...)
			}
			b = append(b, '\n')
		}
		start = end
	}
	return append(b, "ET\n"...)
}

// drawable drops words with nothing to write or no box.
func drawable(words []chartscan.Word) []chartscan.Word {
	out := make([]chartscan.Word, 0, len(words))
	for _, w := range words {
		if cidCount(w.Text) > 0 && w.Box.X1 > w.Box.X0 && w.Box.Y1 > w.Box.Y0 {
			out = append(out, w)
		}
	}
	return out
}

// sameLine reports whether w continues the line that first began and whose box so far
// is line: same Tesseract line and overlapping it vertically, so words stored without
// line numbers (all zero) still break into lines where the page does.
func sameLine(w, first chartscan.Word, line chartscan.Box) bool {
	return w.Block == first.Block && w.Line == first.Line && w.Box.Y0 < line.Y1 && w.Box.Y1 > line.Y0
}

// stretch is the horizontal scaling (Tz, percent) that makes n glyphs of the glyphless
// font at size fill width.
func stretch(width float64, n int, size float64) float64 {
	natural := float64(n) * size * glyphAdvance / unitsPerEm
	return 100 * width / natural
}

// appendNum writes a PDF real with at most two decimals: a hundredth of a point is far
// below a pixel at any scanning resolution.
func appendNum(b []byte, f float64) []byte {
	n := len(b)
	b = strconv.AppendFloat(b, f, 'f', 2, 64)
	for b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	if string(b[n:]) == "-0" {
		b = append(b[:n], '0')
	}
	return b
}
