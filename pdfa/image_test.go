package pdfa

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/tiff"

	"github.com/chartscan/chartscan"
)

// synthImage draws a test page: a gradient (colour or grey) with black blocks standing
// for text, or, bilevel, the blocks alone on white.
func synthImage(w, h int, colour bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{255, 255, 255, 255}
			if colour {
				c = color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) * 127 / (w + h)), 255}
			}
			if (y/12)%3 == 1 && (x/20)%4 != 3 && x > 10 && x < w-10 {
				c = color.RGBA{0, 0, 0, 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

func toGrey(img image.Image) *image.Gray {
	r := img.Bounds()
	white := image.NewRGBA(r)
	draw.Draw(white, r, image.White, image.Point{}, draw.Src)
	draw.Draw(white, r, img, r.Min, draw.Over)
	g := image.NewGray(r)
	draw.Draw(g, r, white, r.Min, draw.Src)
	return g
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// convert runs ImageMagick on src (written to a file) and returns the output file.
func convert(t testing.TB, src []byte, outName string, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.png")
	if err := os.WriteFile(in, src, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, outName)
	tool(t, "imagemagick", "convert", append(append([]string{in}, args...), out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type imageCase struct {
	name      string
	data      []byte
	typ       string
	want      image.Image // what the page must look like
	maxMean   float64     // mean grey difference allowed when rendered
	encoding  string      // pdfimages -list's enc column
	bpc, comp string      // pdfimages -list's bpc and color columns
}

// imageCases are the image encodings a stored page can have, each with how it must be
// embedded: as it is where PDF has the filter, decoded otherwise.
func imageCases(t *testing.T) []imageCase {
	const w, h = 300, 200
	colour := synthImage(w, h, true)
	bilevel := synthImage(w, h, false)
	grey := image.NewGray(colour.Rect)
	draw.Draw(grey, grey.Rect, colour, image.Point{}, draw.Src)
	grey16 := image.NewGray16(colour.Rect)
	draw.Draw(grey16, grey16.Rect, colour, image.Point{}, draw.Src)
	pal := make(color.Palette, 16)
	for i := range pal {
		pal[i] = color.RGBA{uint8(i * 17), uint8(255 - i*17), uint8(i * 8), 255}
	}
	paletted := image.NewPaletted(colour.Rect, pal)
	draw.Draw(paletted, paletted.Rect, colour, image.Point{}, draw.Src)
	alpha := image.NewNRGBA(colour.Rect)
	for y := range h {
		for x := range w {
			c := colour.RGBAAt(x, y)
			alpha.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, uint8(255 * x / w)})
		}
	}
	bilevelPNG := encodePNG(t, bilevel)
	g4 := convert(t, bilevelPNG, "g4.tif", "-type", "bilevel", "-compress", "Group4")
	g4black := convert(t, bilevelPNG, "g4b.tif", "-type", "bilevel", "-define", "quantum:polarity=min-is-black", "-compress", "Group4")
	var deflateTIFF bytes.Buffer
	if err := tiff.Encode(&deflateTIFF, grey, &tiff.Options{Compression: tiff.Deflate}); err != nil {
		t.Fatal(err)
	}
	zipWhite := convert(t, bilevelPNG, "zw.tif", "-type", "bilevel", "-depth", "1", "-define", "quantum:polarity=min-is-white", "-compress", "Zip")
	zipBlack := convert(t, bilevelPNG, "zb.tif", "-type", "bilevel", "-depth", "1", "-define", "quantum:polarity=min-is-black", "-compress", "Zip")
	zipPredictor := convert(t, encodePNG(t, grey), "zp.tif", "-compress", "Zip", "-define", "tiff:predictor=2")
	multiStrip := filepath.Join(t.TempDir(), "strips.tif")
	g4file := filepath.Join(t.TempDir(), "g4.tif")
	if err := os.WriteFile(g4file, g4, 0o600); err != nil {
		t.Fatal(err)
	}
	tool(t, "libtiff-tools", "tiffcp", "-c", "g4", "-r", "16", g4file, multiStrip)
	strips, err := os.ReadFile(multiStrip)
	if err != nil {
		t.Fatal(err)
	}
	g4blackFile, lsb, blackStrips := filepath.Join(t.TempDir(), "g4b.tif"), filepath.Join(t.TempDir(), "lsb.tif"), filepath.Join(t.TempDir(), "bs.tif")
	if err := os.WriteFile(g4blackFile, g4black, 0o600); err != nil {
		t.Fatal(err)
	}
	tool(t, "libtiff-tools", "tiffcp", "-c", "g4", "-f", "lsb2msb", g4file, lsb)
	tool(t, "libtiff-tools", "tiffcp", "-c", "g4", "-r", "7", g4blackFile, blackStrips)
	readFile := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	jpegGrey := encodeJPEG(t, grey)
	jpegRGB := encodeJPEG(t, colour)
	cmyk := convert(t, encodePNG(t, colour), "cmyk.jpg", "-colorspace", "CMYK", "-quality", "95")
	decoded := func(b []byte) image.Image {
		img, _, err := image.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	return []imageCase{
		{"png grey 8-bit", encodePNG(t, grey), "image/png", grey, 0.01, "image", "8", "gray"},
		{"png grey 16-bit", encodePNG(t, grey16), "image/png", grey, 0.6, "image", "16", "gray"},
		{"png rgb", encodePNG(t, colour), "image/png", colour, 0.01, "image", "8", "rgb"},
		{"png palette", encodePNG(t, paletted), "image/png", paletted, 0.01, "image", "4", "index"},
		{"png 1-bit palette", encodePNG(t, bilevelPaletted(bilevel)), "image/png", bilevel, 0.01, "image", "1", "index"},
		{"png alpha, flattened", encodePNG(t, alpha), "image/png", alpha, 1, "image", "8", "rgb"},
		{"png interlaced", convert(t, encodePNG(t, grey), "i.png", "-interlace", "PNG"), "image/png", grey, 0.01, "image", "8", "gray"},
		{"jpeg grey", jpegGrey, "image/jpeg", decoded(jpegGrey), 1.5, "jpeg", "8", "gray"},
		{"jpeg rgb", jpegRGB, "image/jpeg", decoded(jpegRGB), 2.5, "jpeg", "8", "rgb"},
		{"jpeg cmyk, converted", cmyk, "image/jpeg", decoded(cmyk), 0.01, "image", "8", "rgb"},
		{"tiff g4 min-is-white", g4, "image/tiff", bilevel, 0.01, "ccitt", "1", "gray"},
		{"tiff g4 min-is-black", g4black, "image/tiff", bilevel, 0.01, "ccitt", "1", "gray"},
		{"tiff g4 in strips, decoded", strips, "image/tiff", bilevel, 0.01, "image", "1", "gray"},
		{"tiff g4 min-is-black in strips, decoded", readFile(blackStrips), "image/tiff", bilevel, 0.01, "image", "1", "gray"},
		{"tiff g4 lsb-first, decoded", readFile(lsb), "image/tiff", bilevel, 0.01, "image", "1", "gray"},
		{"tiff deflate grey", deflateTIFF.Bytes(), "image/tiff", grey, 0.01, "image", "8", "gray"},
		{"tiff deflate bilevel min-is-white", zipWhite, "image/tiff", bilevel, 0.01, "image", "1", "gray"},
		{"tiff deflate bilevel min-is-black", zipBlack, "image/tiff", bilevel, 0.01, "image", "1", "gray"},
		{"tiff deflate with predictor, decoded", zipPredictor, "image/tiff", grey, 0.01, "image", "8", "gray"},
	}
}

func bilevelPaletted(img image.Image) *image.Paletted {
	p := image.NewPaletted(img.Bounds(), color.Palette{color.Black, color.White})
	draw.Draw(p, p.Rect, img, image.Point{}, draw.Src)
	return p
}

// Every stored image encoding becomes a page that looks like the image, with the
// encoding pdfimages reports (JPEG and G4 as scanned, PNG's data as it is), in a file
// that passes the PDF/A checks.
func TestImageEncodings(t *testing.T) {
	cases := imageCases(t)
	const dpi = 100
	pages := make([]Page, len(cases))
	for i, c := range cases {
		pages[i] = Page{Image: c.data, ImageType: c.typ, DPI: dpi, Words: []chartscan.Word{
			{Text: "case", Box: chartscan.Box{X0: 10, Y0: 10, X1: 60, Y1: 30}, Block: 1, Line: 1},
			{Text: strings.ReplaceAll(c.name, " ", "_"), Box: chartscan.Box{X0: 70, Y0: 10, X1: 290, Y1: 30}, Block: 1, Line: 1},
		}}
	}
	path := writePDF(t, Meta{Title: "image encodings", Created: time.Unix(1e9, 0)}, pages)
	checkPDFA(t, path)
	if problems, status, _ := pikepdfCheck(t, path); len(problems) > 0 || status != "2B" {
		t.Errorf("pikepdf: problems %v, pdfa_status %q", problems, status)
	}

	list := tool(t, "poppler-utils", "pdfimages", "-list", path)
	rows := regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+image\s+(\d+)\s+(\d+)\s+(\w+)\s+(\d+)\s+(\d+)\s+(\w+)`).FindAllStringSubmatch(list, -1)
	if len(rows) != len(cases) {
		t.Fatalf("pdfimages lists %d images, want %d:\n%s", len(rows), len(cases), list)
	}
	for i, c := range cases {
		r := rows[i]
		if r[2] != "300" || r[3] != "200" || r[4] != c.comp || r[6] != c.bpc || r[7] != c.encoding {
			t.Errorf("%s: pdfimages says %s×%s %s, %s bpc, %s; want 300×200 %s, %s bpc, %s",
				c.name, r[2], r[3], r[4], r[6], r[7], c.comp, c.bpc, c.encoding)
		}
		want := toGrey(c.want)
		mean, _, err := greyDiff(toGrey(extractImage(t, path, i+1)), want)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if mean > c.maxMean {
			t.Errorf("%s: the image pdfimages decodes differs from the page image: mean %.2f, max %.2f", c.name, mean, c.maxMean)
		}
		// Rendered, the image fills the page the right way up. Renderers resample even at
		// the image's own resolution (poppler moves band edges by a row), hence the slack.
		mean, far, err := greyDiff(renderGrey(t, path, i+1, dpi), want)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if mean > 8 || far > 0.05 {
			t.Errorf("%s: the rendered page does not look like the image: mean %.2f, %.2f%% of pixels far off", c.name, mean, 100*far)
		}
	}
	text := tool(t, "poppler-utils", "pdftotext", path, "-")
	for _, c := range cases {
		if !strings.Contains(text, strings.ReplaceAll(c.name, " ", "_")) {
			t.Errorf("%s: its page's words are not in the text", c.name)
		}
	}
}

// A page that cannot make a faithful PDF page fails the document with an error that
// names the page and what to fix, and nothing is written.
func TestUnusablePagesFailTheDocument(t *testing.T) {
	good := Page{Image: encodePNG(t, synthImage(300, 200, false)), ImageType: "image/png", DPI: 100}
	damaged := append([]byte(nil), good.Image...)
	damaged[60] ^= 0xFF
	tests := []struct {
		name  string
		page  Page
		wants []string
	}{
		{"no image", Page{DPI: 300}, []string{"page 2 of 2", "no image"}},
		{"no DPI", Page{Image: good.Image}, []string{"page 2 of 2", "DPI"}},
		{"words read on another image", Page{Image: good.Image, DPI: 100, Width: 2550, Height: 3300},
			[]string{"page 2 of 2", "300×200", "2550×3300", "upright image"}},
		{"type mixed up", Page{Image: good.Image, ImageType: "image/jpeg", DPI: 100}, []string{"stored as image/jpeg", "image/png"}},
		{"not an image", Page{Image: []byte("%PDF-1.4 not a page image"), DPI: 100}, []string{"not a PNG, JPEG or TIFF"}},
		{"damaged PNG", Page{Image: damaged, DPI: 100}, []string{"damaged"}},
		{"truncated PNG", Page{Image: good.Image[:len(good.Image)/2], DPI: 100}, []string{"truncated"}},
		{"absurd DPI", Page{Image: good.Image, DPI: 1}, []string{"300×200 pixels at 1 dpi", "check the DPI"}},
	}
	jpegTIFF := convert(t, good.Image, "j.tif", "-compress", "JPEG")
	tests = append(tests, struct {
		name  string
		page  Page
		wants []string
	}{"TIFF compression Go cannot decode", Page{Image: jpegTIFF, DPI: 100}, []string{"page 2 of 2", "compression 7, JPEG", "G4"}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, Meta{}, []Page{good, tc.page})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if buf.Len() > 0 {
				t.Errorf("%d bytes written before the error", buf.Len())
			}
		})
	}
	if err := Write(&bytes.Buffer{}, Meta{}, nil); err == nil || !strings.Contains(err.Error(), "no pages") {
		t.Errorf("no pages: %v", err)
	}
	werr := errors.New("disk full")
	if err := Write(failWriter{werr}, Meta{}, []Page{good}); !errors.Is(err, werr) {
		t.Errorf("a failing writer: %v, want it wrapped", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// TestDeflateTIFFGoesInAsItIs: a one-strip grey Deflate TIFF (what the split makes of a
// scan's Flate page) is embedded as the zlib stream it holds, not decoded and deflated
// again; one with a predictor is decoded.
func TestDeflateTIFFGoesInAsItIs(t *testing.T) {
	for _, c := range imageCases(t) {
		if !strings.HasPrefix(c.name, "tiff deflate") {
			continue
		}
		x, err := prepareImage(c.data, c.typ)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		asIs := len(x.data) == 1 && bytes.Contains(c.data, x.data[0])
		if want := !strings.Contains(c.name, "decoded"); asIs != want {
			t.Errorf("%s: embedded as it is = %v, want %v", c.name, asIs, want)
		}
	}
}
