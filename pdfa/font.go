package pdfa

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf16"
)

// The text layer is drawn in render mode 3 (neither filled nor stroked), so no glyph of it
// is ever seen; but PDF/A wants every font a page uses embedded, and a viewer wants glyph
// widths to place the selection. OCRmyPDF and Tesseract solve this with "GlyphLessFont": a
// TrueType font of one empty glyph, 500 units wide on a 1000-unit em, to which every CID
// maps. The text is written as UTF-16 code units used directly as CIDs (Identity-H), so the
// ToUnicode CMap is the identity and any text a viewer copies is the text OCR read.
//
// The font program is built here rather than shipped as a binary blob so that every byte
// of it is reviewable; it is a few hundred bytes and built once.

const (
	fontName     = "GlyphLessFont"
	unitsPerEm   = 1000
	glyphAdvance = 500 // every glyph's advance, in font units: /DW in the CIDFont dictionary
)

var (
	fontOnce     sync.Once
	fontProgram  []byte // the TrueType program (FontFile2, uncompressed: Length1)
	fontFileZ    []byte // fontProgram, Flate-compressed
	cidToGIDMapZ []byte // CID → GID 1 for every 16-bit CID, Flate-compressed
	toUnicodeZ   []byte // identity ToUnicode CMap, Flate-compressed
)

// fontStreams builds the shared font streams once per process.
func fontStreams() {
	fontOnce.Do(func() {
		fontProgram = glyphlessTrueType()
		fontFileZ = mustDeflate(fontProgram)
		m := make([]byte, 2*65536)
		for i := 1; i < len(m); i += 2 {
			m[i] = 1 // big-endian GID 1
		}
		cidToGIDMapZ = mustDeflate(m)
		toUnicodeZ = mustDeflate([]byte(identityToUnicode()))
	})
}

// glyphlessTrueType returns a minimal valid TrueType font: glyph 0 (.notdef) a plain box
// so that the font has an outline at all, glyph 1 empty; both advance glyphAdvance units.
func glyphlessTrueType() []byte {
	be := binary.BigEndian
	u16 := func(b []byte, vs ...uint16) []byte {
		for _, v := range vs {
			b = be.AppendUint16(b, v)
		}
		return b
	}
	u32 := func(b []byte, v uint32) []byte { return be.AppendUint32(b, v) }

	// glyf: glyph 0 is one closed contour of four on-curve points, (0,0) (0,1000)
	// (500,1000) (500,0), coordinates as 16-bit deltas; glyph 1 has no data at all.
	var glyf []byte
	glyf = u16(glyf, 1, 0, 0, glyphAdvance, unitsPerEm) // contours, xMin, yMin, xMax, yMax
	glyf = u16(glyf, 3)                                 // endPtsOfContours[0]
	glyf = u16(glyf, 0)                                 // instructionLength
	glyf = append(glyf, 1, 1, 1, 1)                     // flags: on curve, long coordinates
	glyf = u16(glyf, 0, 0, glyphAdvance, uint16(0))     // x deltas
	glyf = u16(glyf, 0, unitsPerEm, 0, uint16(0x10000-unitsPerEm))
	notdefLen := len(glyf) // 34, even as the short loca format needs

	loca := u16(nil, 0, uint16(notdefLen/2), uint16(notdefLen/2))

	var head []byte
	head = u32(head, 0x00010000)                     // version
	head = u32(head, 0x00010000)                     // fontRevision
	head = u32(head, 0)                              // checkSumAdjustment, set below
	head = u32(head, 0x5F0F3CF5)                     // magicNumber
	head = u16(head, 0x000B)                         // flags: baseline y=0, lsb x=0, integer ppem
	head = u16(head, unitsPerEm)                     // unitsPerEm
	head = append(head, 0, 0, 0, 0)                  // created, modified (64-bit): a fixed date,
	head = u32(head, 3786912000)                     // 2024-01-01 in seconds since 1904, keeps
	head = append(head, 0, 0, 0, 0)                  // the font's bytes, and so the PDF's, the
	head = u32(head, 3786912000)                     // same from build to build
	head = u16(head, 0, 0, glyphAdvance, unitsPerEm) // xMin yMin xMax yMax
	head = u16(head, 0, 3, 2, 0, 0)                  // macStyle, lowestRecPPEM, fontDirectionHint, indexToLocFormat (short), glyphDataFormat

	var hhea []byte
	hhea = u32(hhea, 0x00010000)
	hhea = u16(hhea, unitsPerEm, 0, 0) // ascender, descender, lineGap
	hhea = u16(hhea, glyphAdvance, 0, 0, glyphAdvance)
	hhea = u16(hhea, 1, 0, 0)          // caretSlopeRise, caretSlopeRun, caretOffset
	hhea = u16(hhea, 0, 0, 0, 0, 0, 2) // reserved ×4, metricDataFormat, numberOfHMetrics

	hmtx := u16(nil, glyphAdvance, 0, glyphAdvance, 0)

	var maxp []byte
	maxp = u32(maxp, 0x00010000)
	maxp = u16(maxp, 2, 4, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0) // numGlyphs … maxComponentDepth

	// cmap: one (3,1) format 4 subtable with only the mandatory final segment. A
	// CIDFontType2 is reached through CIDToGIDMap, never through cmap; the table is there
	// for font parsers that insist on one.
	var cmap []byte
	cmap = u16(cmap, 0, 1)         // version, numTables
	cmap = u16(cmap, 3, 1)         // platform Windows, encoding Unicode BMP
	cmap = u32(cmap, 12)           // offset of the subtable
	cmap = u16(cmap, 4, 24, 0)     // format, length, language
	cmap = u16(cmap, 2, 2, 0, 0)   // segCountX2, searchRange, entrySelector, rangeShift
	cmap = u16(cmap, 0xFFFF, 0)    // endCode[0], reservedPad
	cmap = u16(cmap, 0xFFFF, 1, 0) // startCode[0], idDelta[0], idRangeOffset[0]

	names := []struct {
		id   uint16
		text string
	}{{1, fontName}, {2, "Regular"}, {3, fontName}, {4, fontName}, {6, fontName}}
	var nameStrings []byte
	name := u16(nil, 0, uint16(len(names)), uint16(6+12*len(names)))
	for _, n := range names {
		s := utf16.Encode([]rune(n.text))
		name = u16(name, 3, 1, 0x0409, n.id, uint16(2*len(s)), uint16(len(nameStrings)))
		nameStrings = u16(nameStrings, s...)
	}
	name = append(name, nameStrings...)

	var post []byte
	post = u32(post, 0x00030000) // format 3: no glyph names
	post = u32(post, 0)          // italicAngle
	post = u16(post, uint16(0x10000-100), 50)
	post = u32(post, 1) // isFixedPitch
	post = append(post, make([]byte, 16)...)

	// OS/2 version 4: not needed by PDF, but parsers of fonts on Windows and some
	// validators expect it. fsType 0: installable, so embedding is permitted.
	var os2 []byte
	os2 = u16(os2, 4, glyphAdvance, 400, 5, 0)                 // version, xAvgCharWidth, weight, width, fsType
	os2 = u16(os2, 650, 600, 0, 75, 650, 600, 0, 350, 50, 250) // sub/superscript size and offset, strikeout
	os2 = u16(os2, 0)                                          // sFamilyClass
	os2 = append(os2, make([]byte, 10)...)                     // panose: any
	os2 = append(os2, make([]byte, 16)...)                     // ulUnicodeRange1–4
	os2 = append(os2, "NONE"...)                               // achVendID
	os2 = u16(os2, 0x40, 0xFFFF, 0xFFFF)                       // fsSelection REGULAR, first and last char in cmap
	os2 = u16(os2, unitsPerEm, 0, 0, unitsPerEm, 0)            // typo ascender, descender, line gap; win ascent, descent
	os2 = u32(os2, 1)                                          // ulCodePageRange1: Latin 1
	os2 = u32(os2, 0)
	os2 = u16(os2, unitsPerEm/2, unitsPerEm, 0, 0x20, 0) // xHeight, capHeight, defaultChar, breakChar, maxContext

	tables := map[string][]byte{
		"OS/2": os2, "cmap": cmap, "glyf": glyf, "head": head, "hhea": hhea, "hmtx": hmtx,
		"loca": loca, "maxp": maxp, "name": name, "post": post,
	}
	tags := make([]string, 0, len(tables))
	for t := range tables {
		tags = append(tags, t)
	}
	sort.Strings(tags)

	n := len(tags)
	pow := 1
	sel := 0
	for pow*2 <= n {
		pow *= 2
		sel++
	}
	var out []byte
	out = u32(out, 0x00010000)
	out = u16(out, uint16(n), uint16(16*pow), uint16(sel), uint16(16*n-16*pow))
	offset := 12 + 16*n
	headAt := 0
	var body []byte
	for _, t := range tags {
		data := tables[t]
		padded := append(append([]byte(nil), data...), make([]byte, (4-len(data)%4)%4)...)
		if t == "head" {
			headAt = offset + len(body)
		}
		out = append(out, t...)
		out = u32(out, ttChecksum(padded))
		out = u32(out, uint32(offset+len(body)))
		out = u32(out, uint32(len(data)))
		body = append(body, padded...)
	}
	out = append(out, body...)
	be.PutUint32(out[headAt+8:], 0xB1B0AFBA-ttChecksum(out))
	return out
}

func ttChecksum(b []byte) uint32 {
	var sum uint32
	for i := 0; i+4 <= len(b); i += 4 {
		sum += binary.BigEndian.Uint32(b[i:])
	}
	if r := len(b) % 4; r != 0 {
		var last [4]byte
		copy(last[:], b[len(b)-r:])
		sum += binary.BigEndian.Uint32(last[:])
	}
	return sum
}

// identityToUnicode maps every 16-bit code the text layer can hold to the same UTF-16
// code unit: not C0 controls, surrogate halves, U+FFFE or U+FFFF, which appendCIDs never
// writes and PDF/A-2u forbids as ToUnicode values. A bfrange may only vary its last
// byte, hence one range per high byte, and a block holds at most 100 of them.
func identityToUnicode() string {
	var ranges []string
	for hi := 0; hi < 256; hi++ {
		lo, last := 0x00, 0xFF
		switch {
		case hi >= 0xD8 && hi <= 0xDF:
			continue
		case hi == 0x00:
			lo = 0x20
		case hi == 0xFF:
			last = 0xFD
		}
		ranges = append(ranges, fmt.Sprintf("<%02X%02X> <%02X%02X> <%02X%02X>\n", hi, lo, hi, last, hi, lo))
	}
	var sb strings.Builder
	sb.WriteString("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n" +
		"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n" +
		"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n" +
		"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n")
	for len(ranges) > 0 {
		k := min(100, len(ranges))
		fmt.Fprintf(&sb, "%d beginbfrange\n", k)
		for _, r := range ranges[:k] {
			sb.WriteString(r)
		}
		sb.WriteString("endbfrange\n")
		ranges = ranges[k:]
	}
	sb.WriteString("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n")
	return sb.String()
}

// appendCIDs appends s as the hex string of its UTF-16 code units, the CIDs of the
// glyphless font. Characters outside the Basic Multilingual Plane would need surrogate
// pairs that the identity ToUnicode cannot map back, so they become U+FFFD; control
// characters are dropped.
func appendCIDs(b []byte, s string) []byte {
	const hexdigits = "0123456789ABCDEF"
	b = append(b, '<')
	for _, r := range s {
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			continue
		}
		if r > 0xFFFF || (r >= 0xD800 && r <= 0xDFFF) {
			r = 0xFFFD
		}
		b = append(b, hexdigits[r>>12&0xF], hexdigits[r>>8&0xF], hexdigits[r>>4&0xF], hexdigits[r&0xF])
	}
	return append(b, '>')
}

// cidCount is the number of glyphs appendCIDs writes for s.
func cidCount(s string) int {
	n := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			continue
		}
		n++
	}
	return n
}
