package indexer

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chartscan/chartscan"
)

// Layout of the words page builds: 10 px per character, 20 px high, 8 px between words
// (a narrow gap) and 60 px more for each extra space (a wide gap, a field boundary).
const (
	charW     = 10
	wordH     = 20
	wordGap   = 8
	extraGap  = 60
	lineStep  = 30
	wordConf  = 90
	firstLine = 100
)

// page lays out lines of text as OCR words, one line per string. Words are split on
// single spaces; two or more spaces make a wide gap. Every word has confidence 90.
func page(lines ...string) []chartscan.Word {
	var words []chartscan.Word
	for i, ln := range lines {
		x := 50
		y := firstLine + i*lineStep
		for j, w := range strings.Split(ln, " ") {
			if w == "" {
				x += extraGap
				continue
			}
			if j > 0 {
				x += wordGap
			}
			wd := utf8.RuneCountInString(w) * charW
			words = append(words, chartscan.Word{Text: w, Conf: wordConf,
				Box: chartscan.Box{X0: x, Y0: y, X1: x + wd, Y1: y + wordH}, Block: 1, Line: i + 1})
			x += wd
		}
	}
	return words
}

// fixNow sets the clock the date rules read for the length of the test.
func fixNow(t *testing.T) {
	t.Helper()
	old := now
	now = func() time.Time { return time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { now = old })
}

// values returns the extracted identifiers as kind → value.
// values maps the fields Extract read to their values. The page number and the report
// of unread labels are left out: tests of them use allValues.
func values(ids []chartscan.Identifier) map[chartscan.IdentifierKind]string {
	out := allValues(ids)
	delete(out, chartscan.KindPageNumber)
	delete(out, chartscan.KindUnread)
	return out
}

func allValues(ids []chartscan.Identifier) map[chartscan.IdentifierKind]string {
	out := map[chartscan.IdentifierKind]string{}
	for _, id := range ids {
		out[id.Kind] = id.Value
	}
	return out
}
