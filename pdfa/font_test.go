package pdfa

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// The glyphless font is a TrueType font a parser accepts: two glyphs, both as wide as
// the PDF's /DW says, glyph 1 (the one every CID maps to) empty, checksums right.
func TestGlyphlessFontProgram(t *testing.T) {
	prog := glyphlessTrueType()
	f, err := sfnt.Parse(prog)
	if err != nil {
		t.Fatalf("sfnt.Parse: %v", err)
	}
	if n := f.NumGlyphs(); n != 2 {
		t.Errorf("%d glyphs, want 2", n)
	}
	var buf sfnt.Buffer
	for gid := range 2 {
		adv, err := f.GlyphAdvance(&buf, sfnt.GlyphIndex(gid), fixed.I(unitsPerEm), font.HintingNone)
		if err != nil || adv != fixed.I(glyphAdvance) {
			t.Errorf("glyph %d advance %v (%v), want %d: /DW and the font must agree", gid, adv, err, glyphAdvance)
		}
	}
	segs, err := f.LoadGlyph(&buf, 1, fixed.I(unitsPerEm), nil)
	if err != nil || len(segs) != 0 {
		t.Errorf("glyph 1 has %d segments (%v), want none", len(segs), err)
	}
	if segs, err := f.LoadGlyph(&buf, 0, fixed.I(unitsPerEm), nil); err != nil || len(segs) == 0 {
		t.Errorf(".notdef: %d segments (%v), want a box", len(segs), err)
	}
	if name, err := f.Name(&buf, sfnt.NameIDPostScript); err != nil || name != fontName {
		t.Errorf("PostScript name %q (%v), want %s", name, err, fontName)
	}
	var tags []string
	for i := range int(binary.BigEndian.Uint16(prog[4:])) {
		e := prog[12+16*i:]
		tag, sum := string(e[:4]), binary.BigEndian.Uint32(e[4:])
		off, n := binary.BigEndian.Uint32(e[8:]), binary.BigEndian.Uint32(e[12:])
		tags = append(tags, tag)
		if off%4 != 0 {
			t.Errorf("table %s at %d, not on a 4-byte boundary", tag, off)
		}
		if tag != "head" && ttChecksum(prog[off:off+(n+3)/4*4]) != sum {
			t.Errorf("table %s: checksum wrong", tag)
		}
		if tag == "OS/2" && n != 96 {
			t.Errorf("OS/2 is %d bytes, want 96 (version 4)", n)
		}
	}
	if got := strings.Join(tags, " "); got != "OS/2 cmap glyf head hhea hmtx loca maxp name post" {
		t.Errorf("tables %s", got)
	}
	if sum := ttChecksum(prog); sum != 0xB1B0AFBA {
		t.Errorf("whole-font checksum %#x, want 0xB1B0AFBA", sum)
	}
}

// The ToUnicode CMap maps every 16-bit code the text layer writes to itself in ranges that vary
// only their last byte, at most 100 to a block, as the CMap format requires.
func TestToUnicodeCMap(t *testing.T) {
	cm := identityToUnicode()
	if n := strings.Count(cm, "beginbfrange"); n != 3 {
		t.Errorf("%d bfrange blocks, want 3", n)
	}
	if strings.Contains(cm, "<D800>") || !strings.Contains(cm, "<0020> <00FF> <0020>") || !strings.Contains(cm, "<FF00> <FFFD> <FF00>") {
		t.Error("ranges missing or surrogates mapped")
	}
}
