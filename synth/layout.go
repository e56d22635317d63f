package synth

import (
	"fmt"
	"image"
	"image/draw"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// layoutNames are the names of the label styles, in LabelStyle order.
var layoutNames = [labelStyles]string{
	LabelInline:        "inline",
	LabelAddressograph: "addressograph",
	LabelNameBlock:     "nameblock",
	LabelUnitNo:        "unitno",
	LabelGrid:          "grid",
	LabelImprint:       "imprint",
	LabelSticker:       "sticker",
	LabelFooter:        "footer",
	LabelTwoColumn:     "twocol",
	LabelLabMono:       "labmono",
	LabelScript:        "script",
}

// LayoutNames returns the names of every label style (layout family), in LabelStyle order.
func LayoutNames() []string {
	return append([]string(nil), layoutNames[:]...)
}

// ParseLayout returns the label style named name, one of LayoutNames; an unknown name is
// an ErrOptions.
func ParseLayout(name string) (LabelStyle, error) {
	for l, n := range layoutNames {
		if strings.EqualFold(strings.TrimSpace(name), n) {
			return LabelStyle(l), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown layout %q", ErrOptions, name)
}

// String returns the layout family's name.
func (l LabelStyle) String() string {
	if l < 0 || l >= labelStyles {
		return "LabelStyle(" + strconv.Itoa(int(l)) + ")"
	}
	return layoutNames[l]
}

// layoutRNG returns the random stream of a page's layout choices (label wording, column
// order, placement, ink): a stream of its own, so the clinical text and the scan effects
// drawn from the page's main stream stay what they were.
func layoutRNG(spec PageSpec) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(spec.Seed), 0x6c61796f7574)) // "layout"
}

// ident is a page's printed identity in the forms the layouts print it.
type ident struct {
	mrn, family, given string
	dob                string // in the page's date format
	sex, sexWord       string // M, Male …; U, Unknown when not known
	age                string // whole years at the date of service; "" when unknown
}

func newIdent(spec PageSpec) ident {
	p := spec.Person.Printed
	id := ident{mrn: p.MRN, family: p.Family, given: p.Given, dob: formatDate(p.BirthDate, spec.DateFormat)}
	id.sex = map[string]string{"male": "M", "female": "F", "other": "X"}[p.Sex]
	if id.sex == "" {
		id.sex = "U"
	}
	id.sexWord = map[string]string{"M": "Male", "F": "Female", "X": "Other", "U": "Unknown"}[id.sex]
	born, err1 := time.Parse(time.DateOnly, p.BirthDate)
	seen, err2 := time.Parse(time.DateOnly, spec.DateOfService)
	if err1 == nil && err2 == nil && !seen.Before(born) {
		years := seen.Year() - born.Year()
		if seen.YearDay() < born.YearDay() {
			years--
		}
		id.age = strconv.Itoa(years)
	}
	return id
}

// surnameFirst returns "DOE, Jane", or what of it the record has.
func (id ident) surnameFirst() string {
	return joinName(strings.ToUpper(id.family), ", ", id.given)
}

// givenFirst returns "Jane Doe".
func (id ident) givenFirst() string {
	return joinName(id.given, " ", id.family)
}

// caps returns "DOE JANE", or "DOE, JANE" with comma.
func (id ident) caps(comma bool) string {
	sep := " "
	if comma {
		sep = ", "
	}
	return strings.ToUpper(joinName(id.family, sep, id.given))
}

// date returns the birth date in format f; the long format, odd on a label, prints as US.
func (id ident) date(spec PageSpec, f DateFormat) string {
	if f == DateLong {
		f = DateUS
	}
	return formatDate(spec.Person.Printed.BirthDate, f)
}

func joinName(a, sep, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + sep + b
}

// oneOf returns one of choices, evenly.
func oneOf[T any](rng *rand.Rand, choices ...T) T { return choices[rng.IntN(len(choices))] }

// nonEmpty returns the strings that are not empty.
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// drawLayout draws the identifiers of a page in one of the families after the classic
// four, below the title whose line ends at y, then the date of service, and returns the
// baseline of the last line drawn.
func drawLayout(c *canvas, spec PageSpec, y float64) float64 {
	rng := layoutRNG(spec)
	id := newIdent(spec)
	switch spec.Label {
	case LabelGrid:
		return drawGrid(c, spec, id, rng, y)
	case LabelImprint:
		return drawImprint(c, spec, id, rng, y)
	case LabelSticker:
		return drawSticker(c, spec, id, rng, y)
	case LabelTwoColumn:
		return drawTwoColumn(c, spec, id, rng, y)
	case LabelLabMono:
		return drawLabMono(c, spec, id, rng, y)
	case LabelScript:
		return drawScript(c, spec, id, rng, y)
	}
	// LabelFooter: nothing in the header but the date of service.
	return drawServiceDate(c, spec, y+8+labelPt)
}

// gridCell is one column of a grid form: its printed label and the value under it.
type gridCell struct{ label, value string }

// drawGrid draws a ruled table: a row of labels over a row of values, sometimes a second
// pair of rows for the visit.
func drawGrid(c *canvas, spec PageSpec, id ident, rng *rand.Rand, y float64) float64 {
	e := spec.Extras
	name := oneOf(rng, id.surnameFirst(), id.surnameFirst(), id.givenFirst())
	cells := []gridCell{
		{oneOf(rng, "Patient Name", "Name", "Patient"), name},
		{oneOf(rng, "MRN", "Med Rec #", "MR Number"), id.mrn},
		{oneOf(rng, "DOB", "Birth Date", "Date of Birth"), id.dob},
		{oneOf(rng, "Sex", "Sex", "Gender"), oneOf(rng, id.sex, id.sexWord)},
	}
	if e.Visit != "" {
		cells = append(cells, gridCell{oneOf(rng, "Visit", "Visit #", "Encounter"), e.Visit})
	}
	switch rng.IntN(4) {
	case 1: // MRN first
		cells[0], cells[1] = cells[1], cells[0]
	case 2: // name, birth date, sex, then the numbers
		cells = append([]gridCell{cells[0], cells[2], cells[3], cells[1]}, cells[4:]...)
	}
	hand := rng.Float64() < 0.25 // filled in by hand on a pre-printed grid
	top := y + 6
	bottom := c.gridRows(top, cells, hand, rng)
	if e.Attending != "" && rng.Float64() < 0.6 {
		second := []gridCell{
			{oneOf(rng, "Attending", "Attending Physician"), doctor(e.Attending, oneOf(rng, docTitle, docMD))},
			{oneOf(rng, "Location", "Unit", "Ward"), e.Location},
			{oneOf(rng, "Admit Date", "Admitted"), formatDate(e.Admitted, spec.DateFormat)},
		}
		if rng.IntN(2) == 0 {
			second = append(second, gridCell{"Phone", e.Phone})
		}
		bottom = c.gridRows(bottom, second, hand, rng)
	}
	return drawServiceDate(c, spec, bottom+labelPt*lead)
}

// gridRows draws a label row over a value row across the text width with its top at y
// and returns its bottom. Columns get their content's width, the rest shared out.
func (c *canvas) gridRows(y float64, cells []gridCell, hand bool, rng *rand.Rand) float64 {
	// Text keeps well clear of the rules, as on most printed forms (and Tesseract
	// drops words that touch them).
	const labelH, valueH, pad = 16.0, 24.0, 10.0
	lf := c.face('b', 8.5)
	size := 11.0
	var widths []float64
	var total float64
	for size >= 7 {
		vf := c.face('r', size)
		widths, total = widths[:0], 0
		for _, cl := range cells {
			w := max(c.width(lf, cl.label), c.width(vf, cl.value)*1.1) + 2*pad
			widths = append(widths, w)
			total += w
		}
		if total <= pageW-2*margin {
			break
		}
		size -= 0.5
	}
	extra := (pageW - 2*margin - total) / float64(len(cells))
	x := margin
	vf := c.face('r', size)
	for i, cl := range cells {
		w := widths[i] + max(extra, 0)
		if i > 0 {
			c.vline(x, y, y+labelH+valueH, 0.5)
		}
		c.text(lf, x+pad, y+labelH-5, cl.label)
		if hand {
			c.wobbly(oneOf(rng, byte('i'), 'I'), size+1.5, x+pad, y+labelH+valueH-8, cl.value, rng, handwriting)
		} else {
			c.text(vf, x+pad, y+labelH+valueH-8, cl.value)
		}
		x += w
	}
	c.rect(margin, y, x, y+labelH+valueH, 1)
	c.rule(margin, x, y+labelH, 0.5)
	return y + labelH + valueH
}

// drawImprint draws an addressograph imprint: the unlabelled lines an embossed patient
// card leaves through carbon, unevenly inked, in the top right corner or under the title.
func drawImprint(c *canvas, spec PageSpec, id ident, rng *rand.Rand, y float64) float64 {
	e := spec.Extras
	dob := strings.ToUpper(id.date(spec, spec.DateFormat))
	if dob != "" && rng.IntN(2) == 0 {
		dob += " " + id.sex
		if id.age != "" {
			dob += " " + id.age + "Y"
		}
	}
	name := id.caps(rng.IntN(2) == 0)
	lines := nonEmpty(id.mrn, name, dob)
	if id.mrn != "" && rng.IntN(4) == 0 { // some cards emboss the name first
		lines = nonEmpty(name, id.mrn, dob)
	}
	if dr := doctor(e.Attending, docCaps); dr != "" && rng.IntN(4) > 0 {
		lines = append(lines, dr)
	}
	if e.Location != "" && rng.IntN(2) == 0 {
		lines = append(lines, strings.TrimSpace(e.Location+"  "+oneOf(rng, "", e.Visit)))
	}

	const size, step = 11.0, 13.5
	f := c.face('M', size)
	w := 0.0
	for _, l := range lines {
		w = max(w, c.width(f, l))
	}
	h := float64(len(lines)) * step
	right := rng.Float64() < 0.7
	x, top := margin+rng.Float64()*12, y+8
	if right {
		x, top = pageW-margin-w-6-rng.Float64()*14, y-34+rng.Float64()*6
		// The form's printed corner marks for the imprint, which it never quite fills.
		c.corners(x-8-rng.Float64()*4, top-6, pageW-margin, top+h+8, 10, 0.6)
	}
	for i, l := range lines {
		// Each line of the card sits a little off; each character a little more.
		c.wobbly('M', size, x+(rng.Float64()*2-1)*1.2, top+size+float64(i)*step, l, rng, embossed)
	}
	c.fade(x-2, top, x+w+4, top+h+4, rng)
	if right {
		return max(drawServiceDate(c, spec, y+8+labelPt), top+h)
	}
	return drawServiceDate(c, spec, top+h+labelPt*lead)
}

// drawSticker draws a printed patient sticker, stuck on a little askew: a bordered label
// of unlabelled lines, name first.
func drawSticker(c *canvas, spec PageSpec, id ident, rng *rand.Rand, y float64) float64 {
	e := spec.Extras
	mrn := id.mrn
	if mrn != "" {
		mrn = oneOf(rng, "MRN-"+mrn, mrn, "MRN "+mrn)
	}
	dob := id.date(spec, spec.DateFormat)
	if dob != "" {
		dob += oneOf(rng, "  ", "   ") + id.sex
		if id.age != "" && rng.IntN(2) == 0 {
			dob += "  " + id.age + "Y"
		}
	} else {
		dob = "SEX " + id.sex
	}
	lines := nonEmpty(id.surnameFirst(), mrn, dob)
	if e.Account != "" {
		lines = append(lines, oneOf(rng, "ACCT ", "ACCT# ", "FIN ")+e.Account)
	}
	if e.Location != "" && rng.IntN(2) == 0 {
		lines = append(lines, e.Location+"   "+formatDate(e.Admitted, DateUS))
	}

	const size, step, pad = 11.0, 13.5, 9.0
	bold, reg := c.face('b', size), c.face('r', size)
	w := c.width(bold, lines[0])
	for _, l := range lines[1:] {
		w = max(w, c.width(reg, l))
	}
	sw, sh := w+2*pad, float64(len(lines))*step+pad
	// Draw the sticker on an image of its own, turn it, and lay it on the page.
	sub := image.NewGray(image.Rect(0, 0, c.px(sw+8), c.px(sh+8)))
	draw.Draw(sub, sub.Bounds(), image.White, image.Point{}, draw.Src)
	sc := newCanvas(sub, int(c.dpi))
	defer sc.close()
	sc.rect(4, 4, 4+sw, 4+sh, 0.9)
	for i, l := range lines {
		f := sc.face('r', size)
		if i == 0 {
			f = sc.face('b', size)
		}
		sc.text(f, 4+pad, 4+pad/2+size+float64(i)*step, l)
	}
	turned := skew(sub, (rng.Float64()*2-1)*1.8)

	x, top := margin-4+rng.Float64()*10, y+4
	if rng.Float64() < 0.6 {
		x, top = pageW-margin-sw-4-rng.Float64()*16, y-36+rng.Float64()*8
	}
	c.darken(turned, c.px(x), c.px(top))
	if x > pageW/2 {
		return max(drawServiceDate(c, spec, y+8+labelPt), top+sh+4)
	}
	return drawServiceDate(c, spec, top+sh+8+labelPt*lead)
}

// drawFooterLine draws the identifying page's footer of the footer family: the patient's
// identifiers on one line with the page number, shrunk to fit the width.
func drawFooterLine(c *canvas, spec PageSpec, y float64, pageLabel string) {
	rng := layoutRNG(spec)
	rng.Uint64() // not the draws drawLayout starts with
	id := newIdent(spec)
	var mrn, dob string
	if id.mrn != "" {
		mrn = oneOf(rng, "MRN ", "MRN: ", "MR# ") + id.mrn
	}
	if id.dob != "" {
		dob = oneOf(rng, "DOB ", "DOB: ", "Born ") + id.dob
	}
	parts := nonEmpty(oneOf(rng, id.surnameFirst(), id.caps(true)), mrn, dob)
	if e := spec.Extras; e.Printed != "" && rng.IntN(2) == 0 {
		day, clock, _ := strings.Cut(e.Printed, " ")
		if spec.DateFormat != DateLong {
			day = formatDate(day, spec.DateFormat)
		}
		parts = append(parts, strings.TrimSpace("Printed "+day+" "+clock))
	}
	parts = append(parts, nonEmpty(pageLabel)...)
	line := strings.Join(parts, oneOf(rng, "  |  ", "   ", "  -  "))
	size := 10.0
	for size > 6 && c.width(c.face('r', size), line) > pageW-2*margin {
		size -= 0.5
	}
	c.text(c.face('r', size), margin, y, line)
}

// drawTwoColumn draws two columns of label: value lines at the same heights, patient on
// the left and visit on the right, so one line of text holds fields of both.
func drawTwoColumn(c *canvas, spec PageSpec, id ident, rng *rand.Rand, y float64) float64 {
	e := spec.Extras
	left := [][2]string{
		{oneOf(rng, "Patient Name:", "Name:", "Patient:"), oneOf(rng, id.surnameFirst(), id.givenFirst())},
		{oneOf(rng, "DOB:", "Birth Date:", "Date of Birth:"), id.dob},
		{"Sex:", oneOf(rng, id.sex, id.sexWord)},
	}
	if e.Phone != "" && rng.IntN(2) == 0 {
		left[2] = [2]string{"Phone:", e.Phone}
	}
	right := [][2]string{
		{oneOf(rng, "MRN:", "Med Rec No:", "MR #:"), id.mrn},
		oneOf(rng, [2]string{"Visit #:", e.Visit}, [2]string{"Encounter #:", e.Visit}, [2]string{"Acct #:", e.Account}),
		{oneOf(rng, "Attending:", "Attending MD:", "Physician:"), doctor(e.Attending, docTitle)},
	}
	keep := func(kv [][2]string) [][2]string {
		var out [][2]string
		for _, p := range kv {
			if p[1] != "" {
				out = append(out, p)
			}
		}
		return out
	}
	left, right = keep(left), keep(right)
	const size = 11.5
	lb, lf := c.face('b', size), c.face('r', size)
	tab := func(kv [][2]string) (float64, float64) { // label column width, widest line
		lw, vw := 0.0, 0.0
		for _, p := range kv {
			lw, vw = max(lw, c.width(lb, p[0])), max(vw, c.width(lf, p[1]))
		}
		return lw + 8, lw + 8 + vw
	}
	ltab, lwide := tab(left)
	rtab, _ := tab(right)
	rx := max(pageW/2+10, margin+lwide+40)
	step := size * lead
	y += 8 + size
	n := max(len(left), len(right))
	for i := range n {
		if i < len(left) {
			c.text(lb, margin, y, left[i][0])
			c.text(lf, margin+ltab, y, left[i][1])
		}
		if i < len(right) {
			c.text(lb, rx, y, right[i][0])
			c.text(lf, rx+rtab, y, right[i][1])
		}
		if i < n-1 {
			y += step
		}
	}
	return drawServiceDate(c, spec, y+labelPt*lead)
}

// drawLabMono draws a lab system's header: monospace lines of several fields each, dates
// like 08-MAY-1978, then a dashed rule.
func drawLabMono(c *canvas, spec PageSpec, id ident, rng *rand.Rand, y float64) float64 {
	e := spec.Extras
	field := func(label, v string) string {
		if v == "" {
			return ""
		}
		return label + " " + v
	}
	var name string
	if n := id.caps(true); n != "" {
		name = fmt.Sprintf("%-*s", max(len(n)+3, 26), "NAME: "+n)
	}
	age := ""
	if id.age != "" {
		age = id.age + "Y"
	}
	dob := strings.ToUpper(formatDate(spec.Person.Printed.BirthDate, DateDMonY))
	lines := []string{
		strings.TrimSpace(name + strings.Join(nonEmpty(field("DOB:", dob), field("AGE:", age), field("SEX:", id.sex)), "   ")),
		strings.Join(nonEmpty(field("MRN:", id.mrn), field("ACCT:", e.Account), field("LOC:", e.Location)), "   "),
	}
	if e.Attending != "" {
		printed := ""
		if t, err := time.Parse("2006-01-02 15:04", e.Printed); err == nil {
			printed = strings.ToUpper(t.Format("02-Jan-2006 15:04"))
		}
		lines = append(lines, strings.Join(nonEmpty(field("ORD DR:", doctor(e.Attending, docSurname)),
			field(oneOf(rng, "RPT:", "PRINTED:"), printed)), "   "))
	}
	lines = nonEmpty(lines...)
	kind := oneOf(rng, byte('m'), 'M')
	size := 10.0
	for size > 6.5 {
		w := 0.0
		for _, l := range lines {
			w = max(w, c.width(c.face(kind, size), l))
		}
		if w <= pageW-2*margin {
			break
		}
		size -= 0.5
	}
	f := c.face(kind, size)
	step := size * 1.5
	y += 8
	for _, l := range lines {
		y += step
		c.text(f, margin, y, l)
	}
	y += step
	dashes := strings.Repeat("-", int((pageW-2*margin)/c.width(f, "-")))
	c.text(f, margin, y, dashes)
	return drawServiceDate(c, spec, y+labelPt*lead)
}

// drawScript draws a printed form whose values are written in by hand on its lines.
func drawScript(c *canvas, spec PageSpec, id ident, rng *rand.Rand, y float64) float64 {
	e := spec.Extras
	pen := oneOf(rng, byte('i'), 'I')
	hsize := 13.5 + rng.Float64()*1.5
	name := oneOf(rng, id.givenFirst(), id.surnameFirst(), joinName(id.given, " ", strings.ToUpper(id.family)))
	dob := id.dob
	if t, err := time.Parse(time.DateOnly, spec.Person.Printed.BirthDate); err == nil && rng.IntN(2) == 0 {
		dob = t.Format("1/2/2006") // as people write it
	}
	dr := ""
	if e.Attending != "" {
		_, family, _ := strings.Cut(e.Attending, " ")
		dr = oneOf(rng, "Dr ", "Dr. ") + family
	}
	type field struct {
		label, value string
		end          float64 // where the field's writing line ends, in points from the left
	}
	rows := [][]field{
		{{"Patient Name:", name, 372}, {"Date of Birth:", dob, pageW - margin}},
		{{oneOf(rng, "MRN:", "Hospital No:", "Med Rec #:"), id.mrn, 258}, {"Sex:", oneOf(rng, id.sex, id.sexWord), 366},
			{"Physician:", dr, pageW - margin}},
	}
	lf := c.face('r', 11)
	y += 10
	for _, row := range rows {
		y += 26
		x := margin
		for _, f := range row {
			c.text(lf, x, y, f.label)
			start := x + c.width(lf, f.label) + 4
			c.rule(start, f.end-10, y+2, 0.5)
			c.wobbly(pen, hsize, start+4+rng.Float64()*10, y-1.5, f.value, rng, handwriting)
			x = f.end
		}
	}
	return drawServiceDate(c, spec, y+labelPt*lead+4)
}

// wobble says how far hand-drawn text strays: size varies by up to size (a share), each
// glyph's baseline by rise points and its spacing by space points; slant is the largest
// drift of the baseline per point of width.
type wobble struct{ size, rise, space, slant float64 }

var (
	handwriting = wobble{size: 0.08, rise: 0.9, space: 0.5, slant: 0.02}
	embossed    = wobble{rise: 0.45, space: 0.25}
)

// wobbly draws s glyph by glyph with its baseline near (x, y), each glyph a little off
// in size, height and spacing, and returns where it ended.
func (c *canvas) wobbly(kind byte, size, x, y float64, s string, rng *rand.Rand, w wobble) float64 {
	slope := (rng.Float64()*2 - 1) * w.slant
	x0 := x
	for _, r := range s {
		sz := size
		if w.size > 0 {
			sz = math.Round(size*(1+(rng.Float64()*2-1)*w.size)*4) / 4 // a few faces, not one per glyph
		}
		f := c.face(kind, sz)
		g := string(r)
		c.text(f, x, y+(rng.Float64()*2-1)*w.rise+slope*(x-x0), g)
		x += c.width(f, g) + (rng.Float64()*2-1)*w.space
	}
	return x
}

// fade lightens the ink in a rectangle (points) unevenly, as an imprint's carbon takes
// it: a smooth swell across the stamp and a few pinholes.
func (c *canvas) fade(x0, y0, x1, y1 float64, rng *rand.Rand) {
	r := image.Rect(c.px(x0), c.px(y0), c.px(x1), c.px(y1)).Intersect(c.img.Bounds())
	kx := 2 * math.Pi / float64(c.px(60+rng.Float64()*80))
	ky := 2 * math.Pi / float64(c.px(20+rng.Float64()*30))
	px, py := rng.Float64()*2*math.Pi, rng.Float64()*2*math.Pi
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := c.img.Pix[y*c.img.Stride:]
		for x := r.Min.X; x < r.Max.X; x++ {
			v := row[x]
			if v == 255 {
				continue
			}
			f := 0.78 + 0.22*math.Sin(kx*float64(x)+px)*math.Cos(ky*float64(y)+py)
			if rng.IntN(30) == 0 {
				f *= 0.3
			}
			row[x] = uint8(255 - float64(255-v)*f + 0.5)
		}
	}
}

// darken lays src on the page with its top left at (x, y) pixels, keeping the darker
// of the two at each pixel, as ink on paper does.
func (c *canvas) darken(src *image.Gray, x, y int) {
	b := src.Bounds()
	for sy := range b.Dy() {
		dy := y + sy
		if dy < 0 || dy >= c.img.Bounds().Dy() {
			continue
		}
		for sx := range b.Dx() {
			dx := x + sx
			if dx < 0 || dx >= c.img.Bounds().Dx() {
				continue
			}
			i := dy*c.img.Stride + dx
			c.img.Pix[i] = min(c.img.Pix[i], src.Pix[sy*src.Stride+sx])
		}
	}
}

// vline draws a vertical line in points with a width of w points.
func (c *canvas) vline(x, y0, y1, w float64) {
	draw.Draw(c.img, image.Rect(c.px(x), c.px(y0), c.px(x)+max(1, c.px(w)), c.px(y1)), image.Black, image.Point{}, draw.Src)
}

// corners draws the four corner marks of a rectangle, each arm n points long.
func (c *canvas) corners(x0, y0, x1, y1, n, w float64) {
	for _, x := range []float64{x0, x1 - n} {
		c.rule(x, x+n, y0, w)
		c.rule(x, x+n, y1, w)
	}
	for _, x := range []float64{x0, x1 - w} {
		c.vline(x, y0, y0+n, w)
		c.vline(x, y1-n, y1, w)
	}
}
