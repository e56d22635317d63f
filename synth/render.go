package synth

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/gomediumitalic"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Hospital is the fictional hospital printed on every page.
const Hospital = "Example General Hospital (synthetic)"

// Banner is printed on every page so no one mistakes a page for a real record.
const Banner = "SYNTHETIC TEST RECORD — NOT A REAL PATIENT"

// LabelStyle is how the patient identifiers are laid out on a full page.
type LabelStyle int

// Label styles.
const (
	LabelInline        LabelStyle = iota // Patient: SURNAME, Given   MRN: …   DOB: …   Sex: F
	LabelAddressograph                   // boxed stamp: SURNAME, Given / MR# … / DOB …
	LabelNameBlock                       // Name: Given Surname / Med Rec #: … / Date of Birth: …
	LabelUnitNo                          // Unit No.: …   Name: SURNAME, Given / Birth Date: …
	LabelGrid                            // ruled table: a row of labels over a row of values
	LabelImprint                         // embossed-card imprint: unlabelled MRN / NAME / DOB lines in a corner
	LabelSticker                         // bordered patient sticker: unlabelled name / MRN / DOB lines
	LabelFooter                          // identifiers only in the footer line
	LabelTwoColumn                       // two columns of label: value lines at the same heights
	LabelLabMono                         // lab-system header: several fields to a monospace line
	LabelScript                          // printed labels, handwritten values
	labelStyles                          // count

	// classicLabels is the number of styles drawn when Options.Labels is empty: the four
	// of earlier versions, so the default output stays what it was.
	classicLabels = LabelGrid
)

// DateFormat is how dates are printed on a page.
type DateFormat int

// Date formats, shown for 1962-03-14.
const (
	DateUS    DateFormat = iota // 03/14/1962
	DateISO                     // 1962-03-14
	DateDMonY                   // 14-Mar-1962
	DateLong                    // March 14, 1962
	dateFormats
)

// Page kinds in Truth.
const (
	KindFull         = "full"         // MRN, name and DOB printed
	KindContinuation = "continuation" // clinical text only, no identifiers
	KindNameDOB      = "name_dob"     // name and DOB printed, no MRN
	KindWrongMRN     = "wrong_mrn"    // name and DOB right, the MRN one digit slip off
	KindNotInEMPI    = "not_in_empi"  // full identifiers of a patient left out of the EMPI
	KindNearTwin     = "near_twin"    // full identifiers of one of two EMPI twins (same surname, DOB, address)
)

// PageSpec says what one page shows and how it is scanned.
type PageSpec struct {
	Person        *Person // Printed is what appears on the page, empty fields left out; nil only for continuations
	DocType       string  // a chartscan.DocType* constant
	DateOfService string  // YYYY-MM-DD
	Label         LabelStyle
	DateFormat    DateFormat
	Continuation  bool // no identifiers on the page, only clinical text
	PageNumber    int  // the page's number in its document; 0 means 1
	PageCount     int  // pages in the document, for the numbering styles with a total
	Numbering     PageNumbering
	NumberAtTop   bool    // page number at the header's right instead of the footer's
	Extras        Extras  // distractors printed near the identifiers; zero prints none
	Skew          float64 // degrees, counter-clockwise
	Noise         float64 // share of pixels turned to salt or pepper, 0..1
	Rotate        int     // 0, 90, 180 or 270: clockwise rotation of the scanned image
	Seed          int64   // picks the clinical text and the noise
}

// faceKinds names the fonts by one letter, in the order of fonts.
const faceKinds = "rbmMiI" // regular, bold, mono, mono bold, italic, medium italic

var fonts = sync.OnceValue(func() [len(faceKinds)]*opentype.Font {
	var out [len(faceKinds)]*opentype.Font
	for i, ttf := range [][]byte{goregular.TTF, gobold.TTF, gomono.TTF, gomonobold.TTF, goitalic.TTF, gomediumitalic.TTF} {
		f, err := opentype.Parse(ttf)
		if err != nil {
			panic("synth: parse embedded go font: " + err.Error()) // cannot happen: the fonts are compiled in
		}
		out[i] = f
	}
	return out
})

// canvas draws text on a page image; lengths are in points, converted at dpi.
type canvas struct {
	img   *image.Gray
	dpi   float64
	faces map[string]font.Face
}

func newCanvas(img *image.Gray, dpi int) *canvas {
	return &canvas{img: img, dpi: float64(dpi), faces: map[string]font.Face{}}
}

func (c *canvas) close() {
	for _, f := range c.faces {
		f.Close()
	}
}

// face returns the face of a kind in faceKinds (r regular, b bold, m mono, M mono bold,
// i italic, I medium italic) at size points.
func (c *canvas) face(kind byte, size float64) font.Face {
	key := fmt.Sprintf("%c%g", kind, size)
	if f, ok := c.faces[key]; ok {
		return f
	}
	ff := fonts()
	f := ff[strings.IndexByte(faceKinds, kind)]
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: c.dpi, Hinting: font.HintingFull})
	if err != nil {
		panic("synth: new face: " + err.Error()) // only fails on bad options, which are constants here
	}
	c.faces[key] = face
	return face
}

func (c *canvas) px(pt float64) int { return int(pt*c.dpi/72 + 0.5) }

// width returns the width of s in points.
func (c *canvas) width(f font.Face, s string) float64 {
	return float64(font.MeasureString(f, s)) / 64 * 72 / c.dpi
}

// text draws s with its baseline at (x, y) points.
func (c *canvas) text(f font.Face, x, y float64, s string) {
	d := font.Drawer{Dst: c.img, Src: image.Black, Face: f,
		Dot: fixed.Point26_6{X: fixed.I(c.px(x)), Y: fixed.I(c.px(y))}}
	d.DrawString(s)
}

// rect draws the outline of a rectangle in points with a line of w points.
func (c *canvas) rect(x0, y0, x1, y1, w float64) {
	lw := max(1, c.px(w))
	X0, Y0, X1, Y1 := c.px(x0), c.px(y0), c.px(x1), c.px(y1)
	for _, r := range []image.Rectangle{
		image.Rect(X0, Y0, X1, Y0+lw), image.Rect(X0, Y1-lw, X1, Y1),
		image.Rect(X0, Y0, X0+lw, Y1), image.Rect(X1-lw, Y0, X1, Y1),
	} {
		draw.Draw(c.img, r, image.Black, image.Point{}, draw.Src)
	}
}

func (c *canvas) rule(x0, x1, y, w float64) {
	draw.Draw(c.img, image.Rect(c.px(x0), c.px(y), c.px(x1), c.px(y)+max(1, c.px(w))), image.Black, image.Point{}, draw.Src)
}

// wrap splits s into lines no wider than w points.
func (c *canvas) wrap(f font.Face, s string, w float64) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		try := word
		if line != "" {
			try = line + " " + word
		}
		if line != "" && c.width(f, try) > w {
			lines = append(lines, line)
			try = word
		}
		line = try
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// Page geometry in points (US letter).
const (
	pageW, pageH = 612.0, 792.0
	margin       = 54.0 // 0.75 in
	bodyPt       = 11.5
	labelPt      = 12.0
	lead         = 1.45 // line height as a multiple of the font size
)

// RenderPage draws the page spec describes on a US-letter page at dpi and applies the
// scanner effects (skew, grey background, noise, rotation). Rotated pages are landscape.
func RenderPage(spec PageSpec, dpi int) *image.Gray {
	w, h := int(pageW*float64(dpi)/72+0.5), int(pageH*float64(dpi)/72+0.5)
	img := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	c := newCanvas(img, dpi)
	defer c.close()
	rng := rand.New(rand.NewPCG(uint64(spec.Seed), 0x70616765)) // "page"

	right := pageW - margin
	y := margin + 18
	c.text(c.face('b', 18), margin, y, Hospital)
	y += 18
	c.text(c.face('r', 11), margin, y, "12 Example Avenue, Sampletown   Tel (555) 555-0142")
	y += 12
	bf := c.face('b', 12)
	bw := c.width(bf, Banner)
	c.rect(margin, y, margin+bw+16, y+24, 1.2)
	c.text(bf, margin+8, y+16.5, Banner)
	y += 24 + 10
	c.rule(margin, right, y, 1.5)
	y += 30

	title := titles[spec.DocType]
	if title == "" {
		title = "CLINICAL DOCUMENT"
	}
	if spec.Continuation {
		title += " (continued)"
	}
	c.text(c.face('b', 16), margin, y, title)
	y += 16

	identifying := !spec.Continuation && spec.Person != nil
	switch {
	case identifying && spec.Label < classicLabels:
		y = drawLabel(c, spec, y+8)
		y = drawServiceDate(c, spec, y+labelPt*lead)
	case identifying:
		y = drawLayout(c, spec, y)
	}
	y += 10
	c.rule(margin, right, y, 0.8)
	y += 24

	body := c.face('r', bodyPt)
	head := c.face('b', bodyPt)
	mono := c.face('m', 10.5)
	bottom := pageH - margin - 36
	for _, s := range clinicalText(spec.DocType, spec.Continuation, rng) {
		if y > bottom {
			break
		}
		c.text(head, margin, y, s.heading+":")
		y += bodyPt * lead
		for _, p := range s.paras {
			lines := []string{p}
			f := mono
			if !s.mono {
				lines, f = c.wrap(body, p, right-margin), body
			}
			for _, l := range lines {
				if y > bottom {
					break
				}
				c.text(f, margin, y, l)
				y += bodyPt * lead
			}
		}
		y += bodyPt * 0.6
	}

	foot := c.face('r', 11)
	fy := pageH - margin
	c.rule(margin, right, fy-16, 0.6)
	pageLabel := spec.numberText()
	if spec.NumberAtTop {
		f := c.face('r', 10)
		c.text(f, right-c.width(f, pageLabel), margin+4, pageLabel)
		pageLabel = ""
	}
	if identifying && spec.Label == LabelFooter {
		drawFooterLine(c, spec, fy, pageLabel)
	} else {
		c.text(foot, margin, fy, Hospital+" — synthetic")
		c.text(foot, right-c.width(foot, pageLabel), fy, pageLabel)
	}

	return scan(img, spec, rng)
}

// drawServiceDate draws the date of service line with its baseline at y and returns y.
func drawServiceDate(c *canvas, spec PageSpec, y float64) float64 {
	lb := c.face('b', labelPt)
	c.text(lb, margin, y, "Date of Service:")
	c.text(c.face('r', labelPt), margin+c.width(lb, "Date of Service:")+6, y, formatDate(spec.DateOfService, spec.DateFormat))
	return y
}

// drawLabel draws the patient label in spec.Label's style with its top at y points and
// returns the baseline of its last line.
func drawLabel(c *canvas, spec PageSpec, y float64) float64 {
	p := spec.Person.Printed
	dob := formatDate(p.BirthDate, spec.DateFormat)
	sexLetter := map[string]string{"male": "M", "female": "F", "other": "X"}[p.Sex]
	if sexLetter == "" {
		sexLetter = "U"
	}
	sexWord := map[string]string{"M": "Male", "F": "Female", "X": "Other", "U": "Unknown"}[sexLetter]
	surnameFirst := strings.ToUpper(p.Family)
	if p.Given != "" {
		if surnameFirst != "" {
			surnameFirst += ", "
		}
		surnameFirst += p.Given
	}
	givenFirst := strings.TrimSpace(p.Given + " " + p.Family)
	lf := c.face('r', labelPt)
	lb := c.face('b', labelPt)
	step := labelPt * lead
	y += labelPt

	// fields draws label/value pairs on one line, wrapping to the next when too wide.
	fields := func(y float64, kv ...string) float64 {
		x := margin
		for i := 0; i < len(kv); i += 2 {
			w := c.width(lb, kv[i]) + 6 + c.width(lf, kv[i+1])
			if x > margin && x+w > pageW-margin {
				x, y = margin, y+step
			}
			c.text(lb, x, y, kv[i])
			c.text(lf, x+c.width(lb, kv[i])+6, y, kv[i+1])
			x += w + 30
		}
		return y
	}

	// rows draws lines of label/value pairs, leaving out pairs with no value and lines
	// with no pairs, so a record with a missing field prints what it has.
	rows := func(y float64, lines ...[]string) float64 {
		drawn := false
		for _, kv := range lines {
			var keep []string
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] != "" {
					keep = append(keep, kv[i], kv[i+1])
				}
			}
			if len(keep) == 0 {
				continue
			}
			if drawn {
				y += step
			}
			y, drawn = fields(y, keep...), true
		}
		return y
	}

	// Extras add lines only when set, so pages without them look as they always did.
	e := spec.Extras
	switch spec.Label {
	case LabelAddressograph:
		m := c.face('m', 13)
		var lines []string
		if surnameFirst != "" {
			lines = append(lines, surnameFirst)
		}
		if p.MRN != "" {
			lines = append(lines, "MR# "+p.MRN)
		}
		if dob != "" {
			lines = append(lines, "DOB "+dob+"   "+sexLetter)
		} else {
			lines = append(lines, "SEX "+sexLetter)
		}
		if e.Account != "" {
			lines = append(lines, "ACCT "+e.Account)
		}
		wmax := 0.0
		for _, l := range lines {
			wmax = max(wmax, c.width(m, l))
		}
		mstep := 13 * 1.4
		c.rect(margin, y-labelPt-4, margin+wmax+24, y-labelPt+float64(len(lines))*mstep+8, 1.5)
		for i, l := range lines {
			c.text(m, margin+12, y+float64(i)*mstep, l)
		}
		return y + float64(len(lines)-1)*mstep + 16
	case LabelNameBlock:
		return rows(y, []string{"Name:", givenFirst}, []string{"Med Rec #:", p.MRN},
			[]string{"Date of Birth:", dob, "Sex:", sexWord},
			[]string{"Attending Physician:", doctor(e.Attending, docTitle), "Phone:", e.Phone})
	case LabelUnitNo:
		return rows(y, []string{"Unit No.:", p.MRN, "Name:", surnameFirst}, []string{"Birth Date:", dob, "Sex:", sexLetter},
			[]string{"Visit No.:", e.Visit, "Ward:", e.Location})
	}
	return rows(y, []string{"Patient:", surnameFirst, "MRN:", p.MRN, "DOB:", dob, "Sex:", sexLetter},
		[]string{"Attending:", doctor(e.Attending, docTitle), "Acct #:", e.Account})
}

// formatDate prints an ISO date in format f; anything that is not a date is printed as is.
func formatDate(iso string, f DateFormat) string {
	t, err := time.Parse(time.DateOnly, iso)
	if err != nil {
		return iso
	}
	switch f {
	case DateISO:
		return t.Format("2006-01-02")
	case DateDMonY:
		return t.Format("02-Jan-2006")
	case DateLong:
		return t.Format("January 2, 2006")
	}
	return t.Format("01/02/2006")
}

// grey is the scanner's paper colour: white paper never scans as pure white.
var grey = color.Gray{Y: 238}
