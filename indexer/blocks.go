package indexer

import (
	"strings"

	"github.com/chartscan/chartscan"
)

// Unlabelled identifier blocks. An addressograph imprint, a patient sticker or a
// wristband prints the identifiers without labels, one to a line, in a compact block:
// the MRN alone, the name ("FAMILY GIVEN" in capitals, or "FAMILY, Given"), the birth
// date (often with sex and age), perhaps a doctor and a clinic. Such a block is
// recognised by its content: a number line, a name line and a date line stacked
// closely and aligned on the left. Its fields count for less than labelled ones.

// Label factors of the fields of an unlabelled block: less than a label's, since the
// block was recognised by shape alone.
const (
	blockMRNFactor  = 0.8
	blockNameFactor = 0.75
	blockDOBFactor  = 0.8
)

// segment is a run of a row's tokens between wide gaps: one line of a block.
type rowSegment struct {
	toks []token
	box  chartscan.Box
	h    int
}

// segmentsOf cuts the rows at wide gaps.
func segmentsOf(rows []row) []rowSegment {
	var out []rowSegment
	for _, r := range rows {
		start := 0
		for i := 1; i <= len(r.toks); i++ {
			if i == len(r.toks) || r.toks[i].gapBefore {
				toks := r.toks[start:i]
				// Marks at the edges ("[" of a stamp's corner) are not part of the line.
				for len(toks) > 0 && toks[0].key == "" {
					toks = toks[1:]
				}
				for len(toks) > 0 && toks[len(toks)-1].key == "" {
					toks = toks[:len(toks)-1]
				}
				start = i
				if len(toks) == 0 {
					continue
				}
				s := rowSegment{toks: toks, h: r.h}
				for _, t := range s.toks {
					s.box = s.box.Union(t.box)
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// notNameWords are capitalised words that make a line something other than a name: a
// title, a doctor, a place, a heading.
var notNameWords = map[string]bool{
	"dr": true, "md": true, "do": true, "rn": true, "np": true, "pa": true, "doctor": true,
	"hospital": true, "clinic": true, "clinics": true, "ward": true, "unit": true, "room": true,
	"bed": true, "center": true, "centre": true, "medical": true, "health": true, "general": true,
	"department": true, "dept": true, "service": true, "services": true, "report": true,
	"note": true, "notes": true, "summary": true, "record": true, "records": true, "form": true,
	"patient": true, "name": true, "mrn": true, "dob": true, "sex": true, "age": true,
	"date": true, "the": true, "of": true, "and": true, "for": true, "to": true, "in": true,
	"synthetic": true, "test": true, "not": true, "real": true, "page": true, "continued": true,
	"laboratory": true, "radiology": true, "nursing": true, "progress": true, "discharge": true,
	"operative": true, "consent": true, "treatment": true, "history": true, "physical": true,
	"attending": true, "physician": true, "admit": true, "admitted": true, "visit": true,
	"acct": true, "account": true, "fin": true, "loc": true, "location": true, "floor": true,
	"cardiology": true, "medicine": true, "surgery": true, "orthopedics": true, "pediatrics": true,
	"oncology": true, "outpatient": true, "inpatient": true, "emergency": true, "icu": true,
	"male": true, "female": true, "yes": true, "no": true, "signature": true, "signed": true,
	"example": true, "avenue": true, "street": true, "road": true, "tel": true, "phone": true,
}

// blockName reads a name line of an unlabelled block: two to four name-shaped words,
// none of them a title, place or heading word, either "FAMILY, Given" or all in
// capitals ("FAMILY GIVEN", read family first as imprints print it) — strong forms — or
// "Given Family" in mixed case, which any heading also looks like. It returns the
// KindName value.
func blockName(toks []token) (string, bool, bool) {
	// Specks inside the line ("RHODES _ DARCY") and quotes OCR adds are not the name.
	var clean []token
	for _, t := range toks {
		if t.key == "" && !strings.Contains(t.text, ",") {
			continue
		}
		t.text = strings.TrimRight(t.text, "’'`\"")
		clean = append(clean, t)
	}
	toks = clean
	if len(toks) < 2 || len(toks) > 4 {
		return "", false, false
	}
	caps := true
	for _, t := range toks {
		w := strings.Trim(t.text, ",.")
		if !nameShaped(w) || notNameWords[t.key] || formWords[t.key] || honorifics[t.key] {
			return "", false, false
		}
		if strings.ToUpper(w) != w {
			caps = false
		}
		if !firstRuneUpper(w) {
			return "", false, false
		}
	}
	if strings.Contains(toks[0].text, ",") || (len(toks) > 1 && toks[1].text == ",") {
		v, n, _, ok := parseName(toks, true)
		return v, true, ok && n == len(toks)
	}
	if caps {
		fam := strings.Trim(toks[0].text, ",.")
		giv := strings.Trim(toks[1].text, ",.")
		if letters(fam) < 2 || letters(giv) < 1 {
			return "", false, false
		}
		return strings.ToUpper(fam) + ", " + titleCase(giv), true, true
	}
	v, n, _, ok := parseName(toks, true)
	return v, false, ok && n == len(toks)
}

// blockNumber reads a number line: one MRN-shaped token (digits, perhaps letters and
// hyphens, at least five digits), or digit groups that join into one; nothing else on
// the line.
func blockNumber(toks []token) (string, bool) {
	if _, _, _, ok := parseDateTokens(toks); ok {
		return "", false // "1994-10-01" is a date, however MRN-shaped its digits
	}
	if len(toks) == 2 && len(toks[0].key) <= 1 && !digitGroup(toks[0].text) {
		toks = toks[1:] // a speck or a stamp's corner read as a letter: "l; 868550104"
	}
	v, n, _, ok := parseMRN(toks)
	if !ok || n != len(toks) {
		return "", false
	}
	digits := 0
	for _, r := range v {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	return v, digits >= 6 && digits*2 >= len(v)
}

// blockDate reads a date line: a date first, then at most sex, age or a short code.
func blockDate(toks []token) (date, sex string, ok bool) {
	d, n, _, ok := parseDateTokens(toks)
	if !ok || len(toks)-n > 3 {
		return "", "", false
	}
	for _, t := range toks[n:] {
		if s, ok := NormalizeSex(t.text); ok {
			sex = s
		}
	}
	return d, sex, true
}

// stripIDLabel removes an MRN or birth-date label from the start of a block's line
// ("MR# 40012345", "DOB 03/14/1962"): a stamp that labels some lines and not the name
// is still a block.
func stripIDLabel(toks []token) ([]token, chartscan.IdentifierKind) {
	d, end, _, ok := matchLabel(toks, 0)
	if !ok || (d.kind != chartscan.KindMRN && d.kind != chartscan.KindDOB) {
		return toks, ""
	}
	end++
	for end < len(toks) && toks[end].key == "" {
		end++
	}
	return toks[end:], d.kind
}

// identifierBlocks finds unlabelled identifier blocks and returns their fields.
func identifierBlocks(segs []rowSegment) []chartscan.Identifier {
	var out []chartscan.Identifier
	for i := range segs {
		// A block is read from its first line: the lines below it, left-aligned with it
		// and each close under the one before.
		lines := []int{i}
		last := segs[i]
		for j := i + 1; j < len(segs) && len(lines) < 6; j++ {
			s := segs[j]
			h := max(last.h, s.h, 1)
			if s.box.Y0 > last.box.Y1+3*h/2 {
				break
			}
			if abs(s.box.X0-segs[i].box.X0) <= 2*h && s.box.Y0 > last.box.Y0 {
				lines = append(lines, j)
				last = s
			}
		}
		if len(lines) < 2 {
			continue
		}
		var num, nm, date string
		strong := false
		var ids []chartscan.Identifier
		for _, j := range lines {
			toks, labelled := stripIDLabel(segs[j].toks)
			if len(toks) == 0 {
				continue
			}
			raw, box, conf := span(toks)
			switch {
			case num == "" && (labelled == "" || labelled == chartscan.KindMRN):
				if v, ok := blockNumber(toks); ok {
					num = v
					ids = append(ids, chartscan.Identifier{Kind: chartscan.KindMRN, Value: v, Raw: raw, Confidence: clamp01(conf * blockMRNFactor), Box: box})
					continue
				}
			}
			if nm == "" && labelled == "" {
				if v, st, ok := blockName(toks); ok {
					nm, strong = v, st
					ids = append(ids, chartscan.Identifier{Kind: chartscan.KindName, Value: v, Raw: raw, Confidence: clamp01(conf * blockNameFactor), Box: box})
					continue
				}
			}
			if date == "" && labelled != chartscan.KindMRN {
				if d, s, ok := blockDate(toks); ok && d <= now().Format("2006-01-02") {
					date = d
					ids = append(ids, chartscan.Identifier{Kind: chartscan.KindDOB, Value: d, Raw: raw, Confidence: clamp01(conf * blockDOBFactor), Box: box})
					if s != "" {
						ids = append(ids, chartscan.Identifier{Kind: chartscan.KindSex, Value: s, Raw: raw, Confidence: clamp01(conf * blockDOBFactor), Box: box})
					}
				}
			}
		}
		// A name in a strong form with a number or a date, stacked in a block, is how
		// imprints and stickers look; a name in mixed case ("Given Family") looks like any
		// heading, so it needs both. A number and a date without a name are as likely an
		// order number and its date.
		if nm != "" && ((strong && (num != "" || date != "")) || (num != "" && date != "")) {
			out = append(out, ids...)
		}
	}
	return out
}

// rowNames finds a name printed without a label at the start of a line of labelled
// identifiers, as footers and some headers print it ("SMITH-JONES, Mary | MRN 40055555 |
// DOB 12/01/1970"): up to four name-shaped words right before the first MRN or birth
// date label of a row, in a strong name form ("FAMILY, Given" or capitals).
func rowNames(rows []row) []chartscan.Identifier {
	var out []chartscan.Identifier
	for _, r := range rows {
		for j := 1; j < len(r.toks); j++ {
			d, _, _, ok := matchLabel(r.toks, j)
			if !ok || (d.kind != chartscan.KindMRN && d.kind != chartscan.KindDOB) {
				continue
			}
			for j > 1 && r.toks[j-1].key == "" {
				j-- // a separator between the name and the label: "OKAFOR, Ada - MRN …"
				r.toks[j].gapBefore = true
			}
			k := j
			for k > 0 && j-k < 4 && nameShaped(strings.Trim(r.toks[k-1].text, ",.’'`\"")) {
				k--
				if r.toks[k].gapBefore {
					break
				}
			}
			if k < j && (k == 0 || r.toks[k].gapBefore || j < len(r.toks) && r.toks[j].gapBefore) {
				if v, strong, ok := blockName(r.toks[k:j]); ok && strong {
					raw, box, conf := span(r.toks[k:j])
					out = append(out, chartscan.Identifier{Kind: chartscan.KindName, Value: v, Raw: raw,
						Confidence: clamp01(conf * blockNameFactor), Box: box})
				}
			}
			break
		}
	}
	return out
}
