package ocr

// #include "prep.h"
import "C"

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/otiai10/gosseract/v2"

	"github.com/chartscan/chartscan"
)

// Engine reads page images with Tesseract. It keeps one long-lived slot per worker slot —
// a Tesseract instance is costly to start and must never be used by two goroutines at
// once — and hands a free one to each Read. A slot holds the gosseract client that reads
// words and a small Tesseract of its own for orientation detection (OSD), which gosseract
// does not expose.
type Engine struct {
	slots chan *slot
	lang  string
	opt   Options
}

type slot struct {
	tess *gosseract.Client
	osd  *C.TessBaseAPI
}

func (s *slot) close() {
	if s == nil {
		return
	}
	if s.tess != nil {
		s.tess.Close()
	}
	freeOSD(s.osd)
}

// NewEngine returns an engine with slots Tesseract instances for language lang ("eng")
// and the default options. Instances start lazily, on the first Read that needs one. Set
// OMP_THREAD_LIMIT=1 in the environment before the process starts so each instance uses
// one thread: concurrency comes from slots.
func NewEngine(slots int, lang string) *Engine {
	return NewEngineOptions(slots, lang, Options{})
}

// NewEngineOptions is NewEngine with options; zero fields take their defaults.
func NewEngineOptions(slots int, lang string, o Options) *Engine {
	e := &Engine{slots: make(chan *slot, slots), lang: lang, opt: o.withDefaults()}
	for range slots {
		e.slots <- nil
	}
	return e
}

// Close frees every instance. Reads must have finished.
func (e *Engine) Close() {
	for range cap(e.slots) {
		(<-e.slots).close()
	}
}

// Result is what chartscan read on a page.
//
// Word boxes are in the pixels of the image OCR read: Image when it is set (the page was
// turned, straightened or rescaled; store it and show it to reviewers), otherwise the
// page image as given. Width, Height and DPI describe that image either way.
type Result struct {
	Words      []chartscan.Word
	Text       string  // the words as lines, in reading order
	Confidence float64 // mean word confidence, 0–100; 0 when no words

	// LowConfidence is the share of words under confidence 60, 0–1.
	LowConfidence float64
	// Quality rates the read, 0–100: the mean word confidence times the share of words
	// at 60 or more; 0 for a page without words. A clean page scores 85–95, a poor scan
	// under 50, noise near 0. The worker compares it with its configured floor.
	Quality float64
	// LittleText marks a page with few confidently read words (a photo, handwriting, a
	// drawing): its text must not be relied on.
	LittleText bool

	// Blank marks a near-empty page (Options.BlankInk); OCR was skipped and Words is
	// empty.
	Blank bool
	Ink   float64 // share of dark pixels in the page's central area, 0–1

	// Rotation is how far the page was turned clockwise to make it upright: 0, 90, 180
	// or 270 degrees. RotationConf is Tesseract's orientation confidence (0 when OSD
	// found too little text; a clear page scores about 8–20).
	Rotation     int
	RotationConf float64
	// Skew is the page's measured skew in degrees after turning it upright; Deskewed
	// says it was corrected (over Options.DeskewMin).
	Skew     float64
	Deskewed bool

	// Image is the page as OCR read it, when that differs in geometry from the image
	// given to Read (PNG for a bilevel page, JPEG for a grey one: ImageType); nil when the
	// boxes fit the given image.
	Image              []byte
	ImageType          string
	Width, Height, DPI int

	// Barcodes found anywhere on the page, in Image's (or the given image's) pixels.
	Barcodes []Barcode

	// Stages is how long each step of the read took, by stage: decode (decode, rescale
	// and the blank check), orientation (OSD), deskew (finding and correcting skew),
	// encode (the upright copy, when one is made), barcodes and tesseract. The
	// worker exports them as chartscan_stage_seconds.
	Stages map[string]time.Duration
}

// Read prepares an encoded page image (PNG, JPEG, TIFF; any depth, colour or CMYK) of
// the given resolution — rescaled toward 300 dpi, checked for blankness, turned upright,
// deskewed — decodes its barcodes and reads it with Tesseract.
func (e *Engine) Read(ctx context.Context, img []byte, dpi int) (res Result, err error) {
	var s *slot
	select {
	case s = <-e.slots:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	defer func() {
		if r := recover(); r != nil {
			// An instance that panicked mid-call may be in any state: replace it.
			s.close()
			s = nil
			err = fmt.Errorf("tesseract: panic: %v", r)
		}
		e.slots <- s
	}()
	if s == nil {
		if s, err = e.newSlot(); err != nil {
			return res, err
		}
	}
	res.Stages = map[string]time.Duration{}
	mark := time.Now()
	lap := func(stage string) {
		now := time.Now()
		res.Stages[stage] += now.Sub(mark)
		mark = now
	}
	pg, err := normalize(img, dpi, e.opt)
	lap(StageDecode)
	if err != nil {
		return res, chartscan.Errorf(chartscan.EInvalid, "the page image is damaged or in a format chartscan cannot read")
	}
	defer pg.free()
	res.Blank, res.Ink = pg.blank, pg.ink
	var read Result
	if !pg.blank {
		if read, err = e.recognize(s, pg, lap); err != nil {
			return res, err
		}
	}
	res.Rotation, res.RotationConf, res.Skew, res.Deskewed = pg.rotation, pg.rotConf, pg.skew, pg.deskewed
	res.Width, res.Height = pg.img.size()
	res.DPI = pg.dpi
	if pg.changed {
		if res.Image, res.ImageType, err = pg.img.encodeUpright(); err != nil {
			return res, err
		}
		lap(StageEncode)
	}
	if pg.blank {
		return res, nil
	}
	res.Barcodes = DecodeBarcodes(pg.img.gray())
	lap(StageBarcodes)
	res.Words, res.Text, res.Confidence = read.Words, read.Text, read.Confidence
	res.LowConfidence, res.Quality, res.LittleText = read.LowConfidence, read.Quality, read.LittleText
	return res, ctx.Err()
}

// recognize straightens a page and reads it. Most pages are upright: the page is read as
// it lies, and only a read that looks wrong — poor, or of text running up or down the page
// — pays for orientation detection (OSD), a turn and a second read. OSD on every page cost
// about 60% of a read. lap times each stage.
func (e *Engine) recognize(s *slot, pg *page, lap func(stage string)) (Result, error) {
	if err := pg.deskew(e.opt); err != nil {
		return Result{}, err
	}
	lap(StageDeskew)
	read, err := e.tesseract(s, pg)
	if err != nil {
		return Result{}, err
	}
	lap(StageTesseract)
	if settled(read) {
		return read, nil
	}
	turned, err := pg.orient(s.osd, e.opt)
	lap(StageOrientation)
	if err != nil || !turned {
		return read, err
	}
	if err := pg.deskew(e.opt); err != nil {
		return Result{}, err
	}
	lap(StageDeskew)
	read, err = e.tesseract(s, pg)
	lap(StageTesseract)
	return read, err
}

// tesseract reads the page's image as it is now.
func (e *Engine) tesseract(s *slot, pg *page) (Result, error) {
	// The image goes to Tesseract as it is in memory. An encoded round trip cost time
	// and, through PNM, failed on some pages: Leptonica's P4 reader swallows a first data
	// byte that looks like whitespace, and gosseract then read an empty result (SIGSEGV).
	if err := s.tess.SetPix(unsafe.Pointer(pg.img.p)); err != nil {
		return Result{}, fmt.Errorf("tesseract image: %w", err)
	}
	s.tess.SetVariable("user_defined_dpi", strconv.Itoa(pg.dpi))
	boxes, err := s.tess.GetBoundingBoxesVerbose()
	if err != nil {
		return Result{}, fmt.Errorf("tesseract: %w", err)
	}
	return resultFromBoxes(boxes, e.opt), nil
}

// settled reports whether a read of a page as it lies can stand without orientation
// detection: it reads well (quality 70 or more: an upright clean page scores 85–95, one
// upside down or on its side under 25) and its text runs across the page. Tesseract reads
// a page turned a quarter well enough, but sideways: its words' boxes are taller than
// wide, and the page's layout, the boxes and the image a reviewer sees would all be
// sideways.
func settled(r Result) bool {
	if r.Quality < 70 || r.LittleText {
		return false
	}
	long, tall := 0, 0
	for _, w := range r.Words {
		if utf8.RuneCountInString(w.Text) < 3 {
			continue
		}
		long++
		if w.Box.Y1-w.Box.Y0 > w.Box.X1-w.Box.X0 {
			tall++
		}
	}
	return long > 0 && tall*4 < long
}

// The stages of a read, as Result.Stages names them.
const (
	StageDecode      = "decode"
	StageOrientation = "orientation"
	StageDeskew      = "deskew"
	StageEncode      = "encode"
	StageBarcodes    = "barcodes"
	StageTesseract   = "tesseract"
)

func (e *Engine) newSlot() (*slot, error) {
	c := gosseract.NewClient()
	if err := c.SetLanguage(e.lang); err != nil {
		c.Close()
		return nil, fmt.Errorf("tesseract language: %w", err)
	}
	// The page is turned upright before OCR, so plain automatic segmentation (mode 3)
	// reads it; mode 1 would run orientation detection a second time.
	c.SetVariable("tessedit_pageseg_mode", strconv.Itoa(int(gosseract.PSM_AUTO)))
	osd, err := newOSD()
	if err != nil {
		c.Close()
		return nil, err
	}
	return &slot{tess: c, osd: osd}, nil
}

func resultFromBoxes(boxes []gosseract.BoundingBox, o Options) Result {
	var res Result
	sum, low, sure := 0.0, 0, 0
	for _, b := range boxes {
		t := strings.TrimSpace(b.Word)
		if t == "" {
			continue
		}
		res.Words = append(res.Words, chartscan.Word{
			Text:  t,
			Conf:  b.Confidence,
			Box:   chartscan.Box{X0: b.Box.Min.X, Y0: b.Box.Min.Y, X1: b.Box.Max.X, Y1: b.Box.Max.Y},
			Block: b.BlockNum,
			// Tesseract numbers lines within a paragraph; a page-wide line key keeps
			// lines of different paragraphs apart.
			Line: b.ParNum*1000 + b.LineNum,
		})
		sum += b.Confidence
		if b.Confidence < 60 {
			low++
		} else if alnum(t) >= 2 {
			sure++
		}
	}
	if n := len(res.Words); n > 0 {
		res.Confidence = sum / float64(n)
		res.LowConfidence = float64(low) / float64(n)
		res.Quality = res.Confidence * (1 - res.LowConfidence)
	}
	res.LittleText = sure < o.LittleTextWords
	res.Text = Text(res.Words)
	return res
}

func alnum(s string) int {
	n := 0
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			n++
		}
	}
	return n
}

// Text lays words out as lines in Tesseract's reading order: blocks separated by a blank
// line, words of a line by spaces.
func Text(words []chartscan.Word) string {
	ws := make([]chartscan.Word, len(words))
	copy(ws, words)
	sort.SliceStable(ws, func(i, j int) bool {
		if ws[i].Block != ws[j].Block {
			return ws[i].Block < ws[j].Block
		}
		return ws[i].Line < ws[j].Line
	})
	var sb strings.Builder
	for i, w := range ws {
		if i > 0 {
			switch {
			case ws[i-1].Block != w.Block:
				sb.WriteString("\n\n")
			case ws[i-1].Line != w.Line:
				sb.WriteByte('\n')
			default:
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(w.Text)
	}
	return sb.String()
}
