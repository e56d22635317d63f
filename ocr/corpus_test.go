package ocr

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The public scans under testdata/corpus (see its MANIFEST.tsv) are read with the real
// Tesseract; one engine is shared by the tests.
const corpus = "../testdata/corpus/"

var (
	engineOnce sync.Once
	engine     *Engine
)

func testEngine() *Engine {
	engineOnce.Do(func() { engine = NewEngine(2, "eng") })
	return engine
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readPages splits a scan and reads every page.
func readPages(t testing.TB, path string) ([]PageImage, []Result) {
	t.Helper()
	var pages []PageImage
	if _, err := Split(context.Background(), path, DefaultLimits, func(p PageImage) error {
		pages = append(pages, p)
		return nil
	}); err != nil {
		t.Fatalf("split %s: %v", path, err)
	}
	var res []Result
	for _, p := range pages {
		r, err := testEngine().Read(context.Background(), p.Data, p.DPI)
		if err != nil {
			t.Fatalf("read %s page %d: %v", path, p.Number, err)
		}
		res = append(res, r)
	}
	return pages, res
}

func checkBoxes(t *testing.T, name string, r Result) {
	t.Helper()
	for _, w := range r.Words {
		if w.Box.X0 < 0 || w.Box.Y0 < 0 || w.Box.X1 > r.Width || w.Box.Y1 > r.Height || w.Box.X1 <= w.Box.X0 {
			t.Fatalf("%s: word box %+v outside the %dx%d image", name, w.Box, r.Width, r.Height)
		}
	}
}

func TestReadTurnsRotatedPagesUpright(t *testing.T) {
	gt := string(readFile(t, corpus+"tesseract-test/phototest.txt"))
	for _, tc := range []struct {
		file     string
		rotation int
	}{
		{"phototest.tif", 0},
		{"phototest-rotated-L.png", 90},
		{"phototest-rotated-R.png", 270},
		{"phototest-rotated-180.png", 180},
		{"phototestrot.tif", 90},
	} {
		_, res := readPages(t, corpus+"tesseract-test/"+tc.file)
		r := res[0]
		// An upright page reads well as it lies, so OSD does not run on it: confidence 0.
		if r.Rotation != tc.rotation || (tc.rotation != 0 && r.RotationConf < 5) {
			t.Errorf("%s: rotation %d (confidence %.1f), want %d", tc.file, r.Rotation, r.RotationConf, tc.rotation)
		}
		if c := cer(r.Text, gt); c > 0.02 {
			t.Errorf("%s: CER %.3f against the ground truth, want ≤ 0.02:\n%s", tc.file, c, r.Text)
		}
		// phototest is 200 dpi, read as it is (no rescaling above MinDPI): a turned page's
		// image is handed back upright, with the boxes in its pixels; an upright one's is not.
		if (r.Image == nil) != (tc.rotation == 0) || r.Width != 640 || r.Height != 480 || r.DPI != 200 {
			t.Errorf("%s: image %v bytes %dx%d at %d dpi, want the upright 640x480 image at 200 dpi, handed back if turned",
				tc.file, len(r.Image), r.Width, r.Height, r.DPI)
		}
		if r.Image != nil {
			cfg, _, err := image.DecodeConfig(bytes.NewReader(r.Image))
			if err != nil || cfg.Width != r.Width || cfg.Height != r.Height {
				t.Errorf("%s: Image is %+v (%v), want a %dx%d PNG", tc.file, cfg, err, r.Width, r.Height)
			}
		}
		checkBoxes(t, tc.file, r)
	}
}

// Plain `tesseract FILE -` (Tesseract 5.3, default mode 3) on the same files, measured on
// this machine with the bench's CER (make bench-ocr): the skewed pages must read at least
// as well.
var plainTesseractCER = map[string]float64{
	"derived/phototest_skew-7deg.png":  0.732,
	"derived/8087_054.3B_skew3deg.tif": 0.275,
}

func TestReadStraightensSkewedPages(t *testing.T) {
	for _, tc := range []struct {
		file, gt string
		skew     float64 // the angle that straightens it, degrees
	}{
		{"derived/phototest_skew-7deg.png", "tesseract-test/phototest.txt", 7},
		{"derived/8087_054.3B_skew3deg.tif", "tesseract-test/8087_054.3B.txt", -3},
	} {
		_, res := readPages(t, corpus+tc.file)
		r := res[0]
		if !r.Deskewed || r.Skew < tc.skew-0.5 || r.Skew > tc.skew+0.5 {
			t.Errorf("%s: skew %.2f (deskewed %v), want %.0f±0.5 corrected", tc.file, r.Skew, r.Deskewed, tc.skew)
		}
		c := cer(r.Text, string(readFile(t, corpus+tc.gt)))
		if plain := plainTesseractCER[tc.file]; c > plain+0.005 {
			t.Errorf("%s: CER %.3f, plain tesseract %.3f", tc.file, c, plain)
		}
		t.Logf("%s: CER %.3f (plain tesseract %.3f)", tc.file, c, plainTesseractCER[tc.file])
		checkBoxes(t, tc.file, r)
	}
}

// TestDecodeBarcodesOfTheCorpus reads zxing-cpp's own sample crops: among them a PDF417,
// a phone photo of a Data Matrix in perspective and a 100 px JPEG crop of a QR code cut
// to its edge (no quiet zone), which gozxing, used before zxing-cpp, could not read.
func TestDecodeBarcodesOfTheCorpus(t *testing.T) {
	barcodeFormats := map[string]string{"code128": "CODE_128", "code39": "CODE_39", "datamatrix": "DATA_MATRIX",
		"pdf417": "PDF_417", "qrcode": "QR_CODE"}
	files, _ := filepath.Glob(corpus + "zxing-barcodes/*")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".txt") {
			continue
		}
		n++
		want := string(readFile(t, strings.TrimSuffix(f, filepath.Ext(f))+".txt"))
		p, err := readPix(readFile(t, f))
		if err != nil {
			t.Fatal(f, err)
		}
		got := DecodeBarcodes(p.gray())
		p.free()
		var texts []string
		for _, b := range got {
			texts = append(texts, b.Text)
		}
		format := barcodeFormats[strings.Split(filepath.Base(f), "-")[0]]
		if len(got) != 1 || got[0].Text != want || got[0].Format != format {
			t.Errorf("%s: got %q (%+v), want %s %q", f, texts, got, format, want)
		}
	}
	if n != 19 {
		t.Errorf("%d barcode images, want 19", n)
	}
}

func TestSplitCountsCorpusPages(t *testing.T) {
	pages, err := splitAll(t, corpus+"ocrmypdf-publicdomain/multipage.pdf", DefaultLimits)
	if err != nil || len(pages) != 6 {
		t.Errorf("multipage.pdf: %d pages (%v), want 6", len(pages), err)
	}
	dir := t.TempDir()
	tif := filepath.Join(dir, "three.tif")
	if b, err := exec.Command("tiffcp", corpus+"tesseract-test/phototest.tif", corpus+"tesseract-test/eurotext.tif",
		corpus+"derived/8087_054.3B_skew3deg.tif", tif).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp: %v %s", err, b)
	}
	got, err := splitAll(t, tif, DefaultLimits)
	want := []pageShape{{1, 640, 480, 200, "image/tiff", false}, {2, 1024, 800, 300, "image/tiff", false}, {3, 2732, 3432, 300, "image/tiff", false}}
	if diff := cmp.Diff(want, shapes(got)); err != nil || diff != "" {
		t.Errorf("three-page TIFF (%v) (-want +got):\n%s", err, diff)
	}
}

// pdfImage is one image XObject drawn at x, y (points) w×h on a page.
type pdfImage struct {
	dict       string // everything but /Length
	data       []byte
	x, y, w, h float64
}

// imagePDF writes a one-page PDF of images: the kinds of page scanners and fax servers
// write that ImageMagick (its PDF coder is disabled here) cannot make for us.
func imagePDF(wPt, hPt float64, imgs ...pdfImage) []byte {
	var content, xobj strings.Builder
	objs := []string{"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", "", ""}
	for i, im := range imgs {
		fmt.Fprintf(&content, "q %.2f 0 0 %.2f %.2f %.2f cm /Im%d Do Q\n", im.w, im.h, im.x, im.y, i)
		fmt.Fprintf(&xobj, "/Im%d %d 0 R ", i, 5+i)
		objs = append(objs, fmt.Sprintf("<< /Type /XObject /Subtype /Image %s /Length %d >>\nstream\n%s\nendstream", im.dict, len(im.data), im.data))
	}
	objs[2] = fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Contents 4 0 R /Resources << /XObject << %s>> >> >>", wPt, hPt, xobj.String())
	objs[3] = fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", content.Len(), content.String())
	return pdfFile("1.5", objs)
}

func flate(b []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

// TestReadEveryKindOfPDFPageImage makes one-page PDFs of phototest (640×480 at 200 dpi,
// 230.4×172.8 pt) in each image encoding and checks that each is split and read.
func TestReadEveryKindOfPDFPageImage(t *testing.T) {
	dir := t.TempDir()
	tool := func(name string, args ...string) {
		t.Helper()
		if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", name, err, b)
		}
	}
	src := corpus + "tesseract-test/phototest.tif"
	p, err := readPix(readFile(t, src))
	if err != nil {
		t.Fatal(err)
	}
	g := p.gray()
	p.free()
	const w, h = 640, 480
	pdfs := map[string][]byte{}
	// CCITT G4 and G3 (2-D), as a fax server or a bilevel scanner writes them, the G4 page
	// in 16-row strips too: tiff2pdf passes the fax data through.
	for _, c := range []struct{ name, comp, rows string }{{"g4", "g4", "0"}, {"g3", "g3:2d", "0"}, {"g4-strips", "g4", "16"}} {
		tif, pdf := filepath.Join(dir, c.name+".tif"), filepath.Join(dir, c.name+".pdf")
		tool("tiffcp", "-c", c.comp, "-r", c.rows, src, tif)
		tool("tiff2pdf", "-o", pdf, tif)
		pdfs[c.name] = readFile(t, pdf)
	}
	// CMYK, 8 bits, Flate.
	cmyk := make([]byte, 0, w*h*4)
	for _, v := range g.Pix {
		cmyk = append(cmyk, 0, 0, 0, 255-v)
	}
	pdfs["cmyk"] = imagePDF(230.4, 172.8, pdfImage{fmt.Sprintf("/Width %d /Height %d /ColorSpace /DeviceCMYK /BitsPerComponent 8 /Filter /FlateDecode", w, h), flate(cmyk), 0, 0, 230.4, 172.8})
	// 16-bit grey.
	g16 := make([]byte, w*h*2)
	for i, v := range g.Pix {
		binary.BigEndian.PutUint16(g16[2*i:], uint16(v)*257)
	}
	pdfs["grey16"] = imagePDF(230.4, 172.8, pdfImage{fmt.Sprintf("/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 16 /Filter /FlateDecode", w, h), flate(g16), 0, 0, 230.4, 172.8})
	// An image mask: 1 marks where the (default black) fill paints.
	stride := (w + 7) / 8
	mask := make([]byte, stride*h)
	for y := range h {
		for x := range w {
			if g.Pix[y*w+x] < 128 {
				mask[y*stride+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	pdfs["imagemask"] = imagePDF(230.4, 172.8, pdfImage{fmt.Sprintf("/Width %d /Height %d /ImageMask true /Decode [1 0] /BitsPerComponent 1 /Filter /FlateDecode", w, h), flate(mask), 0, 0, 230.4, 172.8})
	// A page in two horizontal strips, each its own image.
	top, bottom := g.Pix[:w*h/2], g.Pix[w*h/2:]
	sd := fmt.Sprintf("/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode", w, h/2)
	pdfs["two-strips"] = imagePDF(230.4, 172.8, pdfImage{sd, flate(top), 0, 86.4, 230.4, 86.4}, pdfImage{sd, flate(bottom), 0, 0, 230.4, 86.4})
	// JPEG 2000, which pdfcpu cannot hand over: pdftoppm must draw the page. (JBIG2 pages
	// have their own test, TestReadJBIG2PDFPage.)
	jp2 := filepath.Join(dir, "p.jp2")
	tool("convert", src, jp2)
	pdfs["jpx"] = imagePDF(230.4, 172.8, pdfImage{fmt.Sprintf("/Width %d /Height %d /Filter /JPXDecode", w, h), readFile(t, jp2), 0, 0, 230.4, 172.8})

	gt := string(readFile(t, corpus+"tesseract-test/phototest.txt"))
	for name, b := range pdfs {
		path := filepath.Join(dir, name+"-page.pdf")
		os.WriteFile(path, b, 0o644)
		pages, res := readPages(t, path)
		if len(pages) != 1 {
			t.Errorf("%s: %d pages, want 1", name, len(pages))
			continue
		}
		if c := cer(res[0].Text, gt); c > 0.03 || res[0].Blank {
			t.Errorf("%s (%s, rasterized %v): CER %.3f, blank %v:\n%s", name, pages[0].Type, pages[0].Rasterized, c, res[0].Blank, res[0].Text)
		}
		t.Logf("%s: %s %dx%d at %d dpi, rasterized %v", name, pages[0].Type, pages[0].Width, pages[0].Height, pages[0].DPI, pages[0].Rasterized)
	}
}

// letterPage is a white 300 dpi letter page.
func letterPage() *image.Gray { return grey(2550, 3300) }

func pngOf(t testing.TB, g image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestBlankPages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// A duplex back: off-white paper with sensor noise, a black scanner edge, two punch
	// holes in the margin and a few specks of dust.
	back := letterPage()
	for i := range back.Pix {
		back.Pix[i] = byte(225 + rng.IntN(20))
	}
	fill := func(g *image.Gray, r image.Rectangle, v byte) {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				g.Pix[y*g.Stride+x] = v
			}
		}
	}
	fill(back, image.Rect(0, 0, 40, 3300), 10)
	fill(back, image.Rect(60, 800, 130, 870), 20)
	fill(back, image.Rect(60, 2400, 130, 2470), 20)
	for range 30 {
		x, y := 200+rng.IntN(2100), 200+rng.IntN(2900)
		fill(back, image.Rect(x, y, x+3, y+3), 40)
	}
	// A nearly empty page that is not blank: one short line of text ("Page 2" size),
	// cut from phototest.
	line := letterPage()
	p, _ := readPix(readFile(t, corpus+"tesseract-test/phototest.tif"))
	ph := p.gray()
	p.free()
	top := 0 // phototest's first line of text
	for y := 0; y < ph.Rect.Dy() && top == 0; y++ {
		for _, v := range ph.Pix[y*ph.Stride : y*ph.Stride+ph.Rect.Dx()] {
			if v < 128 {
				top = y
				break
			}
		}
	}
	for y := top; y < top+40; y++ {
		copy(line.Pix[(1600+y)*line.Stride+1000:], ph.Pix[y*ph.Stride+30:y*ph.Stride+330])
	}
	for _, tc := range []struct {
		name  string
		png   []byte
		blank bool
	}{
		{"white", pngOf(t, letterPage()), true},
		{"duplex back", pngOf(t, back), true},
		{"one line", pngOf(t, line), false},
		{"phototest", readFile(t, corpus+"tesseract-test/phototest.tif"), false},
	} {
		got, err := IsBlank(tc.png, 300)
		if err != nil || got != tc.blank {
			t.Errorf("%s: IsBlank = %v, %v; want %v", tc.name, got, err, tc.blank)
		}
		r, err := testEngine().Read(context.Background(), tc.png, 300)
		if err != nil || r.Blank != tc.blank || (r.Blank && len(r.Words) != 0) {
			t.Errorf("%s: Read blank %v with %d words (%v), want blank %v", tc.name, r.Blank, len(r.Words), err, tc.blank)
		}
	}
}

func TestNoisePageIsPoorQuality(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	g := grey(1275, 1650) // 150 dpi letter
	for i := range g.Pix {
		g.Pix[i] = byte(rng.IntN(256))
	}
	r, err := testEngine().Read(context.Background(), pngOf(t, g), 150)
	if err != nil {
		t.Fatal(err)
	}
	if r.Blank || r.Quality > 30 || !r.LittleText {
		t.Errorf("noise: blank %v, quality %.1f, little text %v, %d words at %.0f; want poor quality and little text",
			r.Blank, r.Quality, r.LittleText, len(r.Words), r.Confidence)
	}
	// A clean page, for contrast.
	_, res := readPages(t, corpus+"tesseract-test/phototest.tif")
	if q := res[0].Quality; q < 85 || res[0].LittleText || res[0].LowConfidence > 0.05 {
		t.Errorf("phototest: quality %.1f, low-confidence share %.2f, little text %v; want a clean read", q, res[0].LowConfidence, res[0].LittleText)
	}
}

func TestCoversheetRoundTrip(t *testing.T) {
	c := CoversheetInfo{MRN: "A0012345", Family: "Müller-Ibáñez", Given: "José (Pepe)", BirthDate: "1961-04-02", DocType: "LAB", DOS: "2024-11-03"}
	var pdf bytes.Buffer
	if err := Coversheet(&pdf, c); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ToUpper(pdf.Bytes()), []byte("SYNTHETIC")) {
		t.Error("the cover sheet says SYNTHETIC")
	}
	path := writeFile(t, "cover.pdf", pdf.Bytes())
	pages, res := readPages(t, path)
	if len(pages) != 1 || !pages[0].Rasterized {
		t.Fatalf("cover sheet split into %+v, want one rasterized page", shapes(pages))
	}
	r := res[0]
	want := CoverInfo{MRN: "A0012345", DocType: "LAB", DOS: "2024-11-03"}
	got, ok := CoverSheet(r.Barcodes, "")
	if !ok || got != want {
		t.Errorf("cover sheet barcodes %+v: got %+v %v, want %+v", r.Barcodes, got, ok, want)
	}
	formats := map[string]bool{}
	for _, b := range r.Barcodes {
		formats[b.Format] = true
		if b.Box.X1 <= b.Box.X0 || b.Box.X1 > r.Width || b.Box.Y1 > r.Height {
			t.Errorf("%s box %+v outside the %dx%d page", b.Format, b.Box, r.Width, r.Height)
		}
	}
	if !formats["CODE_128"] || !formats["QR_CODE"] {
		t.Errorf("formats %v, want CODE_128 and QR_CODE", formats)
	}
	// (Tesseract's eng model drops the accents it reads: "Muller-lbanez, Jose".)
	for _, s := range []string{"Patient: Mu", "(Pepe)", "Date of birth: 1961-04-02", "MRN: A0012345"} {
		if !strings.Contains(r.Text, s) {
			t.Errorf("cover sheet text lacks %q:\n%s", s, r.Text)
		}
	}
	if err := Coversheet(&pdf, CoversheetInfo{MRN: "X;Y"}); err == nil {
		t.Error("an MRN with ';' was accepted")
	}
}

func TestParseCoverPayload(t *testing.T) {
	for _, tc := range []struct {
		s, prefix string
		want      CoverInfo
		ok        bool
	}{
		{"CHARTSCAN:MRN=123", "", CoverInfo{MRN: "123"}, true},
		{" chartscan:MRN=123;DOC=LAB;DOS=2024-01-31\n", "", CoverInfo{"123", "LAB", "2024-01-31"}, true},
		{"CHARTSCAN:DOC=LAB;MRN=9;V=2", "", CoverInfo{MRN: "9", DocType: "LAB"}, true},
		{"CHARTSCAN:DOC=LAB", "", CoverInfo{}, false},
		{"CHARTSCAN:MRN=1;DOS=31/01/2024", "", CoverInfo{}, false},
		{"CHARTSCAN:MRN", "", CoverInfo{}, false},
		{"MRN=123", "", CoverInfo{}, false},
		{"ACME|MRN=55", "ACME|", CoverInfo{MRN: "55"}, true},
		{"CHARTSCAN:MRN=55", "ACME|", CoverInfo{}, false},
	} {
		got, ok := ParseCoverPayload(tc.s, tc.prefix)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseCoverPayload(%q, %q) = %+v, %v; want %+v, %v", tc.s, tc.prefix, got, ok, tc.want, tc.ok)
		}
	}
	bs := []Barcode{{Format: "CODE_39", Text: "PATCH-T"}}
	if !IsSeparator(bs, "") || IsSeparator(bs, "SEP") || !IsSeparator([]Barcode{{Text: "sep"}}, "SEP") {
		t.Error("IsSeparator")
	}
}
