package ocr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// lazyPDF reads a PDF's objects from the file one at a time, when a page needs them.
// pdfcpu's Read loads every object and every stream of a file before the first page can
// be looked at — the whole file and more stays in memory (a 500-page scan of 200 MB held
// 200 MB and more until its last page was split). lazyPDF reads the cross-reference
// sections itself (tables, streams, hybrids, the /Prev chain) and hands every object to
// pdfcpu's own parser and filters at the offset the sections give; a page's streams are
// read when the page is split and let go after it. Anything it does not expect — an
// encrypted file, a damaged cross-reference section, an object that is not where the
// section says — is an error, and the file is then split by pdfcpu's reader as a whole,
// which repairs what can be repaired.
type lazyPDF struct {
	ctx     *model.Context
	f       *os.File
	size    int64
	offsets map[int]int64        // object number → file offset (uncompressed objects)
	gens    map[int]int          // object number → generation, where not 0 (uncompressed objects)
	inStm   map[int][2]int       // object number → object stream's number, index in it
	cache   map[int]types.Object // parsed objects other than streams (dictionaries, arrays…)
	stm     map[int]*objStm      // object streams read so far
	trailer types.Dict
}

// objStm is one decoded object stream: the text of each object in it by index.
type objStm struct {
	content []byte
	starts  []int
	numbers []int
}

var errNotLazy = errors.New("not a file the lazy reader reads")

// openLazyPDF reads the cross-reference sections of the PDF f.
func openLazyPDF(f *os.File) (*lazyPDF, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err := model.NewContext(f, conf)
	if err != nil {
		return nil, err
	}
	p := &lazyPDF{ctx: ctx, f: f, size: st.Size(), offsets: map[int]int64{}, gens: map[int]int{}, inStm: map[int][2]int{},
		cache: map[int]types.Object{}, stm: map[int]*objStm{}}
	tail := make([]byte, min(p.size, 2048))
	if _, err := f.ReadAt(tail, p.size-int64(len(tail))); err != nil {
		return nil, err
	}
	i := bytes.LastIndex(tail, []byte("startxref"))
	if i < 0 {
		return nil, errNotLazy
	}
	fields := strings.Fields(string(tail[i+len("startxref"):]))
	if len(fields) == 0 {
		return nil, errNotLazy
	}
	off, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return nil, errNotLazy
	}
	seen := map[int64]bool{}
	for off > 0 {
		if seen[off] || off >= p.size || len(seen) > 1000 {
			return nil, errNotLazy
		}
		seen[off] = true
		trailer, err := p.section(off)
		if err != nil {
			return nil, err
		}
		if p.trailer == nil {
			p.trailer = trailer
		}
		if trailer.IndirectRefEntry("Encrypt") != nil || trailer["Encrypt"] != nil {
			return nil, errNotLazy
		}
		// A hybrid file's xref stream holds the objects its table leaves out; it comes
		// before the table's /Prev.
		if x := trailer.IntEntry("XRefStm"); x != nil {
			if _, err := p.section(int64(*x)); err != nil {
				return nil, err
			}
		}
		off = 0
		if prev := trailer.Int64Entry("Prev"); prev != nil {
			off = *prev
		}
	}
	if p.trailer.IndirectRefEntry("Root") == nil {
		return nil, errNotLazy
	}
	return p, nil
}

// section reads the cross-reference section at off — a table and its trailer or an xref
// stream — into the maps, newer sections first (an object already known keeps its
// entry), and returns the trailer (a stream's dictionary is its trailer).
func (p *lazyPDF) section(off int64) (types.Dict, error) {
	head := make([]byte, 32)
	n, _ := p.f.ReadAt(head, off)
	if bytes.HasPrefix(bytes.TrimLeft(head[:n], " \r\n\t"), []byte("xref")) {
		return p.table(off)
	}
	return p.xrefStream(off)
}

// table reads a classic cross-reference table and its trailer dictionary.
func (p *lazyPDF) table(off int64) (types.Dict, error) {
	if _, err := p.f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	r := &lineReader{f: p.f, buf: make([]byte, 0, 64<<10)}
	if line := strings.TrimSpace(r.line()); line != "xref" {
		return nil, errNotLazy
	}
	for {
		line := strings.TrimSpace(r.line())
		if strings.HasPrefix(line, "trailer") {
			rest := strings.TrimSpace(strings.TrimPrefix(line, "trailer"))
			// The trailer's dictionary: what follows, up to startxref (or the next table).
			text := rest + "\n" + r.until("startxref")
			o, err := model.ParseObject(&text)
			if err != nil {
				return nil, errNotLazy
			}
			d, ok := o.(types.Dict)
			if !ok {
				return nil, errNotLazy
			}
			return d, nil
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, errNotLazy
		}
		start, err1 := strconv.Atoi(f[0])
		count, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || start < 0 || count < 0 || count > 10_000_000 {
			return nil, errNotLazy
		}
		for i := range count {
			e := strings.Fields(r.line())
			if len(e) != 3 {
				return nil, errNotLazy
			}
			nr := start + i
			if _, known := p.offsets[nr]; known {
				continue
			}
			if _, known := p.inStm[nr]; known {
				continue
			}
			o, err := strconv.ParseInt(e[0], 10, 64)
			gen, err2 := strconv.Atoi(e[1])
			if err != nil || err2 != nil {
				return nil, errNotLazy
			}
			switch e[2] {
			case "n":
				if o <= 0 || o >= p.size {
					return nil, errNotLazy
				}
				p.offsets[nr] = o
				if gen != 0 {
					p.gens[nr] = gen
				}
			case "f":
				// A free entry is not kept: references to a deleted object are a
				// broken file's, and some writers list hundreds of thousands of them.
			default:
				return nil, errNotLazy
			}
		}
	}
}

// xrefStream reads a cross-reference stream (PDF 1.5) at off.
func (p *lazyPDF) xrefStream(off int64) (types.Dict, error) {
	o, err := pdfcpu.ParseObjectWithContext(context.Background(), p.ctx, off, 0, 0)
	if err != nil {
		return nil, errNotLazy
	}
	sd, ok := o.(types.StreamDict)
	if !ok || sd.Type() == nil || *sd.Type() != "XRef" {
		return nil, errNotLazy
	}
	if err := p.load(&sd); err != nil {
		return nil, err
	}
	if err := sd.Decode(); err != nil {
		return nil, errNotLazy
	}
	xsd, err := model.ParseXRefStreamDictRelaxedWithLimits(&sd, p.ctx.Configuration.Limits)
	if err != nil {
		return nil, errNotLazy
	}
	w1, w2, w3 := xsd.W[0], xsd.W[1], xsd.W[2]
	n := w1 + w2 + w3
	if n == 0 || w1 > 8 || w2 > 8 || w3 > 8 || len(sd.Content) < n*len(xsd.Objects) {
		return nil, errNotLazy
	}
	field := func(b []byte) (v int64) {
		for _, c := range b {
			v = v<<8 | int64(c)
		}
		return v
	}
	for j, nr := range xsd.Objects {
		e := sd.Content[j*n : (j+1)*n]
		typ := int64(1)
		if w1 > 0 {
			typ = field(e[:w1])
		}
		c2, c3 := field(e[w1:w1+w2]), field(e[w1+w2:])
		if _, known := p.offsets[nr]; known {
			continue
		}
		if _, known := p.inStm[nr]; known {
			continue
		}
		switch typ {
		case 1:
			if c2 <= 0 || c2 >= p.size {
				return nil, errNotLazy
			}
			p.offsets[nr] = c2
			if c3 != 0 {
				p.gens[nr] = int(c3)
			}
		case 2:
			p.inStm[nr] = [2]int{int(c2), int(c3)}
		}
	}
	return sd.Dict, nil
}

// load reads a stream's encoded data, its length given directly or by an object.
func (p *lazyPDF) load(sd *types.StreamDict) error {
	if sd.Raw != nil {
		return nil
	}
	var n int64
	switch {
	case sd.StreamLength != nil:
		n = *sd.StreamLength
	case sd.StreamLengthObjNr != nil:
		o, err := p.object(*sd.StreamLengthObjNr)
		if err != nil {
			return err
		}
		i, ok := o.(types.Integer)
		if !ok {
			return errNotLazy
		}
		n = int64(i)
	default:
		return errNotLazy
	}
	if n < 0 || sd.StreamOffset <= 0 || sd.StreamOffset+n > p.size {
		return errNotLazy
	}
	sd.Raw = make([]byte, n)
	if _, err := p.f.ReadAt(sd.Raw, sd.StreamOffset); err != nil {
		return err
	}
	// The data must end where the file says: "endstream" follows (after an end of line).
	after := make([]byte, 32)
	m, _ := p.f.ReadAt(after, sd.StreamOffset+n)
	if !bytes.HasPrefix(bytes.TrimLeft(after[:m], "\r\n \t"), []byte("endstream")) {
		return errNotLazy
	}
	return nil
}

// object returns object nr, dereferenced from the file (a stream without its data: see
// stream). Dictionaries and other small objects are kept; streams are not.
func (p *lazyPDF) object(nr int) (types.Object, error) {
	if o, ok := p.cache[nr]; ok {
		return o, nil
	}
	var o types.Object
	if off, ok := p.offsets[nr]; ok {
		var err error
		if o, err = pdfcpu.ParseObjectWithContext(context.Background(), p.ctx, off, nr, p.gens[nr]); err != nil {
			return nil, fmt.Errorf("object %d: %w", nr, errNotLazy)
		}
	} else if at, ok := p.inStm[nr]; ok {
		s, err := p.objectStream(at[0])
		if err != nil {
			return nil, err
		}
		if at[1] < 0 || at[1] >= len(s.starts) || s.numbers[at[1]] != nr {
			return nil, errNotLazy
		}
		end := len(s.content)
		if at[1]+1 < len(s.starts) {
			end = s.starts[at[1]+1]
		}
		text := string(s.content[s.starts[at[1]]:end])
		if o, err = model.ParseObject(&text); err != nil {
			return nil, errNotLazy
		}
	} else {
		return nil, nil // not in any section: null (7.3.10)
	}
	if _, isStream := o.(types.StreamDict); !isStream {
		p.cache[nr] = o
	}
	return o, nil
}

// objectStream decodes object stream nr.
func (p *lazyPDF) objectStream(nr int) (*objStm, error) {
	if s, ok := p.stm[nr]; ok {
		return s, nil
	}
	if _, ok := p.offsets[nr]; !ok { // an object stream is never inside another
		return nil, errNotLazy
	}
	sd, err := p.stream(*types.NewIndirectRef(nr, p.gens[nr]))
	if err != nil {
		return nil, err
	}
	if err := sd.Decode(); err != nil {
		return nil, errNotLazy
	}
	count, first := sd.IntEntry("N"), sd.IntEntry("First")
	if count == nil || first == nil || *first < 0 || *first > len(sd.Content) || *count < 0 {
		return nil, errNotLazy
	}
	prolog := strings.Fields(strings.ReplaceAll(string(sd.Content[:*first]), "\x00", " "))
	if len(prolog) != 2**count {
		return nil, errNotLazy
	}
	s := &objStm{content: sd.Content}
	for i := 0; i < len(prolog); i += 2 {
		n, err1 := strconv.Atoi(prolog[i])
		at, err2 := strconv.Atoi(prolog[i+1])
		if err1 != nil || err2 != nil || at < 0 || *first+at > len(sd.Content) || (len(s.starts) > 0 && *first+at < s.starts[len(s.starts)-1]) {
			return nil, errNotLazy
		}
		s.numbers = append(s.numbers, n)
		s.starts = append(s.starts, *first+at)
	}
	if len(p.stm) > 8 { // a page's objects sit in a few streams; keep the memory bounded
		clear(p.stm)
	}
	p.stm[nr] = s
	return s, nil
}

// resolve dereferences o if it is an indirect reference.
func (p *lazyPDF) resolve(o types.Object) (types.Object, error) {
	for range 32 {
		ir, ok := o.(types.IndirectRef)
		if !ok {
			return o, nil
		}
		var err error
		if o, err = p.object(int(ir.ObjectNumber)); err != nil {
			return nil, err
		}
	}
	return nil, errNotLazy
}

func (p *lazyPDF) dict(o types.Object) (types.Dict, error) {
	o, err := p.resolve(o)
	if err != nil {
		return nil, err
	}
	switch d := o.(type) {
	case types.Dict:
		return d, nil
	case nil:
		return nil, nil
	}
	return nil, errNotLazy
}

// stream returns the stream o refers to with its encoded data.
func (p *lazyPDF) stream(o types.Object) (*types.StreamDict, error) {
	o, err := p.resolve(o)
	if err != nil {
		return nil, err
	}
	sd, ok := o.(types.StreamDict)
	if !ok {
		return nil, errNotLazy
	}
	if err := p.load(&sd); err != nil {
		return nil, err
	}
	return &sd, nil
}

// lazyPage is what the split needs of one page: its media box, rotation and
// resources (inherited through the page tree where the page has none of its own).
type lazyPage struct {
	dict      types.Dict
	resources types.Dict
	box       [4]float64
	rotate    int
}

// pages walks the page tree in order.
func (p *lazyPDF) pages() ([]lazyPage, error) {
	root, err := p.dict(p.trailer["Root"])
	if err != nil || root == nil {
		return nil, errNotLazy
	}
	var out []lazyPage
	var walk func(o types.Object, inherited lazyPage, hasBox bool, depth int) error
	walk = func(o types.Object, inh lazyPage, hasBox bool, depth int) error {
		if depth > 64 || len(out) > 1_000_000 {
			return errNotLazy
		}
		d, err := p.dict(o)
		if err != nil || d == nil {
			return errNotLazy
		}
		if r, ok := d["Resources"]; ok {
			if inh.resources, err = p.dict(r); err != nil {
				return err
			}
		}
		if b, ok := d["MediaBox"]; ok {
			nb, err := p.box(b)
			if err != nil {
				return err
			}
			inh.box, hasBox = *nb, true
		}
		if r, ok := d["Rotate"]; ok {
			r, err := p.resolve(r)
			if err != nil {
				return err
			}
			i, ok := r.(types.Integer)
			if !ok {
				return errNotLazy
			}
			inh.rotate = ((int(i) % 360) + 360) % 360
		}
		if t := d.Type(); t != nil && *t == "Page" {
			if !hasBox {
				return errNotLazy
			}
			inh.dict = d
			out = append(out, inh)
			return nil
		}
		kids, err := p.resolve(d["Kids"])
		if err != nil {
			return err
		}
		a, ok := kids.(types.Array)
		if !ok {
			return errNotLazy
		}
		for _, k := range a {
			if err := walk(k, inh, hasBox, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(root["Pages"], lazyPage{}, false, 0)
}

// box reads a rectangle.
func (p *lazyPDF) box(o types.Object) (*[4]float64, error) {
	o, err := p.resolve(o)
	if err != nil {
		return nil, err
	}
	a, ok := o.(types.Array)
	if !ok || len(a) != 4 {
		return nil, errNotLazy
	}
	var b [4]float64
	for i, v := range a {
		v, err := p.resolve(v)
		if err != nil {
			return nil, err
		}
		switch n := v.(type) {
		case types.Integer:
			b[i] = float64(n)
		case types.Float:
			b[i] = float64(n)
		default:
			return nil, errNotLazy
		}
	}
	return &b, nil
}

// size is the page's width and height in points, turned by its /Rotate, as pdfcpu's
// PageDims gives them.
func (lp lazyPage) size() (w, h float64) {
	w, h = lp.box[2]-lp.box[0], lp.box[3]-lp.box[1]
	if w < 0 {
		w = -w
	}
	if h < 0 {
		h = -h
	}
	if lp.rotate%180 != 0 {
		w, h = h, w
	}
	return w, h
}

// scanImage is the page's one image when the page is a scan (see scanImage in
// split.go): no text operator in its content, exactly one XObject, an image, that
// rawScanImage hands over. ok false means the page is drawn by pdftoppm instead.
func (p *lazyPDF) scanImage(lp lazyPage) (data []byte, k Kind, ok bool, err error) {
	contents, err := p.resolve(lp.dict["Contents"])
	if err != nil {
		return nil, "", false, err
	}
	var parts types.Array
	switch c := contents.(type) {
	case types.Array:
		parts = c
	case types.StreamDict, nil:
		parts = types.Array{lp.dict["Contents"]}
	default:
		return nil, "", false, errNotLazy
	}
	for _, c := range parts {
		if c == nil {
			continue
		}
		sd, err := p.stream(c)
		if err != nil {
			return nil, "", false, err
		}
		if err := sd.Decode(); err != nil {
			return nil, "", false, nil
		}
		if textOperator.Match(sd.Content) {
			return nil, "", false, nil
		}
	}
	xobjs, err := p.dict(lp.resources["XObject"])
	if err != nil || len(xobjs) != 1 {
		return nil, "", false, err
	}
	for _, ref := range xobjs {
		sd, err := p.stream(ref)
		if err != nil {
			return nil, "", false, err
		}
		if st := sd.Subtype(); st == nil || *st != "Image" {
			return nil, "", false, nil
		}
		// Entries given by reference (a colour space, a length…) are read here; the
		// fast path takes only direct ones.
		for _, key := range []string{"Width", "Height", "BitsPerComponent", "ColorSpace", "ImageMask"} {
			if v, ok := sd.Dict[key]; ok {
				if sd.Dict[key], err = p.resolve(v); err != nil {
					return nil, "", false, err
				}
			}
		}
		b, kind, _, _, ok := rawScanImage(sd)
		return b, kind, ok, nil
	}
	return nil, "", false, nil
}

// lineReader reads a cross-reference table line by line from the current file position.
type lineReader struct {
	f   *os.File
	buf []byte
	eof bool
}

func (r *lineReader) fill() {
	if r.eof {
		return
	}
	chunk := make([]byte, 32<<10)
	n, err := r.f.Read(chunk)
	r.buf = append(r.buf, chunk[:n]...)
	if err != nil || n == 0 {
		r.eof = true
	}
}

// line returns the next line, ended by CR, LF or both; "" at the end of the file.
func (r *lineReader) line() string {
	for {
		if i := bytes.IndexAny(r.buf, "\r\n"); i >= 0 {
			j := i + 1
			for j < len(r.buf) && (r.buf[j] == '\r' || r.buf[j] == '\n') && j < i+2 {
				j++
			}
			if j == len(r.buf) && !r.eof {
				r.fill() // a CR at the buffer's end may have its LF in the next read
				continue
			}
			l := string(r.buf[:i])
			r.buf = r.buf[j:]
			return l
		}
		if r.eof {
			l := string(r.buf)
			r.buf = r.buf[:0]
			return l
		}
		r.fill()
	}
}

// until returns the text up to marker (or 64 KiB of it, or the end of the file).
func (r *lineReader) until(marker string) string {
	for !r.eof && len(r.buf) < 64<<10 && !bytes.Contains(r.buf, []byte(marker)) {
		r.fill()
	}
	if i := bytes.Index(r.buf, []byte(marker)); i >= 0 {
		return string(r.buf[:i])
	}
	return string(r.buf[:min(len(r.buf), 64<<10)])
}
